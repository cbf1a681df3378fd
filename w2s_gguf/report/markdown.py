"""The text of report.md, sections in the order a reader needs them."""

from __future__ import annotations

from dataclasses import asdict

from ..results import ModelInfo, Results, TaskInfo
from .format import DASH, ci_text, f3, md_table, methods_of, pair_label, pgr_text, sklearn_checked
from .salience import SALIENCE_PNG, salience_section
from .table import diff_text
from .text_only import text_only_section

ACCURACY_PNG = "accuracy.png"
PGR_PNG = "pgr.png"
MISFIT_PNG = "misfit.png"
LAYERS_PNG = "layers.png"


def figure_names(results: Results) -> list[str]:
    """The plots a run gets: layers.png only when it compares layers."""
    return ([ACCURACY_PNG, PGR_PNG, MISFIT_PNG] + ([LAYERS_PNG] if len(results.layers) > 1 else [])
            + ([SALIENCE_PNG] if results.prompting else []))


def report_markdown(results: Results) -> str:
    sections = [
        f"# w2s-gguf report: {results.task.name}",
        f"Created {results.created or DASH} by `{results.command or DASH}`.",
        "## Summary\n\n" + _summary(results),
        "## Text-only baseline\n\n" + text_only_section(results),
        "\n\n".join(f"![{name[:-4]}]({name})" for name in figure_names(results)),
        "## How to read PGR\n\n" + _pgr_note(results),
        *(["## How much does each model already know?\n\n" + salience_section(results)] if results.prompting else []),
        "## Ground truth (each model on true labels)\n\n" + _ground_truth(results),
        "## Per seed\n\n" + _per_seed(results),
        "## Task\n\n" + _task(results.task),
        "## Models\n\n" + _models(results.models),
        "## Settings\n\n" + md_table(["setting", "value"], [[k, v] for k, v in results.settings.items()]),
        "## Timings\n\n" + _key_values(results.timings),
        "## Versions\n\n" + _key_values(results.versions),
    ]
    return "\n\n".join(sections) + "\n"


def _key_values(d: dict) -> str:
    if not d:
        return "not recorded"
    return md_table(["", "value"], [[k, f3(v) if isinstance(v, float) else v] for k, v in d.items()])


def _summary(results: Results) -> str:
    if not results.pairs:
        return "no weak/strong pairs in this run"
    layered = len(results.layers) > 1  # a layer column only when a run compares layers
    checked = sklearn_checked(results)
    header = ["weak", "strong", *(["layer"] if layered else []), "method", "weak acc", "strong acc", "gap [95% CI]",
              "transfer acc", "AUROC", "agreement", "misfit B", "vs xent [95% CI]", "PGR median [95% CI]",
              *(["sklearn PGR [95% CI]"] if checked else []), "valid seeds"]
    rows, verdicts = [], []
    for pair in results.pairs:
        sk = pair.sklearn_summary or {}
        gap = f"{f3(pair.mean_gap)} {ci_text(pair.gap.ci)}" if pair.gap else f3(pair.mean_gap)
        for method in methods_of(results, pair):
            s = pair.summary[method]
            rows.append([pair.weak, pair.strong, *([pair.layer] if layered else []), method, f3(pair.weak_acc),
                         f3(pair.strong_acc), gap, f3(s.transfer_acc_mean), f3(s.auroc_mean), f3(s.agreement_mean),
                         f3(s.misfit_train_mean), diff_text(s.vs_xent), pgr_text(s),
                         *([pgr_text(sk[method]) if method in sk else DASH] if checked else []),
                         f"{s.n_valid_seeds}/{len(results.seeds)}"])
        verdicts.append(_verdict(pair, results))
    note = ("Accuracies are means over seeds on the same test docs; PGR is the median over valid seeds. "
            "vs xent is the method's accuracy minus xent's, paired over the same seeds and test docs; "
            "* marks an interval that excludes 0.")
    return md_table(header, rows) + "\n\n" + note + "\n\n" + "\n".join(verdicts)


def _verdict(pair, results: Results) -> str:
    """Which methods the intervals say beat (or lose to) xent: the claim the table supports."""
    better = [m for m, s in pair.summary.items() if s.vs_xent and s.vs_xent.distinguishable]
    worse = [m for m, s in pair.summary.items() if s.vs_xent and s.vs_xent.ci[1] < 0]
    label = pair_label(pair, results)
    if len(pair.summary) < 2 or "xent" not in pair.summary:
        return f"- {label}: no comparison with xent in this run."
    return (f"- {label}: better than xent: {', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}; "
            f"every other difference is within noise.")


