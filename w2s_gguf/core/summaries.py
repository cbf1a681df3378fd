"""From trained heads' test predictions to the typed results: per seed, then over seeds.

The rule for PGR, stated once (core/stats.py and intervals.py for the statistics): a pair's
summary PGR (the mean gain over the mean gap, its interval and OAI's median of per-seed PGRs) is
reported only when the 95% interval of strong minus weak accuracy lies above min_gap; otherwise
it is null with the gap and its interval as the reason. Per seed, a PGR needs that seed's own gap
to reach min_gap in whole docs. report/markdown.py prints this rule as `PGR_RULE`.

A method vs xent is a family of comparisons per pair: the star goes by Holm's correction over the
pair's methods (family-wise 5%), each difference keeping its own 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .intervals import holm, misfit, paired_diff_ci, sq_gain
from .planning import gap_plan, pgr_components, pgr_plan
from ..results import (Difference, GroundTruth, PairResult, PairSeed, Plan, SeedScore, SklearnPairSeed, SklearnScores,
                       Summary, TransferScore)
from .stats import accuracy, agreement, auroc, pgr, pgr_ci, summarize_pgr

SAME_MODEL = "weak and strong are the same model"
PGR_HALF_WIDTH = 0.1  # the PGR plan: test docs for an interval of +-0.1


@dataclass
class Run:
    """Test-set predictions of one trained head; for a student, its teacher on the test docs when that
    is not the pair's weak model, and its disagreement with its training targets."""

    proba: np.ndarray
    teacher: np.ndarray | None = None
    disagree_train: float | None = None

    def metrics(self, labels: np.ndarray) -> dict[str, float | None]:
        return {"acc": accuracy(labels, self.proba), "auroc": auroc(labels, self.proba)}

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return np.argmax(self.proba, axis=1) == labels


def ground_truth_entry(model: str, layer: str, seeds: list[int], y_test: np.ndarray, runs: dict,
                       sk_runs: dict | None, half: str = "A") -> GroundTruth:
    """One model's heads on true labels of one half: runs[model, seed] (sk_runs: scikit-learn's)."""
    per_seed = [SeedScore(seed=seed, **runs[model, seed].metrics(y_test)) for seed in seeds]
    accs = [r.acc for r in per_seed]
    sklearn = None
    if sk_runs is not None:
        sk_accs = [sk_runs[model, seed].metrics(y_test)["acc"] for seed in seeds]
        sklearn = SklearnScores([SeedScore(seed, a) for seed, a in zip(seeds, sk_accs)], float(np.mean(sk_accs)))
    return GroundTruth(model=model, layer=layer, per_seed=per_seed, acc_mean=float(np.mean(accs)),
                       acc_median=float(np.median(accs)), auroc_mean=_mean([r.auroc for r in per_seed]),
                       sklearn=sklearn, half=half)


