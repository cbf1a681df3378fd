"""The text-only baseline's lines in the table and report.md: each model's probe against what the words alone give."""

from __future__ import annotations

from ..results import Results
from .format import f3, md_table


def probe_verdicts(results: Results) -> list[str]:
    """'smollm2-135m's probe 0.573 is below what the words alone give', one per model (its best layer)."""
    baseline = results.text_baseline
    if baseline is None:
        return []
    lo, hi = baseline.ci
    verdicts = []
    for model in dict.fromkeys(g.model for g in results.ground_truth):
        best = max((g for g in results.ground_truth if g.model == model), key=lambda g: g.acc_mean)
        where = "" if len(results.layers) == 1 else f" (layer {best.layer})"
        if best.acc_mean < lo:
            verdict = "is below what the words alone give"
        elif best.acc_mean > hi:
            verdict = "is above what the words alone give"
        else:
            verdict = "is within the text-only interval"
        verdicts.append(f"{model}'s probe {f3(best.acc_mean)}{where} {verdict}")
    return verdicts


def text_only_line(results: Results) -> str | None:
    """One line for the terminal table, or None for a file without the baseline (schema 2)."""
    baseline = results.text_baseline
    if baseline is None:
        return None
    head = f"text-only {f3(baseline.acc_mean)} [{f3(baseline.ci[0])},{f3(baseline.ci[1])}]"
    return f"{head}: " + "; ".join(probe_verdicts(results)) if results.ground_truth else head


def text_only_section(results: Results) -> str:
    """report.md's section: the verdicts, how to read them, and the per-seed numbers."""
    baseline = results.text_baseline
    if baseline is None:
        return "not recorded (a results file from before schema 3)"
    verdicts = "\n".join(f"- {v}." for v in probe_verdicts(results))
    rows = [[s.seed, f3(s.acc), f3(s.auroc)] for s in baseline.per_seed]
    settings = "; ".join(f"{k}: {v}" for k, v in baseline.settings.items())
    return "\n\n".join([
        f"Text-only accuracy **{f3(baseline.acc_mean)}** [{f3(baseline.ci[0])}, {f3(baseline.ci[1])}] "
        f"({baseline.level:.0%} interval, covering new seeds and new test docs): a logistic regression on the docs' text alone, "
        "trained on half A of each seed and scored on the same test docs as the probes.",
        verdicts,
        "A probe below it learned less than the words show; a baseline far above chance on a task that should "
        "need the model (chess, a distractor task) points to a surface shortcut in the data "
        "(`w2s-gguf tasks audit TASK` looks further).",
        md_table(["seed", "acc", "AUROC"], rows),
        f"Settings: {settings}.",
    ])
