"""report.md's "How much does each model already know?" and salience.png, from results.prompting.

A model is said to find the task salient when it shows it without a probe: its zero-shot AUROC's
interval lies above 0.5, or its k-shot accuracy with true labels lies above chance. The probe's
label efficiency (labels needed for 90% of its gain) is reported beside it, not folded in.
"""

from __future__ import annotations

import textwrap

from ..results import LabelCurve, ModelPrompting, PairPrompting, Prompting, Results
from .format import DASH, ci_text, f3, md_table, pgr_text

SALIENCE_PNG = "salience.png"


def est(estimate) -> str:
    return DASH if estimate is None or estimate.value is None else f"{estimate.value:.3f} {ci_text(estimate.ci)}".strip()


def labels_text(curve: LabelCurve | None) -> str:
    if curve is None or curve.labels_to_90 is None:
        return f"n/a ({curve.labels_to_90_reason})" if curve and curve.labels_to_90_reason else DASH
    first = curve.points[0].n_labels
    value = f"<= {first:.0f}" if curve.labels_to_90 <= first else f"{curve.labels_to_90:.0f}"
    ci = f" [{curve.labels_to_90_ci[0]:.0f}, {curve.labels_to_90_ci[1]:.0f}]" if curve.labels_to_90_ci else ""
    return value + ci


def salient(m: ModelPrompting, shots: int) -> tuple[bool, str]:
    """Whether prompting shows the model knows the task, and the evidence in words."""
    chance = m.curve.chance if m.curve else 0.5
    auroc = m.zero_shot.auroc
    if auroc.ci and auroc.ci[0] > 0.5:
        return True, f"zero-shot it ranks the docs by their label (AUROC {est(auroc)}, above 0.5)"
    few = m.few_shot
    if few and few.auroc.ci and few.auroc.ci[0] > 0.5:
        return True, (f"zero-shot it shows little (AUROC {est(auroc)}), but with {shots} true demonstrations it "
                      f"ranks the docs by their label (AUROC {est(few.auroc)})")
    if few and few.acc.ci and few.acc.ci[0] > chance:
        return True, (f"zero-shot it shows little (AUROC {est(auroc)}), but with {shots} true demonstrations "
                      f"it beats chance {chance:.3f} (accuracy {est(few.acc)})")
    return False, f"no sign of it from prompting (zero-shot AUROC {est(auroc)}" + (
        f", {shots}-shot AUROC {est(few.auroc)})" if few else ")")


def salience_section(results: Results) -> str:
    p: Prompting = results.prompting
    k = p.shots
    header = ["model", "zero-shot acc", "zero-shot AUROC", f"{k}-shot acc (true labels)", f"{k}-shot AUROC",
              "probe acc (all of A)", "labels to 90% of probe gain", "salient?"]
    rows, words = [], []
    for m in p.models:
        full = m.curve.points[-1] if m.curve else None
        yes, why = salient(m, k)
        rows.append([m.model, est(m.zero_shot.acc), est(m.zero_shot.auroc), est(m.few_shot.acc) if m.few_shot else DASH,
                     est(m.few_shot.auroc) if m.few_shot else DASH, f"{f3(full.acc_mean)} {ci_text(full.acc_ci)}" if full else DASH, labels_text(m.curve),
                     "yes" if yes else "no"])
        if m.curve and m.curve.labels_to_90 is not None:
            label_note = f"; its probe reaches 90% of its gain over chance with {labels_text(m.curve)} labels"
        else:
            label_note = f"; labels to 90%: {labels_text(m.curve)}" if m.curve else ""
        words.append(f"- {m.model}: {'salient' if yes else 'not salient by prompting'}: {why}{label_note}.")
    parts = [md_table(header, rows), "\n".join(words)]
    if p.pairs:
        parts.append(_pairs(results))
    parts.append(_notes(p, results))
    return "\n\n".join(parts)


def prompt_pgr_text(q: PairPrompting) -> str:
    """Prompting PGR (mean gain / mean gap) with Fieller's interval, or why there is none."""
    if q.pgr is None:
        return f"n/a ({q.pgr_reason})"
    return f"{q.pgr:.3f} {ci_text(q.pgr_ci)}" if q.pgr_ci else f"{q.pgr:.3f} (no interval: {q.pgr_reason})"


def _pairs(results: Results) -> str:
    p = results.prompting
    probe = {(q.weak, q.strong): q for q in results.pairs if q.layer == (p.models[0].curve.layer if p.models[0].curve else "last")}
    rows, words = [], []
    by_model = {m.model: m for m in p.models}
    for q in p.pairs:
        pgr = prompt_pgr_text(q)
        xent = probe.get((q.weak, q.strong))
        probe_pgr = xent.summary.get("xent") if xent else None
        probe_text = DASH if probe_pgr is None else pgr_text(probe_pgr)
        rows.append([q.weak, q.strong, f3(q.floor_acc), f3(q.ceiling_acc), est(q.acc),
                     f"{q.gap.value:+.3f} {ci_text(q.gap.ci)}", pgr, probe_text])
        strong_salient, _ = salient(by_model[q.strong], p.shots) if q.strong in by_model else (False, "")
        words.append(f"- {q.weak} → {q.strong}: the strong model {'finds' if strong_salient else 'shows no sign of finding'} "
                     f"the task salient; prompting PGR {pgr}, probe PGR (xent) {probe_text}.")
    header = ["weak", "strong", "floor: weak probe acc", f"ceiling: strong {p.shots}-shot acc (true labels)",
              f"strong {p.shots}-shot acc (weak labels)", "gap [95% CI]", "prompting PGR [95% CI]", "probe PGR (xent)"]
    return md_table(header, rows) + "\n\n" + "\n".join(words)


