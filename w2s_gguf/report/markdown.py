"""The text of report.md, sections in the order a reader needs them."""

from __future__ import annotations

from dataclasses import asdict

from ..results import ModelInfo, Results, TaskInfo
from .format import DASH, PGR_RULE, ci_text, f3, md_table, methods_of, pair_label, pgr_text, plan_text, sklearn_checked
from .salience import SALIENCE_PNG, salience_section
from .table import HOLM_NOTE, diff_text
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
        "## How many docs would settle it\n\n" + _plans(results),
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
              "transfer acc", "AUROC", "agreement", "misfit", "sq gain", "disagree B", "vs xent [95% CI]",
              "PGR [95% CI]", "PGR median", *(["sklearn PGR [95% CI]"] if checked else []), "valid seeds"]
    rows, verdicts = [], []
    for pair in results.pairs:
        sk = pair.sklearn_summary or {}
        gap = f"{f3(pair.mean_gap)} {ci_text(pair.gap.ci)}" if pair.gap else f3(pair.mean_gap)
        for method in methods_of(results, pair):
            s = pair.summary[method]
            rows.append([pair.weak, pair.strong, *([pair.layer] if layered else []), method, f3(pair.weak_acc),
                         f3(pair.strong_acc), gap, f3(s.transfer_acc_mean), f3(s.auroc_mean), f3(s.agreement_mean),
                         _small(s.misfit_mean), _small(s.sq_gain_mean), f3(s.disagree_train_mean),
                         diff_text(s.vs_xent), pgr_text(s), f3(s.pgr_median),
                         *([pgr_text(sk[method]) if method in sk else DASH] if checked else []),
                         f"{s.n_valid_seeds}/{len(results.seeds)}"])
        verdicts.append(_verdict(pair, results))
    ensembles = [f"{p.weak} is the mean of {', '.join(p.teachers)}'s test predictions, the teacher of the "
                 f"ensemble student" for p in results.pairs if p.teachers]
    note = ("Accuracies are means over seeds on the same test docs. vs xent is the method's accuracy minus xent's, "
            f"paired over the same seeds and test docs; {HOLM_NOTE}. "
            + ("Strong accuracies are ceilings trained on half B (`--ceiling-half B`). "
               if results.settings.get("ceiling_half") == "B" else "") + " ".join(e + "." for e in dict.fromkeys(ensembles)))
    return md_table(header, rows) + "\n\n" + note.strip() + "\n\n" + "\n".join(verdicts)


def _small(x) -> str:
    """misfit and sq gain are squared distances of probabilities, often below 0.001."""
    return f"{x:.4f}" if isinstance(x, float) else DASH


def _verdict(pair, results: Results) -> str:
    """Which methods beat (or lose to) xent after Holm's correction: the claim the table supports."""
    def stands(d) -> bool:
        return d.holm if d.holm is not None else (d.ci[0] > 0 or d.ci[1] < 0)

    better = [m for m, s in pair.summary.items() if s.vs_xent and stands(s.vs_xent) and s.vs_xent.diff > 0]
    worse = [m for m, s in pair.summary.items() if s.vs_xent and stands(s.vs_xent) and s.vs_xent.diff < 0]
    label = pair_label(pair, results)
    if len(pair.summary) < 2 or "xent" not in pair.summary:
        return f"- {label}: no comparison with xent in this run."
    return (f"- {label}: better than xent: {', '.join(better) or 'none'}; worse: {', '.join(worse) or 'none'}; "
            f"every other difference is within noise (Holm, family-wise 5% over {len(pair.summary) - 1} methods).")