def pair_result(settings, methods: list[str], layer: str, w: str, s: str, seeds: list[int], y_test: np.ndarray,
                weak_on_test: dict, ceiling: dict, transfer: dict, sk: dict | None,
                teachers: list[str] | None = None) -> PairResult:
    """One weak -> strong pair (w may be an ensemble of `teachers`, its weak_on_test their mean)."""
    same = w == s
    methods = [m for m in methods if all((w, s, m, seed) in transfer for seed in seeds)]
    n_test = len(y_test)
    weak_correct = np.stack([weak_on_test[w, seed].correct(y_test) for seed in seeds])
    strong_correct = np.stack([ceiling[s, seed].correct(y_test) for seed in seeds])
    gap = paired_diff_ci(strong_correct, weak_correct, threshold=settings.min_gap)
    per_seed = []
    for seed in seeds:
        weak_run = weak_on_test[w, seed]
        weak_m, strong_m = weak_run.metrics(y_test), ceiling[s, seed].metrics(y_test)
        scores = {}
        for method in methods:
            run = transfer[w, s, method, seed]
            metrics = run.metrics(y_test)
            value, reason = (None, SAME_MODEL) if same else pgr(weak_m["acc"], strong_m["acc"], metrics["acc"],
                                                                settings.min_gap, n_test)
            teacher = weak_run.proba if run.teacher is None else run.teacher
            scores[method] = TransferScore(**metrics, agreement=agreement(run.proba, weak_run.proba), pgr=value,
                                           pgr_reason=reason, misfit=misfit(run.proba, teacher),
                                           sq_gain=sq_gain(run.proba, teacher, y_test), disagree_train=run.disagree_train)
        sk_seed = None
        if sk is not None:
            sw, ss, st = (sk[k].metrics(y_test)["acc"] for k in (("gt", w, seed), ("ceiling", s, seed), ("transfer", w, s, seed)))
            sk_seed = SklearnPairSeed(sw, ss, st, None if same else pgr(sw, ss, st, settings.min_gap, n_test)[0])
        per_seed.append(PairSeed(seed, weak_m["acc"], weak_m["auroc"], strong_m["acc"], strong_m["auroc"], scores, sk_seed))

    correct = {m: np.stack([transfer[w, s, m, seed].correct(y_test) for seed in seeds]) for m in methods}
    summary = {m: summarize(settings, same, gap, [r.transfer[m] for r in per_seed], weak_correct, strong_correct,
                            correct[m]) for m in methods}
    if "xent" in correct:
        diffs = {m: paired_diff_ci(correct[m], correct["xent"], level=gap["level"]) for m in methods if m != "xent"}
        different = holm({m: d["p_value"] for m, d in diffs.items()}, alpha=1 - gap["level"])
        for m, d in diffs.items():
            summary[m].vs_xent = Difference(**d, holm=different[m])
    result = PairResult(weak=w, strong=s, layer=layer, weak_acc=_mean([r.weak_acc for r in per_seed]),
                        strong_acc=_mean([r.strong_acc for r in per_seed]), per_seed=per_seed, summary=summary,
                        gap=Difference(**gap), teachers=teachers)
    if not same and len(seeds) > 1:
        plan = gap_plan(gap, settings.min_gap)
        result.gap_plan = _plan(f"gap interval above min_gap {settings.min_gap}", plan)
    if sk is not None:
        rows = [TransferScore(acc=r.sklearn.transfer_acc, auroc=None, agreement=None, pgr=r.sklearn.pgr) for r in per_seed]
        sk_correct = {k: np.stack([sk[k + (seed,)].correct(y_test) for seed in seeds])
                      for k in (("gt", w), ("ceiling", s), ("transfer", w, s))}
        sk_gap = paired_diff_ci(sk_correct["ceiling", s], sk_correct["gt", w], threshold=settings.min_gap)
        result.sklearn_summary = {"xent": summarize(settings, same, sk_gap, rows, sk_correct["gt", w],
                                                    sk_correct["ceiling", s], sk_correct["transfer", w, s])}
    return result


def summarize(settings, same: bool, gap: dict, rows: list[TransferScore], weak_correct: np.ndarray,
              strong_correct: np.ndarray, transfer_correct: np.ndarray) -> Summary:
    """A method over seeds, PGR by the rule of the module docstring (a chess run with a gap of exactly
    min_gap once printed PGR 2.0: a gap that cannot be told from zero makes any ratio noise)."""
    accs = [r.acc for r in rows]
    per = summarize_pgr(weak_correct.mean(axis=1), strong_correct.mean(axis=1), transfer_correct.mean(axis=1),
                        settings.min_gap, weak_correct.shape[1])
    median, ratio, ci, plan = per["median"], None, None, None
    reason: Any = None
    if same:
        median, reason = None, SAME_MODEL
    elif not gap["distinguishable"]:
        median = None
        lo, hi = gap["ci"]
        reason = f"gap {gap['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] not clearly above min_gap {settings.min_gap}"
    else:
        fieller = pgr_ci(weak_correct, strong_correct, transfer_correct, gap["level"])
        ratio, ci, reason = fieller["pgr"], fieller["ci"], fieller["reason"]
    if not same and len(rows) > 1:
        p = pgr_plan(pgr_components(weak_correct, strong_correct, transfer_correct), PGR_HALF_WIDTH, level=gap["level"])
        plan = _plan(f"PGR interval +-{PGR_HALF_WIDTH}", p)
    return Summary(transfer_acc_mean=float(np.mean(accs)), transfer_acc_median=float(np.median(accs)),
                   auroc_mean=_mean([r.auroc for r in rows]), agreement_mean=_mean([r.agreement for r in rows]),
                   pgr=ratio, pgr_ci=ci, pgr_median=median, pgr_reason=reason, n_valid_seeds=per["n_valid"],
                   misfit_mean=_mean([r.misfit for r in rows]), sq_gain_mean=_mean([r.sq_gain for r in rows]),
                   disagree_train_mean=_mean([r.disagree_train for r in rows]), pgr_plan=plan)


def _plan(target: str, plan: dict[str, Any]) -> Plan:
    return Plan(target, **{k: plan[k] for k in ("n_seeds", "n_test", "seeds_min", "reason", "more_seeds",
                                               "n_test_more_seeds")})


def _mean(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None
