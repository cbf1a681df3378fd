"""Small formatting helpers shared by the table, report.md and the plots."""

from __future__ import annotations

import json
from typing import Any, Iterable

from ..results import PairResult, Plan, Results, Summary, TransferScore

DASH = "-"  # shown for a missing (null) number


def f3(x: Any) -> str:
    """A number to 3 decimals; null (or anything non-numeric) as a dash."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return DASH
    return f"{x:.3f}"


def ci_text(ci: list[float] | None) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci and len(ci) == 2 else ""


# The rule for a summary PGR (core/summaries.py), printed the same in the table, report.md and the README.
PGR_RULE = ("PGR = mean gain / mean gap over all seeds and test docs, shown only when the gap's 95% "
            "interval lies above min_gap")


def pgr_point(stats: Summary) -> tuple[float | None, list[float] | None]:
    """A summary's PGR and interval: the ratio of means with Fieller's interval; in a schema <= 2 file,
    which has no ratio, the median of per-seed PGRs with its old bootstrap interval."""
    if stats.pgr is not None or stats.pgr_median is None:
        return stats.pgr, stats.pgr_ci
    return stats.pgr_median, stats.pgr_median_ci


def pgr_text(stats: Summary | TransferScore | None, with_ci: bool = True) -> str:
    """'0.300 [-0.120, 0.710]', or 'n/a (reason)' so a null PGR is never a bare blank."""
    if stats is None:
        return "n/a"
    value, ci = pgr_point(stats) if isinstance(stats, Summary) else (stats.pgr, None)
    if value is None:
        return f"n/a ({stats.pgr_reason})" if stats.pgr_reason else "n/a"
    if not with_ci:
        return f"{value:.3f}"
    if ci:
        return f"{value:.3f} {ci_text(ci)}"
    # A PGR without its interval is easy to over-read, so say why the interval is missing.
    return f"{value:.3f} (no interval: {stats.pgr_reason})" if stats.pgr_reason else f"{value:.3f} (no interval)"


def plan_text(plan: Plan | None, available: int | None = None) -> str:
    """'about 2,400 test docs at 5 seeds', or what stops more docs from helping: the seeds (then the docs
    needed at more seeds), or the docs the task has."""
    if plan is None:
        return DASH
    if plan.n_test is not None:
        return _docs(plan.n_test, plan.n_seeds, available)
    if plan.reason:
        return plan.reason
    if not plan.seeds_min:
        return f"out of reach at {plan.n_seeds} seeds however many docs, and at 1,000 seeds"
    text = f"out of reach at {plan.n_seeds} seeds however many docs (needs at least {plan.seeds_min} seeds)"
    if plan.more_seeds and plan.n_test_more_seeds:
        text += f"; {_docs(plan.n_test_more_seeds, plan.more_seeds, available)}"
    return text


def _docs(n_test: int, n_seeds: int, available: int | None) -> str:
    text = f"about {n_test:,} test docs at {n_seeds} seeds"
    if available is not None and n_test > available:
        text += f", more than the {available:,} the task has"
    return text


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
