"""Read a run's results.json and render it: a terminal table, report.md and plots.

Everything here works from results.json alone, so `w2s-gguf report DIR` can
re-render a folder long after the run (or on another machine). Plots use
matplotlib's object-oriented API with the Agg canvas, never pyplot: no screen
is needed and no global backend state is touched in the caller's process.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any, Iterable

from .errors import W2SError
from .storage import atomic_write_bytes, atomic_write_text

SCHEMA_VERSION = 1
KIND = "w2s-gguf results"
RESULTS_NAME = "results.json"
REPORT_NAME = "report.md"
ACCURACY_PNG = "accuracy.png"
PGR_PNG = "pgr.png"

# Keys the report needs, with the type each must have. "versions" and
# "timings" are informational, so an older or hand-edited file without them
# still renders.
_REQUIRED = {"settings": dict, "task": dict, "models": dict, "ground_truth": dict, "pairs": list}
_PAIR_REQUIRED = ("weak", "strong", "per_seed", "summary")

_LOSS_MARKERS = {"xent": "o", "logconf": "s", "product": "^"}
_EXTRA_MARKERS = ("D", "v", "P", "X", "*")
_DASH = "-"  # shown for a missing (null) number


# ---------------------------------------------------------------- loading


def _results_file(folder: str | Path) -> Path:
    """`folder` may be a results folder or the results.json inside it."""
    path = Path(folder)
    return path if path.is_file() else path / RESULTS_NAME


def load_results(folder: str | Path) -> dict:
    """Read and check folder/results.json (or a path to the json itself)."""
    path = _results_file(folder)
    if not path.is_file():
        raise W2SError(f"no {RESULTS_NAME} in {folder}; pass a folder written by `w2s-gguf run`")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise W2SError(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); re-run `w2s-gguf run` to rewrite it"
        ) from None
    except UnicodeDecodeError:
        raise W2SError(f"{path} is not UTF-8 text; pass a folder written by `w2s-gguf run`") from None
    except OSError as exc:
        raise W2SError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    _check_results(results, path)
    return results


def _check_results(results: Any, path: Path) -> None:
    if not isinstance(results, dict) or results.get("kind") != KIND:
        kind = results.get("kind") if isinstance(results, dict) else type(results).__name__
        raise W2SError(
            f"{path} is not a w2s-gguf results file (kind {kind!r}); pass a folder written by `w2s-gguf run`"
        )
    version = results.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise W2SError(f"{path} has an unknown schema_version {version!r}; re-run `w2s-gguf run` to rewrite it")
    if version > SCHEMA_VERSION:
        raise W2SError(
            f"{path} was written by a newer w2s-gguf (schema {version} > {SCHEMA_VERSION}); upgrade w2s-gguf"
        )
    for key, typ in _REQUIRED.items():
        if key not in results:
            raise W2SError(f"{path} is missing key {key!r}; re-run `w2s-gguf run` to rewrite it")
        if not isinstance(results[key], typ):
            raise W2SError(f"{path}: key {key!r} should be a {typ.__name__}; re-run `w2s-gguf run` to rewrite it")
    for i, pair in enumerate(results["pairs"]):
        missing = [k for k in _PAIR_REQUIRED if not isinstance(pair, dict) or k not in pair]
        if missing:
            raise W2SError(f"{path}: pairs[{i}] is missing key {missing[0]!r}; re-run `w2s-gguf run` to rewrite it")


# ---------------------------------------------------------------- small helpers


def _f3(x: Any) -> str:
    """A number to 3 decimals; null (or anything non-numeric) as a dash."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return _DASH
    return f"{x:.3f}"


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _ci(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_num(v) is not None for v in ci):
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
    return ""


def _pgr_text(stats: dict | None, with_ci: bool = True) -> str:
    """'0.300 [-0.120, 0.710]', or 'n/a (reason)' so a null PGR is never a bare blank."""
    stats = stats or {}
    median = _num(stats.get("pgr_median", stats.get("pgr")))
    if median is None:
        reason = stats.get("pgr_reason")
        return f"n/a ({reason})" if reason else "n/a"
    if not with_ci:
        return f"{median:.3f}"
    if _ci(stats.get("pgr_ci")):
        return f"{median:.3f} {_ci(stats['pgr_ci'])}"
    # A median without its interval is easy to over-read, so say why the interval is missing.
    reason = stats.get("pgr_reason")
    return f"{median:.3f} (no interval: {reason})" if reason else f"{median:.3f} (no interval)"


