"""Plots: transfer against ceiling accuracy (accuracy.png) and PGR with intervals (pgr.png).

matplotlib's object-oriented API with the Agg canvas, never pyplot: no
screen is needed and no global backend state is touched in the caller's process.
"""

from __future__ import annotations

import io

from ..features.layers import relative_depth
from ..results import PairResult, Results, Summary
from .format import methods_of, pair_label, pgr_point

_METHOD_MARKERS = {"xent": "o", "logconf": "s", "product": "^"}
_EXTRA_MARKERS = ("D", "v", "P", "X", "*", "<", ">", "h", "p", "8")


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def new_figure(width: float, height: float):
    # Figure + Agg canvas directly (not pyplot): no GUI backend, no global figure list to leak into.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def marker(method: str, methods: list[str]) -> str:
    if method in _METHOD_MARKERS:
        return _METHOD_MARKERS[method]
    extras = [k for k in methods if k not in _METHOD_MARKERS]
    return _EXTRA_MARKERS[extras.index(method) % len(_EXTRA_MARKERS)] if method in extras else "o"


def colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _all_methods(results: Results) -> list[str]:
    return results.methods or list(dict.fromkeys(k for p in results.pairs for k in p.summary))


def accuracy_figure(results: Results):
    """Transfer accuracy against the strong ceiling, like OAI's plotting notebook.

    x = the strong student's ground-truth (ceiling) accuracy, y = its accuracy
    trained on weak labels. One colour per weak model, one marker per method;
    the dashed horizontal line is the weak teacher's own accuracy and the
    diagonal is the ceiling, so PGR is where a point sits between the two.
    """
    from matplotlib.lines import Line2D

    fig = new_figure(7, 5.5)
    ax = fig.add_subplot()
    pairs = results.pairs
    weak_models = list(dict.fromkeys(p.weak for p in pairs))
    methods = _all_methods(results)
    palette = dict(zip(weak_models, colors(len(weak_models))))
    seen = []  # every plotted accuracy, to set limits around the data
    for weak in weak_models:
        students = sorted((p for p in pairs if p.weak == weak), key=lambda p: p.strong_acc or 0)
        for method in methods:
            pts = [(p.strong_acc, p.summary[method].transfer_acc_mean) for p in students if method in p.summary]
            pts = [(x, y) for x, y in pts if x is not None and y is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=palette[weak], marker=marker(method, methods), markersize=7, linewidth=1.5)
                seen += [*xs, *ys]
        weak_acc = students[0].weak_acc if students else None
        if weak_acc is not None:
            ax.axhline(weak_acc, color=palette[weak], linestyle="--", linewidth=1, alpha=0.8)
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
    ax.set_title(f"{results.task.name}: weak-to-strong transfer")
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=palette[w], linewidth=1.5, label=f"weak: {w}") for w in weak_models]
    handles += [Line2D([], [], color="0.3", marker=marker(k, methods), linestyle="none", label=k) for k in methods]
    handles += [Line2D([], [], color="0.3", linestyle="--", label="weak model's own acc"),
                Line2D([], [], color="0.4", linestyle=":", label="y = x (ceiling)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left")
    return fig


def seed_pgrs(pair: PairResult, method: str) -> list[float | None]:
    return [sd.transfer[method].pgr if method in sd.transfer else None for sd in pair.per_seed]


def pgr_figure(results: Results):
    """PGR (mean gain / mean gap) per pair and method with 95% interval bars; null PGRs as labelled gaps."""
    methods = _all_methods(results)
    palette = dict(zip(methods, colors(len(methods))))
    groups = []
    for pair in results.pairs:
        entries = [Entry(m, palette.get(m, "0.3"), marker(m, methods), pair.summary[m], seed_pgrs(pair, m))
                   for m in methods_of(results, pair)]
        groups.append((pair_label(pair, results).replace(" → ", "\n→ "), entries))
    title = f"{results.task.name}: PGR (mean gain / mean gap, 95% interval over new seeds and docs)"
    return draw_pgr(groups, title, legend=[(m, palette[m], marker(m, methods)) for m in methods])


class Entry:
    """One PGR point: its legend label, style, summary stats and per-seed values."""

    def __init__(self, label: str, color, marker: str, stats: Summary, seeds: list):
        self.label, self.color, self.marker = label, color, marker
        self.stats = stats
        self.median, self.ci = pgr_point(stats)  # the headline PGR (the ratio; a schema <= 2 file's median)
        self.seeds = [v for v in seeds if v is not None]


def draw_pgr(groups: list[tuple[str, list[Entry]]], title: str, legend: list[tuple]):
    """Shared by pgr.png and the compare plot: groups on x, entries side by side in each."""
    from matplotlib.lines import Line2D

    width = max(6.0, 1.3 * sum(max(1, len(e)) for _, e in groups) / 2 + 2)
    fig = new_figure(min(width, 18), 5)
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
            ci = e.ci
            if ci:
                yerr = [[e.median - ci[0]], [ci[1] - e.median]]
                ax.errorbar([x], [e.median], yerr=yerr, color=e.color, capsize=4, linewidth=1.5, zorder=3)
            else:
                ax.annotate("no CI", (x, e.median), xytext=(6, 0), textcoords="offset points", fontsize=7,
                            color=e.color, va="center")
            ax.plot([x], [e.median], color=e.color, marker=e.marker, markersize=8, linestyle="none", zorder=4)
        reasons = {e.stats.pgr_reason or "no valid seeds" for _, e in nulls}
        if nulls and len(nulls) == n and len(reasons) == 1:
            # The whole group shares one reason (a small gap is per pair): one band, one label.
            _null_band(ax, band, gi - 0.4, gi + 0.4, "PGR n/a: " + reasons.pop())
        else:
            for x, e in nulls:
                half = 0.35 / max(n, 1)
                reason = e.stats.pgr_reason or "no valid seeds"
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




def misfit_figure(results: Results):
    """Per seed and method, Charikar et al.'s (2024) two quantities on the test docs: the misfit (mean squared
    distance of the student's P(1) to its teacher's) against the gain in squared error over that teacher.
    Their theorem (squared loss, a convex class holding the truth) gives gain >= misfit: points above the line."""
    from matplotlib.lines import Line2D

    fig = new_figure(7, 5.5)
    ax = fig.add_subplot()
    methods = _all_methods(results)
    palette = dict(zip(methods, colors(len(methods))))
    seen = []
    for pair in results.pairs:
        if pair.weak == pair.strong:
            continue
        for sd in pair.per_seed:
            for method, score in sd.transfer.items():
                if score.misfit is None or score.sq_gain is None:
                    continue
                ax.scatter([score.misfit], [score.sq_gain], color=palette.get(method, "0.3"),
                           marker=marker(method, methods), s=22, alpha=0.8)
                seen += [score.misfit, score.sq_gain]
    if seen:
        hi = max(max(seen), 0.01)
        ax.plot([0, hi], [0, hi], color="0.4", linestyle=":", linewidth=1)
    else:
        ax.text(0.5, 0.5, "no misfit recorded (results file of schema <= 2)", ha="center", va="center",
                transform=ax.transAxes)
    ax.axhline(0, color="black", linewidth=1)
    ax.set_xlabel("misfit: mean (student P(1) - teacher P(1))^2, test docs")
    ax.set_ylabel("gain: teacher's squared error - student's (true labels, test docs)")
    ax.set_title(f"{results.task.name}: misfit against gain in squared error, per seed", fontsize=10)
    ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=palette[m], marker=marker(m, methods), linestyle="none", label=m) for m in methods]
    handles.append(Line2D([], [], color="0.4", linestyle=":", label="gain = misfit"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def layer_depth(results: Results, model: str, layer: str) -> float | None:
    """Relative depth of a layer spec in a model: block N of L -> (N+1)/L; last (final norm) -> 1."""
    info = results.models.get(model)
    block = info.layers.get(layer) if info else None
    if block is None or info.n_layer is None:
        return None
    return relative_depth(block, info.n_layer)


def layers_figure(results: Results):
    """Ceiling accuracy per model and PGR per method against relative depth, with intervals."""
    from matplotlib.lines import Line2D

    fig = new_figure(12, 5)
    ax_acc, ax_pgr = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    models = list(dict.fromkeys(g.model for g in results.ground_truth))
    palette = dict(zip(models, colors(len(models))))
    for model in models:
        pts = sorted((layer_depth(results, model, g.layer), g.acc_mean, g.layer) for g in results.ground_truth
                     if g.model == model and g.half == "A" and layer_depth(results, model, g.layer) is not None)
        blocks = [(x, y) for x, y, layer in pts if layer != "last"]
        if blocks:
            ax_acc.plot(*zip(*blocks), color=palette[model], marker="o", markersize=4, label=model)
        for x, y, layer in pts:
            if layer == "last":  # the final norm: the default feature, drawn apart from the blocks
                ax_acc.scatter([x], [y], color=palette[model], marker="*", s=120, zorder=3)
    ax_acc.set_xlabel("relative depth (block N of L at (N+1)/L; star = last, the final norm)")
    ax_acc.set_ylabel("ceiling accuracy (true labels, mean over seeds)")
    ax_acc.legend(fontsize=8)
    ax_acc.grid(alpha=0.3)
    methods = _all_methods(results)
    mpalette = dict(zip(methods, colors(len(methods))))
    for k, method in enumerate(methods):
        pts = []
        for pair in results.pairs:
            s = pair.summary.get(method)
            x = layer_depth(results, pair.strong, pair.layer)
            value, ci = pgr_point(s) if s is not None else (None, None)
            if x is None or pair.weak == pair.strong or value is None:
                continue
            pts.append((x + 0.008 * (k - (len(methods) - 1) / 2), value, ci))  # side by side
        for x, y, ci in sorted(pts, key=lambda p: p[0]):
            if ci:
                ax_pgr.errorbar([x], [y], yerr=[[y - ci[0]], [ci[1] - y]], color=mpalette[method], capsize=3,
                                marker=marker(method, methods), markersize=5, linestyle="none")
        if pts:
            xs, ys, _ = zip(*sorted(pts, key=lambda p: p[0]))
            ax_pgr.plot(xs, ys, color=mpalette[method], linewidth=1, alpha=0.7)
    ax_pgr.axhline(0, color="black", linewidth=1)
    ax_pgr.axhline(1, color="0.5", linewidth=1, linestyle=":")
    ax_pgr.set_xlabel("relative depth of the strong model's layer")
    ax_pgr.set_ylabel("PGR (mean gain / mean gap, 95% interval)")
    ax_pgr.grid(alpha=0.3)
    ax_pgr.legend(handles=[Line2D([], [], color=mpalette[m], marker=marker(m, methods), label=m) for m in methods],
                  fontsize=8)
    fig.suptitle(f"{results.task.name}: features by layer (pairs without a clear gap have no PGR point)", fontsize=10)
    return fig