def _notes(p: Prompting, results: Results) -> str:
    words = " / ".join(repr(w) for w in p.label_words)
    return "\n".join([
        f"- Score of a prompt: log p(word 1) - log p(word 0) at its last position, label words {words} "
        f"(their first tokens) after the question {p.suffix!r} (prompting form v{p.prompt_version}). Accuracy is at "
        "threshold 0; AUROC needs no threshold, so a model merely biased towards one word is not called ignorant.",
        f"- {p.shots}-shot: demonstrations chosen per seed, balanced over the labels, the same for every test doc of "
        "that seed: true labels from half A; weak labels (the weak probe's hard labels on half B, which its "
        "students learn from) for the pairs." if p.shots else "- --shots 0: zero-shot only.",
        "- Prompting PGR = (strong k-shot acc with weak labels - weak probe acc) / (strong k-shot acc with true labels "
        "- weak probe acc), per seed; summarised and gated by the gap's interval exactly as the probe PGR is.",
        "- Label efficiency: heads of the ground-truth recipe on nested, label-stratified subsets of half A "
        f"({', '.join(map(str, p.curve_sizes))} labels, then all of A), every seed; chance is the test docs' "
        "majority-label rate. salience.png shows the curves with the prompting accuracies as horizontal lines.",
        "- Intervals: 95% bootstrap, resampling seeds and test docs (zero-shot: test docs).",
    ])


def salience_figure(results: Results):
    """Probe accuracy against labels per model (log2 x), with zero- and k-shot accuracy as horizontal lines."""
    from .plots import colors, new_figure

    p = results.prompting
    fig = new_figure(7.5, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for color, m in zip(colors(len(p.models)), p.models):
        if m.curve:
            x = [pt.n_labels for pt in m.curve.points]
            ax.plot(x, [pt.acc_mean for pt in m.curve.points], marker="o", color=color, label=f"{m.model} probe")
            lo = [pt.acc_ci[0] if pt.acc_ci else pt.acc_mean for pt in m.curve.points]
            hi = [pt.acc_ci[1] if pt.acc_ci else pt.acc_mean for pt in m.curve.points]
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
        ax.axhline(m.zero_shot.acc.value, color=color, linestyle="--", linewidth=1, label=f"{m.model} zero-shot")
        if m.few_shot:
            ax.axhline(m.few_shot.acc.value, color=color, linestyle=":", linewidth=1.5, label=f"{m.model} {p.shots}-shot")
    chance = next((m.curve.chance for m in p.models if m.curve), None)
    if chance is not None:
        ax.axhline(chance, color="grey", linewidth=0.8, label="chance (majority label)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("ground-truth labels (docs of half A)")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{results.task.name}: probe label efficiency and prompting")
    ax.legend(fontsize=7, loc="best")
    return fig


def compare_salience(results_a: Results, results_b: Results, label_a: str, label_b: str) -> str | None:
    """`report --compare`: the prompting numbers of both runs side by side (None when neither has them)."""
    pa, pb = results_a.prompting, results_b.prompting
    if pa is None and pb is None:
        return None
    if pa is None or pb is None:
        return f"Only {label_a if pa else label_b} ran --prompting."
    rows = []
    for name in [m.model for m in pa.models] + [m.model for m in pb.models if not pa.model(m.model)]:
        a, b = pa.model(name), pb.model(name)
        cell = lambda m, f: f(m) if m else "(absent)"  # noqa: E731
        rows.append([name, *[f"{cell(a, f)} / {cell(b, f)}" for f in (
            lambda m: est(m.zero_shot.auroc), lambda m: est(m.few_shot.acc) if m.few_shot else DASH,
            lambda m: labels_text(m.curve))]])
    pairs = []
    index_b = {(q.weak, q.strong): q for q in pb.pairs}
    for q in pa.pairs:
        other = index_b.get((q.weak, q.strong))
        text = prompt_pgr_text
        pairs.append([q.weak, q.strong, f"{est(q.acc)} / {est(other.acc) if other else '(absent)'}",
                      f"{text(q)} / {text(other) if other else '(absent)'}"])
    out = md_table(["model", f"zero-shot AUROC ({label_a} / {label_b})", f"few-shot acc, true labels ({pa.shots} / {pb.shots} shots)",
                    "labels to 90%"], rows)
    if pairs:
        out += "\n\n" + md_table(["weak", "strong", f"few-shot acc, weak labels ({label_a} / {label_b})",
                                  f"prompting PGR ({label_a} / {label_b})"], pairs)
    return out


def salience_lines(results: Results) -> list[str]:
    """The terminal table's prompting block (ASCII, within 100 columns)."""
    p = results.prompting
    k = p.shots
    lines = ["", f"prompting ({k} shots; score = log p({p.label_words[1]!r}) - log p({p.label_words[0]!r})):",
             f"  {'model':<22} {'0-shot acc':>10} {'0-shot AUROC':>12} {f'{k}-shot acc':>10} {f'{k}-shot AUROC':>12} "
             f"{'labels to 90%':>14}  salient?"]
    for m in p.models:
        few = m.few_shot
        lines.append(f"  {m.model[:22]:<22} {f3(m.zero_shot.acc.value):>10} {f3(m.zero_shot.auroc.value):>12} "
                     f"{f3(few.acc.value if few else None):>10} {f3(few.auroc.value if few else None):>12} "
                     f"{labels_text(m.curve).split(' (')[0][:14]:>14}  {'yes' if salient(m, k)[0] else 'no'}")
    for q in p.pairs:
        pgr = prompt_pgr_text(q)
        lines += textwrap.wrap(f"{q.weak} -> {q.strong}: {k}-shot with weak labels {f3(q.acc.value)}, prompting PGR {pgr}",
                               width=100, initial_indent="  ", subsequent_indent="    ")
    return lines