def _losses(results: dict, pair: dict | None = None) -> list[str]:
    """Losses in the order the run was asked for, then any extra the pair has."""
    order = list(results.get("settings", {}).get("losses") or [])
    if pair is not None:
        order += [k for k in pair.get("summary", {}) if k not in order]
        return [k for k in order if k in pair.get("summary", {})]
    return order


def _gap(pair: dict) -> float | None:
    weak, strong = _num(pair.get("weak_acc")), _num(pair.get("strong_acc"))
    return None if weak is None or strong is None else strong - weak


def _n_seeds(results: dict) -> int:
    return len(results.get("settings", {}).get("seeds") or [])


def _md_cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    # A pipe would end the cell early; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: Iterable[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- terminal table


def summary_table(results: dict) -> str:
    """The plain-text table printed after a run (ASCII, fits 100 columns)."""
    settings, task = results.get("settings", {}), results.get("task", {})
    lines = [
        f"{task.get('name', settings.get('task', '?'))}: {task.get('n_train', _DASH)} train / "
        f"{task.get('n_test', _DASH)} test docs, {_n_seeds(results)} seeds, min_gap {settings.get('min_gap', _DASH)}",
        "accuracies: mean over seeds; PGR: median over valid seeds [95% bootstrap interval]",
    ]
    if not results.get("pairs"):
        return "\n".join(lines + ["", "no weak/strong pairs in this run"])
    header = (f"  {'loss':<9} {'transfer':>8} {'AUROC':>6} {'agree':>6} {'seeds':>5} {'sklearn PGR':>11}"
              "  PGR median [95% CI]")
    for pair in results["pairs"]:
        lines += ["", _pair_heading(pair), header]
        sk = pair.get("sklearn_summary") or {}
        for loss in _losses(results, pair):
            s = pair["summary"][loss]
            # The sklearn column is an independent probe; show only its median to stay narrow.
            sk_pgr = _pgr_text(sk[loss], with_ci=False) if loss in sk else _DASH
            sk_pgr = "n/a" if sk_pgr.startswith("n/a") else sk_pgr
            seeds = f"{s.get('n_valid_seeds', _DASH)}/{_n_seeds(results)}"
            row = (f"  {loss:<9} {_f3(s.get('transfer_acc_mean')):>8} {_f3(s.get('auroc_mean')):>6} "
                   f"{_f3(s.get('agreement_mean')):>6} {seeds:>5} {sk_pgr:>11}  ")
            # Long reasons wrap under the PGR column so the table stays within 100 columns.
            lines += textwrap.wrap(row + _pgr_text(s), width=100, subsequent_indent=" " * len(row))
    return "\n".join(lines)


def _pair_heading(pair: dict) -> str:
    return (
        f"{pair['weak']} -> {pair['strong']}   weak {_f3(pair.get('weak_acc'))}   "
        f"strong {_f3(pair.get('strong_acc'))}   gap {_f3(_gap(pair))}"
    )


# ---------------------------------------------------------------- report.md


def write_report(folder: str | Path, results: dict | None = None) -> list[Path]:
    """Write report.md, accuracy.png and pgr.png into `folder`; return their paths.

    With `results` None the folder's results.json is loaded, so a report can
    be re-rendered from the file alone.
    """
    if results is None:
        results = load_results(folder)
    out = Path(folder)
    out = out.parent if out.is_file() else out
    written = []
    for name, figure in ((ACCURACY_PNG, accuracy_figure), (PGR_PNG, pgr_figure)):
        atomic_write_bytes(out / name, _png_bytes(figure(results)))
        written.append(out / name)
    atomic_write_text(out / REPORT_NAME, report_markdown(results))
    return [out / REPORT_NAME, *written]


