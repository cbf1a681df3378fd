"""Two runs side by side: per matching (weak, strong, layer, method), then what differs between them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import PairResult, Results, to_json
from ..common.storage import atomic_write_bytes
from .format import DASH, f3, md_table, pgr_point, pgr_text
from .plots import Entry, colors, draw_pgr, png_bytes, seed_pgrs
from .salience import compare_salience

Key = tuple[str, str, str]  # weak, strong, layer


def _pair_index(results: Results) -> dict[Key, PairResult]:
    return {(p.weak, p.strong, p.layer): p for p in results.pairs}


def _name(key: Key) -> str:
    return f"{key[0]} → {key[1]}" + ("" if key[2] == "last" else f" [layer {key[2]}]")


def _matches(results_a: Results, results_b: Results, label_a: str = "A",
             label_b: str = "B") -> tuple[list[tuple[Key, str]], list[str]]:
    """(pair key, method) present in both runs, and notes on the ones only one run has."""
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    both, only = [], []
    for key in list(pa) + [k for k in pb if k not in pa]:
        if key not in pa or key not in pb:
            only.append(f"{_name(key)} only in {label_a if key in pa else label_b}")
            continue
        la, lb = list(pa[key].summary), list(pb[key].summary)
        both += [(key, m) for m in la if m in lb]
        only += [f"{_name(key)} {m} only in {label_a if m in la else label_b}" for m in la + lb if (m in la) != (m in lb)]
    return both, only


class _Missing:
    """Marks a key one run lacks (distinct from a key set to null)."""


def _show(value: Any, short: bool = False) -> str:
    if value is _Missing:
        return "(absent)"
    if short and isinstance(value, str):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(to_json(value))


def _diff_rows(results_a: Results, results_b: Results) -> list[list[str]]:
    """Every setting, model checksum and library version that differs between the runs."""
    rows = []
    for section in ("settings", "versions"):
        a, b = getattr(results_a, section), getattr(results_b, section)
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key, _Missing) != b.get(key, _Missing):
                rows.append([f"{section}.{key}", _show(a.get(key, _Missing)), _show(b.get(key, _Missing))])
    ma, mb = results_a.models, results_b.models
    for name in list(ma) + [k for k in mb if k not in ma]:
        sa = ma[name].sha256 if name in ma else _Missing
        sb = mb[name].sha256 if name in mb else _Missing
        if sa != sb:
            rows.append([f"models.{name}.sha256", _show(sa, short=True), _show(sb, short=True)])
    return rows


def _delta(a: float | None, b: float | None) -> str:
    return DASH if a is None or b is None else f"{b - a:+.3f}"


def compare_markdown(results_a: Results, results_b: Results, label_a: str = "A", label_b: str = "B") -> str:
    both, only = _matches(results_a, results_b, label_a, label_b)
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    rows = []
    for key, method in both:
        a, b = pa[key], pb[key]
        sa, sb = a.summary[method], b.summary[method]
        rows.append([key[0], key[1], method,
                     f"{f3(a.weak_acc)} / {f3(b.weak_acc)}", f"{f3(a.strong_acc)} / {f3(b.strong_acc)}",
                     f"{f3(sa.transfer_acc_mean)} / {f3(sb.transfer_acc_mean)}",
                     _delta(sa.transfer_acc_mean, sb.transfer_acc_mean),
                     pgr_text(sa), pgr_text(sb), _delta(pgr_point(sa)[0], pgr_point(sb)[0])])
    header = ["weak", "strong", "method", f"weak acc ({label_a} / {label_b})", f"strong acc ({label_a} / {label_b})",
              f"transfer acc ({label_a} / {label_b})", "Δ transfer", f"PGR {label_a} [95% CI]",
              f"PGR {label_b} [95% CI]", "Δ PGR"]
    runs = md_table(["run", "label", "task", "created", "command"], [
        [tag, label, r.task.name, r.created or DASH, r.command or DASH]
        for tag, label, r in (("A", label_a, results_a), ("B", label_b, results_b))])
    diffs = _diff_rows(results_a, results_b)
    parts = [
        f"# Compare: {label_a} vs {label_b}",
        runs,
        "## Results\n\n" + (md_table(header, rows) if rows else "no (weak, strong, method) in common")
        + "\n\nΔ = " + f"{label_b} - {label_a}. A PGR difference inside both intervals is likely noise.",
    ]
    if only:
        parts.append("Not compared:\n\n" + "\n".join(f"- {line}" for line in only))
    salience = compare_salience(results_a, results_b, label_a, label_b)
    if salience:
        parts.append("## How much does each model already know?\n\n" + salience)
    parts.append("## Differences between the runs\n\n" + (
        md_table(["key", label_a, label_b], diffs) if diffs else "none: same settings, model files and library versions."))
    return "\n\n".join(parts) + "\n"


def compare_plot(results_a: Results, results_b: Results, path: str | Path, label_a: str = "A", label_b: str = "B") -> Path:
    """PGR of both runs side by side per matching (weak, strong, method), written atomically as PNG."""
    both, _ = _matches(results_a, results_b)
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    color_a, color_b = colors(2)
    groups = []
    for key, method in both:
        entries = [Entry(label, color, mark, pairs[key].summary[method], seed_pgrs(pairs[key], method))
                   for label, color, mark, pairs in ((label_a, color_a, "o", pa), (label_b, color_b, "s", pb))]
        groups.append((f"{_name(key).replace(' → ', chr(10) + '→ ')}\n{method}", entries))
    fig = draw_pgr(groups, f"PGR: {label_a} vs {label_b} (median over seeds, 95% interval)",
                   legend=[(label_a, color_a, "o"), (label_b, color_b, "s")])
    path = Path(path)
    atomic_write_bytes(path, png_bytes(fig))
    return path
