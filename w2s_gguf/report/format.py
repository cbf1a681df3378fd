"""Small formatting helpers shared by the table, report.md and the plots."""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..results import PairResult, Results, Summary, TransferScore

DASH = "-"  # shown for a missing (null) number


def f3(x: Any) -> str:
    """A number to 3 decimals; null (or anything non-numeric) as a dash."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return DASH
    return f"{x:.3f}"


def ci_text(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(ci) == 2 else ""


def pgr_text(stats: Summary | TransferScore | None, with_ci: bool = True) -> str:
    """'0.300 [-0.120, 0.710]', or 'n/a (reason)' so a null PGR is never a bare blank."""
    if stats is None:
        return "n/a"
    median = stats.pgr_median if isinstance(stats, Summary) else stats.pgr
    if median is None:
        return f"n/a ({stats.pgr_reason})" if stats.pgr_reason else "n/a"
    ci = stats.pgr_ci if isinstance(stats, Summary) else None
    if not with_ci:
        return f"{median:.3f}"
    if ci:
        return f"{median:.3f} {ci_text(ci)}"
    # A median without its interval is easy to over-read, so say why the interval is missing.
    return f"{median:.3f} (no interval: {stats.pgr_reason})" if stats.pgr_reason else f"{median:.3f} (no interval)"


def methods_of(results: Results, pair: PairResult | None = None) -> list[str]:
    """Methods in the order the run asked for them, then any extra the pair has."""
    order = results.methods
    if pair is None:
        return order
    order += [k for k in pair.summary if k not in order]
    return [k for k in order if k in pair.summary]


def pair_label(pair: PairResult, results: Results, arrow: str = "→") -> str:
    layer = f" [layer {pair.layer}]" if len(results.layers) > 1 else ""
    return f"{pair.weak} {arrow} {pair.strong}{layer}"


def md_cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    # A pipe would end the cell early; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def sklearn_checked(results) -> bool:
    """Whether the opt-in scikit-learn check ran (its columns are shown only then)."""
    return any(pair.sklearn_summary for pair in results.pairs) or any(gt.sklearn for gt in results.ground_truth)