def report_markdown(results: dict) -> str:
    """The text of report.md (sections in the order a reader needs them)."""
    settings, task = results.get("settings", {}), results.get("task", {})
    title = f"# w2s-gguf report: {task.get('name', settings.get('task', '?'))}"
    meta = f"Created {results.get('created', _DASH)} by `{results.get('command', _DASH)}`."
    sections = [
        title,
        meta,
        "## Summary\n\n" + _md_summary(results),
        f"![accuracy]({ACCURACY_PNG})\n\n![PGR]({PGR_PNG})",
        "## How to read PGR\n\n" + _pgr_note(results),
        "## Ground truth (each model on true labels)\n\n" + _md_ground_truth(results),
        "## Per seed\n\n" + _md_per_seed(results),
        "## Task\n\n" + _md_task(task),
        "## Models\n\n" + _md_models(results.get("models", {})),
        "## Settings\n\n" + _md_table(["setting", "value"], [[k, v] for k, v in settings.items()]),
        "## Timings\n\n" + _md_key_values(results.get("timings") or {}),
        "## Versions\n\n" + _md_key_values(results.get("versions") or {}),
    ]
    return "\n\n".join(sections) + "\n"


def _md_key_values(d: dict) -> str:
    if not d:
        return "not recorded"
    return _md_table(["", "value"], [[k, _f3(v) if isinstance(v, float) else v] for k, v in d.items()])


def _md_summary(results: dict) -> str:
    if not results.get("pairs"):
        return "no weak/strong pairs in this run"
    header = ["weak", "strong", "loss", "weak acc", "strong acc", "transfer acc", "AUROC", "agreement",
              "PGR median [95% CI]", "sklearn PGR [95% CI]", "valid seeds"]
    rows = []
    for pair in results["pairs"]:
        sk = pair.get("sklearn_summary") or {}
        for loss in _losses(results, pair):
            s = pair["summary"][loss]
            rows.append([pair["weak"], pair["strong"], loss, _f3(pair.get("weak_acc")), _f3(pair.get("strong_acc")),
                         _f3(s.get("transfer_acc_mean")), _f3(s.get("auroc_mean")), _f3(s.get("agreement_mean")),
                         _pgr_text(s), _pgr_text(sk[loss]) if loss in sk else _DASH,
                         f"{s.get('n_valid_seeds', _DASH)}/{_n_seeds(results)}"])
    note = "Accuracies are means over seeds on the same test docs; PGR is the median over valid seeds."
    return _md_table(header, rows) + "\n\n" + note


def _pgr_note(results: dict) -> str:
    settings = results.get("settings", {})
    return "\n".join([
        "- PGR = (transfer acc - weak acc) / (strong acc - weak acc), per seed: the share of the gap "
        "between the weak teacher and the strong ceiling that the strong student recovers from weak labels.",
        "- 0 means the student is no better than its teacher, 1 means it matches the ceiling; "
        "values below 0 or above 1 happen and are real.",
        f"- A seed counts only when strong acc - weak acc >= min_gap ({settings.get('min_gap', _DASH)}) and "
        "weak != strong; otherwise its PGR is null with the reason shown. A tiny gap divides noise by "
        "noise (OAI's anthropic_hh row shows PGR 0.81 from a gap of about 0.005).",
        f"- The summary is the median over valid seeds with a bootstrap 95% interval that resamples "
        f"seeds and test docs ({settings.get('n_bootstrap', _DASH)} resamples); it is null when the mean gap "
        "over seeds is below min_gap. With gaps of a few points the interval is wide: read it before the median.",
        "- sklearn PGR repeats the protocol with scikit-learn logistic regression, an independent check "
        "of the torch head: a different sign is a reason to distrust both.",
        "- AUROC is against true labels; agreement is how often the student agrees with its weak "
        "teacher on the test docs (high agreement with low PGR = the student imitated its teacher's errors).",
    ])


def _md_ground_truth(results: dict) -> str:
    rows = []
    for name, gt in results.get("ground_truth", {}).items():
        per_seed = ", ".join(_f3(s.get("acc")) for s in gt.get("per_seed", []))
        sk = gt.get("sklearn") or {}
        rows.append([name, _f3(gt.get("acc_mean")), _f3(gt.get("acc_median")), _f3(gt.get("auroc_mean")),
                     _f3(sk.get("acc_mean")), per_seed])
    return _md_table(["model", "acc mean", "acc median", "AUROC mean", "sklearn acc mean", "acc per seed"], rows)