def _pgr_note(results: Results) -> str:
    settings = results.settings
    return "\n".join([
        "- PGR = (transfer acc - weak acc) / (strong acc - weak acc): the share of the gap between the weak "
        "teacher and the strong ceiling that the strong student recovers from weak labels. 0 means the student "
        "is no better than its teacher, 1 means it matches the ceiling; values below 0 or above 1 happen and are real.",
        f"- The rule: {PGR_RULE} ({settings.get('min_gap', DASH)}); otherwise the PGR is null with the gap and "
        "its interval as the reason (a gap that cannot be told from zero makes any ratio noise).",
        "- The mean gain over the mean gap weighs every seed alike, so one seed with a tiny gap cannot dominate "
        "it; its 95% interval is Fieller's, for the ratio over new seeds and new test docs. PGR median is OAI's "
        "summary, the median of per-seed PGRs over the seeds whose own gap reaches min_gap in whole docs.",
        "- Every interval is a 95% t interval from the run's own variance per seed, per doc and their "
        "interaction (two-way random effects, Satterthwaite's df): it covers a rerun with new seeds and new "
        "test docs. Nothing is resampled (the setting n_bootstrap is recorded but no longer used).",
        ("- sklearn PGR repeats the protocol with scikit-learn logistic regression, an independent check "
         "of the torch head: a different sign is a reason to distrust both." if sklearn_checked(results) else
         "- The independent scikit-learn check did not run (add --sklearn-check to repeat the xent runs with "
         "scikit-learn's logistic regression)."),
        "- AUROC is against true labels; agreement is how often the student agrees with its weak "
        "teacher on the test docs (high agreement with low PGR = the student imitated its teacher's errors).",
        "- misfit is Charikar et al.'s (2024): the mean squared distance between the student's and its "
        "teacher's P(label 1) on the test docs, the teacher being what its targets came from (the weak model; "
        "for ensemble the teachers' mean, for knn-relabel the kNN-smoothed weak labels, for bootstrap the "
        "previous round, for hard the weak model's hard labels). sq gain is the teacher's squared error minus "
        "the student's against the true labels; their theorem (squared loss, a convex class holding the truth) "
        "gives sq gain >= misfit, and misfit.png shows whether that holds here. disagree B is another "
        "quantity: the share of B's training docs where the student's class is not its target's.",
    ])


def _plans(results: Results) -> str:
    """Per pair: the test docs (at this run's seeds) that would settle the gap and each method's PGR."""
    available = results.task.n_test_available
    lines = ["Projected from this run's own variance per seed, per doc and their interaction (core/planning.py), "
             "taking the observed gap and PGR as the truth; a plan to size the next run with, not a result. "
             "The seed-to-seed variation does not shrink with more docs: where it alone is too wide, more "
             "seeds are the answer." + (f" The task can supply {available:,} test docs." if available else "")]
    for pair in results.pairs:
        if pair.gap_plan is None:
            continue
        clear = "already clear of min_gap" if pair.gap and pair.gap.distinguishable else plan_text(pair.gap_plan, available)
        lines.append(f"- {pair_label(pair, results)}: gap {f3(pair.mean_gap)} above min_gap: {clear}; PGR +-0.1: "
                     + "; ".join(f"{m} {plan_text(s.pgr_plan, available)}" for m, s in pair.summary.items()
                                 if s.pgr_plan is not None) + ".")
    return "\n".join(lines) if len(lines) > 1 else "no pair with several seeds and two different models in this run"


def _ground_truth(results: Results) -> str:
    layered, checked = len(results.layers) > 1, sklearn_checked(results)
    halves = any(gt.half != "A" for gt in results.ground_truth)  # --ceiling-half B: which head each row is
    rows = []
    for gt in results.ground_truth:
        per_seed = ", ".join(f3(s.acc) for s in gt.per_seed)
        role = "teacher (weak acc)" if gt.half == "A" else "ceiling (strong acc)"
        rows.append([gt.model, *([gt.layer] if layered else []), *([f"{gt.half}: {role}"] if halves else []),
                     f3(gt.acc_mean), f3(gt.acc_median), f3(gt.auroc_mean),
                     *([f3(gt.sklearn.acc_mean if gt.sklearn else None)] if checked else []), per_seed])
    header = ["model", *(["layer"] if layered else []), *(["trained on half"] if halves else []), "acc mean",
              "acc median", "AUROC mean", *(["sklearn acc mean"] if checked else []), "acc per seed"]
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