def _pgr_note(results: Results) -> str:
    settings = results.settings
    return "\n".join([
        "- PGR = (transfer acc - weak acc) / (strong acc - weak acc), per seed: the share of the gap "
        "between the weak teacher and the strong ceiling that the strong student recovers from weak labels.",
        "- 0 means the student is no better than its teacher, 1 means it matches the ceiling; "
        "values below 0 or above 1 happen and are real.",
        f"- A seed counts only when strong acc - weak acc >= min_gap ({settings.get('min_gap', DASH)}) and "
        "weak != strong; otherwise its PGR is null with the reason shown. A tiny gap divides noise by "
        "noise (OAI's anthropic_hh row shows PGR 0.81 from a gap of about 0.005).",
        f"- The summary is the median over valid seeds with a bootstrap 95% interval that resamples "
        f"seeds and test docs ({settings.get('n_bootstrap', DASH)} resamples); it is null when the mean gap "
        "over seeds is below min_gap. With gaps of a few points the interval is wide: read it before the median.",
        ("- sklearn PGR repeats the protocol with scikit-learn logistic regression, an independent check "
         "of the torch head: a different sign is a reason to distrust both." if sklearn_checked(results) else
         "- The independent scikit-learn check did not run (add --sklearn-check to repeat the xent runs with "
         "scikit-learn's logistic regression)."),
        "- AUROC is against true labels; agreement is how often the student agrees with its weak "
        "teacher on the test docs (high agreement with low PGR = the student imitated its teacher's errors).",
        "- The gap's interval decides: a PGR is shown only when the paired 95% interval of strong minus weak "
        "accuracy lies above min_gap; otherwise the ratio would divide noise by noise.",
        "- misfit B is how often the student disagrees with the weak labels it was trained on (argmax, on half B). "
        "In Charikar et al.'s (2024) analysis the gain over the teacher is at least about the misfit; misfit.png "
        "(gain against misfit per seed, with the line gain = misfit) shows whether that holds here.",
    ])


def _ground_truth(results: Results) -> str:
    layered, checked = len(results.layers) > 1, sklearn_checked(results)
    rows = []
    for gt in results.ground_truth:
        per_seed = ", ".join(f3(s.acc) for s in gt.per_seed)
        rows.append([gt.model, *([gt.layer] if layered else []), f3(gt.acc_mean), f3(gt.acc_median), f3(gt.auroc_mean),
                     *([f3(gt.sklearn.acc_mean if gt.sklearn else None)] if checked else []), per_seed])
    header = ["model", *(["layer"] if layered else []), "acc mean", "acc median", "AUROC mean",
              *(["sklearn acc mean"] if checked else []), "acc per seed"]
    return md_table(header, rows)


def _per_seed(results: Results) -> str:
    parts = []
    for pair in results.pairs:
        rows, sk_rows = [], []
        for seed in pair.per_seed:
            for method in methods_of(results, pair):
                t = seed.transfer.get(method)
                rows.append([seed.seed, method, f3(seed.weak_acc), f3(seed.strong_acc), f3(t and t.acc),
                             f3(t and t.auroc), f3(t and t.agreement), pgr_text(t, with_ci=False)])
            sk = seed.sklearn
            sk_rows.append([seed.seed, f3(sk and sk.weak_acc), f3(sk and sk.strong_acc),
                            f3(sk and sk.transfer_acc), f3(sk and sk.pgr)])
        parts.append(f"### {pair_label(pair, results)}\n\n" + md_table(
            ["seed", "method", "weak acc", "strong acc", "transfer acc", "AUROC", "agreement", "PGR"], rows))
        if pair.sklearn_summary:
            parts.append("sklearn check:\n\n" + md_table(["seed", "weak acc", "strong acc", "transfer acc", "PGR"], sk_rows))
    return "\n\n".join(parts) or "no weak/strong pairs in this run"


def _task(task: TaskInfo) -> str:
    return md_table(["", "value"], [[k, f3(v) if isinstance(v, float) else v] for k, v in asdict(task).items()])


def _models(models: dict[str, ModelInfo]) -> str:
    header = ["model", "architecture", "sha256", "size MB", "dim", "pooling", "max tokens", "docs", "tokens",
              "truncated", "seconds", "tok/s", "GPU offload", "source"]
    rows = [[name, m.architecture, m.sha256[:12], f"{m.size / 1e6:.1f}", m.dim, m.pooling, m.max_tokens,
             m.n_computed, m.n_tokens, m.n_truncated, f"{m.seconds:.1f}" if m.seconds is not None else DASH,
             f"{m.tokens_per_second:.0f}" if m.tokens_per_second is not None else DASH, m.gpu_offload, m.source]
            for name, m in models.items()]
    return md_table(header, rows) + "\n\n" + "docs = embeddings computed in this run (0 = all from cache)."