def _md_per_seed(results: dict) -> str:
    parts = []
    for pair in results.get("pairs", []):
        rows, sk_rows = [], []
        for seed in pair.get("per_seed", []):
            for loss in _losses(results, pair):
                t = (seed.get("transfer") or {}).get(loss) or {}
                rows.append([seed.get("seed"), loss, _f3(seed.get("weak_acc")), _f3(seed.get("strong_acc")),
                             _f3(t.get("acc")), _f3(t.get("auroc")), _f3(t.get("agreement")),
                             _pgr_text(t, with_ci=False)])
            sk = seed.get("sklearn") or {}
            sk_rows.append([seed.get("seed"), _f3(sk.get("weak_acc")), _f3(sk.get("strong_acc")),
                            _f3(sk.get("transfer_acc")), _f3(sk.get("pgr"))])
        parts.append(f"### {pair['weak']} → {pair['strong']}\n\n" + _md_table(
            ["seed", "loss", "weak acc", "strong acc", "transfer acc", "AUROC", "agreement", "PGR"], rows))
        parts.append("sklearn check:\n\n" + _md_table(
            ["seed", "weak acc", "strong acc", "transfer acc", "PGR"], sk_rows))
    return "\n\n".join(parts) or "no weak/strong pairs in this run"


def _md_task(task: dict) -> str:
    rows = [[k, task.get(k, _DASH)] for k in ("name", "source", "prompt_version", "n_train", "n_test",
                                              "positive_rate_train", "positive_rate_test", "balanced", "skipped")]
    rows += [[k, v] for k, v in task.items() if k not in {r[0] for r in rows}]
    return _md_table(["", "value"], [[k, _f3(v) if isinstance(v, float) else v] for k, v in rows])


def _md_models(models: dict) -> str:
    header = ["model", "architecture", "sha256", "size MB", "dim", "pooling", "max tokens", "docs", "tokens",
              "truncated", "seconds", "tok/s", "GPU offload", "source"]
    rows = []
    for name, m in models.items():
        size = _num(m.get("size"))
        rows.append([name, m.get("architecture", _DASH), str(m.get("sha256") or _DASH)[:12],
                     f"{size / 1e6:.1f}" if size is not None else _DASH, m.get("dim", _DASH),
                     m.get("pooling", _DASH), m.get("max_tokens", _DASH), m.get("n_computed", _DASH),
                     m.get("n_tokens", _DASH), m.get("n_truncated", _DASH),
                     f"{m['seconds']:.1f}" if _num(m.get("seconds")) is not None else _DASH,
                     f"{m['tokens_per_second']:.0f}" if _num(m.get("tokens_per_second")) is not None else _DASH,
                     m.get("gpu_offload", _DASH), m.get("source", _DASH)])
    return _md_table(header, rows) + "\n\n" + "docs = embeddings computed in this run (0 = all from cache)."


# ---------------------------------------------------------------- plots


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def _new_figure(width: float, height: float):
    # Figure + Agg canvas directly (not pyplot): no GUI backend, no global figure list to leak into.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _marker(loss: str, losses: list[str]) -> str:
    if loss in _LOSS_MARKERS:
        return _LOSS_MARKERS[loss]
    extras = [k for k in losses if k not in _LOSS_MARKERS]
    return _EXTRA_MARKERS[extras.index(loss) % len(_EXTRA_MARKERS)] if loss in extras else "o"


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def accuracy_figure(results: dict):
    """Transfer accuracy against the strong ceiling, like OAI's plotting notebook.

    x = the strong student's ground-truth (ceiling) accuracy, y = its accuracy
    trained on weak labels. One colour per weak model, one marker per loss;
    the dashed horizontal line is the weak teacher's own accuracy and the
    diagonal is the ceiling, so PGR is where a point sits between the two.
    """
    from matplotlib.lines import Line2D

    fig = _new_figure(7, 5.5)
    ax = fig.add_subplot()
    pairs = results.get("pairs", [])
    weak_models = list(dict.fromkeys(p["weak"] for p in pairs))
    losses = _losses(results) or list(dict.fromkeys(k for p in pairs for k in p["summary"]))
    colors = dict(zip(weak_models, _colors(len(weak_models))))
    seen = []  # every plotted accuracy, to set limits around the data
    for weak in weak_models:
        students = sorted((p for p in pairs if p["weak"] == weak), key=lambda p: _num(p.get("strong_acc")) or 0)
        for loss in losses:
            pts = [(_num(p.get("strong_acc")), _num(p["summary"].get(loss, {}).get("transfer_acc_mean")))
                   for p in students]
            pts = [(x, y) for x, y in pts if x is not None and y is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=colors[weak], marker=_marker(loss, losses), markersize=7, linewidth=1.5)
                seen += [*xs, *ys]
        weak_acc = _num(students[0].get("weak_acc")) if students else None
        if weak_acc is not None:
            ax.axhline(weak_acc, color=colors[weak], linestyle="--", linewidth=1, alpha=0.8)
            seen.append(weak_acc)
    if not seen:
        ax.text(0.5, 0.5, "no accuracies to plot", ha="center", va="center", transform=ax.transAxes)
    else:
        lo, hi = min(seen), max(seen)
        pad = max(0.01, 0.08 * (hi - lo))
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="0.4", linestyle=":", linewidth=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    ax.set_xlabel("strong ceiling accuracy (strong model on true labels)")
    ax.set_ylabel("transfer accuracy (strong model on weak labels)")
    ax.set_title(f"{results.get('task', {}).get('name', '')}: weak-to-strong transfer")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colors[w], linewidth=1.5, label=f"weak: {w}") for w in weak_models]
    handles += [Line2D([], [], color="0.3", marker=_marker(k, losses), linestyle="none", label=k) for k in losses]
    handles += [Line2D([], [], color="0.3", linestyle="--", label="weak model's own acc"),
                Line2D([], [], color="0.4", linestyle=":", label="y = x (ceiling)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    return fig


def pgr_figure(results: dict):
    """PGR median per pair and loss with 95% interval bars; null PGRs as labelled gaps."""
    losses = _losses(results) or list(dict.fromkeys(k for p in results.get("pairs", []) for k in p["summary"]))
    loss_colors = dict(zip(losses, _colors(len(losses))))
    groups = []
    for pair in results.get("pairs", []):
        entries = []
        for loss in _losses(results, pair):
            s = pair["summary"][loss]
            seeds = [(sd.get("transfer") or {}).get(loss, {}).get("pgr") for sd in pair.get("per_seed", [])]
            entries.append(_Entry(loss, loss_colors.get(loss, "0.3"), _marker(loss, losses), s, seeds))
        groups.append((f"{pair['weak']}\n→ {pair['strong']}", entries))
    title = f"{results.get('task', {}).get('name', '')}: PGR (median over seeds, 95% interval)"
    return _draw_pgr(groups, title, legend=[(loss, loss_colors[loss], _marker(loss, losses)) for loss in losses])


class _Entry:
    """One PGR point: its legend label, style, summary stats and per-seed values."""

    def __init__(self, label: str, color, marker: str, stats: dict | None, seeds: list):
        self.label, self.color, self.marker = label, color, marker
        self.stats = stats or {}
        self.median = _num(self.stats.get("pgr_median"))
        self.seeds = [v for v in map(_num, seeds) if v is not None]


def _draw_pgr(groups: list[tuple[str, list[_Entry]]], title: str, legend: list[tuple]):
    """Shared by pgr.png and the compare plot: groups on x, entries side by side in each."""
    from matplotlib.lines import Line2D

    width = max(6.0, 1.3 * sum(max(1, len(e)) for _, e in groups) / 2 + 2)
    fig = _new_figure(min(width, 18), 5)
    ax = fig.add_subplot()
    # Null annotations use x in data units and y in axes units, so they sit
    # in the right slot whatever the PGR range turns out to be.
    band = ax.get_xaxis_transform()
    for gi, (_, entries) in enumerate(groups):
        n = len(entries)
        offsets = [gi + (i - (n - 1) / 2) * (0.7 / max(n, 1)) for i in range(n)]
        nulls = [(x, e) for x, e in zip(offsets, entries) if e.median is None]
        for x, e in zip(offsets, entries):
            if e.median is None:
                continue
            ax.scatter([x] * len(e.seeds), e.seeds, color=e.color, s=10, alpha=0.35, zorder=2)
            ci = e.stats.get("pgr_ci")
            if _ci(ci):
                yerr = [[e.median - ci[0]], [ci[1] - e.median]]
                ax.errorbar([x], [e.median], yerr=yerr, color=e.color, capsize=4, linewidth=1.5, zorder=3)
            else:
                ax.annotate("no CI", (x, e.median), xytext=(6, 0), textcoords="offset points", fontsize=7,
                            color=e.color, va="center")
            ax.plot([x], [e.median], color=e.color, marker=e.marker, markersize=8, linestyle="none", zorder=4)
        reasons = {e.stats.get("pgr_reason") or "no valid seeds" for _, e in nulls}
        if nulls and len(nulls) == n and len(reasons) == 1:
            # The whole group shares one reason (a small gap is per pair): one band, one label.
            _null_band(ax, band, gi - 0.4, gi + 0.4, "PGR n/a: " + reasons.pop())
        else:
            for x, e in nulls:
                half = 0.35 / max(n, 1)
                reason = e.stats.get("pgr_reason") or "no valid seeds"
                _null_band(ax, band, x - half, x + half, f"{e.label} n/a: {reason}")
    ax.axhline(0, color="black", linewidth=1)
    ax.axhline(1, color="0.5", linewidth=1, linestyle=":")
    ax.set_xticks(range(len(groups)), [g for g, _ in groups], fontsize=8)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    lo, hi = ax.get_ylim()
    ax.set_ylim(min(lo, -0.25), max(hi, 1.25))  # always show both 0 (teacher) and 1 (ceiling)
    ax.set_ylabel("PGR")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    handles = [Line2D([], [], color=c, marker=m, linestyle="none", label=lab) for lab, c, m in legend]
    handles += [Line2D([], [], color="0.5", linestyle=":", label="1 = strong ceiling"),
                Line2D([], [], color="0.5", marker="o", markersize=3, alpha=0.5, linestyle="none", label="per seed")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    if not groups:
        ax.text(0.5, 0.5, "no weak/strong pairs in this run", ha="center", va="center", transform=ax.transAxes)
    return fig


def _null_band(ax, transform, x0: float, x1: float, text: str) -> None:
    ax.axvspan(x0, x1, facecolor="0.85", alpha=0.6, zorder=0, hatch="//", edgecolor="0.7")
    ax.text((x0 + x1) / 2, 0.5, text, transform=transform, rotation=90, ha="center", va="center",
            fontsize=7, color="0.25", wrap=True, zorder=5)


# ---------------------------------------------------------------- comparing two runs


def _pair_index(results: dict) -> dict[tuple[str, str], dict]:
    return {(p["weak"], p["strong"]): p for p in results.get("pairs", [])}


def _matches(results_a: dict, results_b: dict, label_a: str = "A",
             label_b: str = "B") -> tuple[list[tuple[str, str, str]], list[str]]:
    """(weak, strong, loss) keys present in both runs, and notes on the ones only one run has."""
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    both, only = [], []
    for key in list(pa) + [k for k in pb if k not in pa]:
        if key not in pa or key not in pb:
            only.append(f"{key[0]} → {key[1]} only in {label_a if key in pa else label_b}")
            continue
        la, lb = _losses(results_a, pa[key]), _losses(results_b, pb[key])
        both += [(*key, loss) for loss in la if loss in lb]
        only += [f"{key[0]} → {key[1]} {loss} only in {label_a if loss in la else label_b}"
                 for loss in la + lb if (loss in la) != (loss in lb)]
    return both, only


def _diff_rows(results_a: dict, results_b: dict) -> list[list[str]]:
    """Every setting, model checksum and library version that differs between the runs."""
    rows = []
    for section in ("settings", "versions"):
        a, b = results_a.get(section) or {}, results_b.get(section) or {}
        for key in list(a) + [k for k in b if k not in a]:
            if a.get(key, _Missing) != b.get(key, _Missing):
                rows.append([f"{section}.{key}", _show(a.get(key, _Missing)), _show(b.get(key, _Missing))])
    ma, mb = results_a.get("models", {}), results_b.get("models", {})
    for name in list(ma) + [k for k in mb if k not in ma]:
        sa = (ma.get(name) or {}).get("sha256", _Missing) if name in ma else _Missing
        sb = (mb.get(name) or {}).get("sha256", _Missing) if name in mb else _Missing
        if sa != sb:
            rows.append([f"models.{name}.sha256", _show(sa, short=True), _show(sb, short=True)])
    return rows


class _Missing:
    """Marks a key one run lacks (distinct from a key set to null)."""


def _show(value: Any, short: bool = False) -> str:
    if value is _Missing:
        return "(absent)"
    if short and isinstance(value, str):
        return value[:12]
    return value if isinstance(value, str) else json.dumps(value)


def _delta(a: Any, b: Any) -> str:
    a, b = _num(a), _num(b)
    return _DASH if a is None or b is None else f"{b - a:+.3f}"


def compare_markdown(results_a: dict, results_b: dict, label_a: str = "A", label_b: str = "B") -> str:
    """Two runs side by side per matching (weak, strong, loss), then what differs between them."""
    both, only = _matches(results_a, results_b, label_a, label_b)
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    rows = []
    for weak, strong, loss in both:
        a, b = pa[(weak, strong)], pb[(weak, strong)]
        sa, sb = a["summary"][loss], b["summary"][loss]
        rows.append([weak, strong, loss,
                     f"{_f3(a.get('weak_acc'))} / {_f3(b.get('weak_acc'))}",
                     f"{_f3(a.get('strong_acc'))} / {_f3(b.get('strong_acc'))}",
                     f"{_f3(sa.get('transfer_acc_mean'))} / {_f3(sb.get('transfer_acc_mean'))}",
                     _delta(sa.get("transfer_acc_mean"), sb.get("transfer_acc_mean")),
                     _pgr_text(sa), _pgr_text(sb), _delta(sa.get("pgr_median"), sb.get("pgr_median"))])
    header = ["weak", "strong", "loss", f"weak acc ({label_a} / {label_b})", f"strong acc ({label_a} / {label_b})",
              f"transfer acc ({label_a} / {label_b})", "Δ transfer", f"PGR {label_a} [95% CI]",
              f"PGR {label_b} [95% CI]", "Δ PGR median"]
    runs = _md_table(["run", "label", "task", "created", "command"], [
        [tag, label, r.get("task", {}).get("name", _DASH), r.get("created", _DASH), r.get("command", _DASH)]
        for tag, label, r in (("A", label_a, results_a), ("B", label_b, results_b))])
    diffs = _diff_rows(results_a, results_b)
    parts = [
        f"# Compare: {label_a} vs {label_b}",
        runs,
        "## Results\n\n" + (_md_table(header, rows) if rows else "no (weak, strong, loss) in common")
        + "\n\nΔ = " + f"{label_b} - {label_a}. A PGR difference inside both intervals is likely noise.",
    ]
    if only:
        parts.append("Not compared:\n\n" + "\n".join(f"- {line}" for line in only))
    parts.append("## Differences between the runs\n\n" + (
        _md_table(["key", label_a, label_b], diffs) if diffs
        else "none: same settings, model files and library versions."))
    return "\n\n".join(parts) + "\n"


def compare_plot(results_a: dict, results_b: dict, path: str | Path,
                 label_a: str = "A", label_b: str = "B") -> Path:
    """PGR of both runs side by side per matching (weak, strong, loss), written atomically as PNG."""
    both, _ = _matches(results_a, results_b)
    pa, pb = _pair_index(results_a), _pair_index(results_b)
    color_a, color_b = _colors(2)
    groups = []
    for weak, strong, loss in both:
        entries = []
        for label, color, marker, pairs in ((label_a, color_a, "o", pa), (label_b, color_b, "s", pb)):
            pair = pairs[(weak, strong)]
            seeds = [(sd.get("transfer") or {}).get(loss, {}).get("pgr") for sd in pair.get("per_seed", [])]
            entries.append(_Entry(label, color, marker, pair["summary"][loss], seeds))
        groups.append((f"{weak}\n→ {strong}\n{loss}", entries))
    fig = _draw_pgr(groups, f"PGR: {label_a} vs {label_b} (median over seeds, 95% interval)",
                    legend=[(label_a, color_a, "o"), (label_b, color_b, "s")])
    path = Path(path)
    atomic_write_bytes(path, _png_bytes(fig))
    return path
