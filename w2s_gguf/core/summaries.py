"""From trained heads' test predictions to the typed results: per seed, then over seeds.

PGR per seed follows OAI (a seed counts only when its gap is >= min_gap);
the summary is the median over valid seeds with a bootstrap interval that
resamples seeds and test docs, and is null, with the reason, when the mean
gap over seeds is below min_gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .intervals import misfit, paired_diff_ci
from ..results import (Difference, GroundTruth, PairResult, PairSeed, SeedScore, SklearnPairSeed, SklearnScores, Summary,
                      TransferScore)
from .stats import accuracy, agreement, auroc, bootstrap_pgr_ci, pgr, summarize_pgr

SAME_MODEL = "weak and strong are the same model"


@dataclass
class Run:
    """Test-set predictions of one trained head (and, for a student, its predictions on half B)."""

    proba: np.ndarray
    train_proba: np.ndarray | None = None

    def metrics(self, labels: np.ndarray) -> dict[str, float | None]:
        return {"acc": accuracy(labels, self.proba), "auroc": auroc(labels, self.proba)}

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return np.argmax(self.proba, axis=1) == labels


def ground_truth_entry(model: str, layer: str, seeds: list[int], y_test: np.ndarray,
                       gt: dict, sk: dict | None) -> GroundTruth:
    per_seed = [SeedScore(seed=seed, **gt[model, seed].metrics(y_test)) for seed in seeds]
    accs = [r.acc for r in per_seed]
    sklearn = None
    if sk is not None:
        sk_accs = [sk["gt", model, seed].metrics(y_test)["acc"] for seed in seeds]
        sklearn = SklearnScores([SeedScore(seed, a) for seed, a in zip(seeds, sk_accs)], float(np.mean(sk_accs)))
    return GroundTruth(model=model, layer=layer, per_seed=per_seed, acc_mean=float(np.mean(accs)),
                       acc_median=float(np.median(accs)), auroc_mean=_mean([r.auroc for r in per_seed]), sklearn=sklearn)


def pair_result(settings, methods: list[str], layer: str, w: str, s: str, seeds: list[int], y_test: np.ndarray,
                weak_on_test: dict, ceiling: dict, transfer: dict, weak_labels: dict, sk: dict | None) -> PairResult:
    same = w == s
    methods = [m for m in methods if all((w, s, m, seed) in transfer for seed in seeds)]
    weak_correct = np.stack([weak_on_test[w, seed].correct(y_test) for seed in seeds])
    strong_correct = np.stack([ceiling[s, seed].correct(y_test) for seed in seeds])
    # The gap itself, resampled like the PGR: a PGR exists only where this interval clears min_gap.
    gap = paired_diff_ci(strong_correct, weak_correct, settings.n_bootstrap, seed=0, threshold=settings.min_gap)
    per_seed = []
    for seed in seeds:
        weak_m, strong_m = weak_on_test[w, seed].metrics(y_test), ceiling[s, seed].metrics(y_test)
        scores = {}
        for method in methods:
            run = transfer[w, s, method, seed]
            metrics = run.metrics(y_test)
            value, reason = (None, SAME_MODEL) if same else pgr(weak_m["acc"], strong_m["acc"], metrics["acc"], settings.min_gap)
            agree = agreement(run.proba, weak_on_test[w, seed].proba)
            scores[method] = TransferScore(**metrics, agreement=agree, pgr=value, pgr_reason=reason,
                                           misfit_train=misfit(run.train_proba, weak_labels[w, seed]),
                                           misfit_test=1 - agree)
        sk_seed = None
        if sk is not None:
            sw, ss, st = (sk[k].metrics(y_test)["acc"] for k in (("gt", w, seed), ("ceiling", s, seed), ("transfer", w, s, seed)))
            sk_seed = SklearnPairSeed(sw, ss, st, None if same else pgr(sw, ss, st, settings.min_gap)[0])
        per_seed.append(PairSeed(seed, weak_m["acc"], weak_m["auroc"], strong_m["acc"], strong_m["auroc"], scores, sk_seed))

    correct = {m: np.stack([transfer[w, s, m, seed].correct(y_test) for seed in seeds]) for m in methods}
    summary = {}
    for method in methods:
        rows = [r.transfer[method] for r in per_seed]
        summary[method] = summarize(settings, same, gap, rows, weak_correct, strong_correct, correct[method])
        if "xent" in correct and method != "xent":
            summary[method].vs_xent = Difference(**paired_diff_ci(correct[method], correct["xent"], settings.n_bootstrap,
                                                                  seed=0, threshold=0.0))
    result = PairResult(weak=w, strong=s, layer=layer, weak_acc=_mean([r.weak_acc for r in per_seed]),
                        strong_acc=_mean([r.strong_acc for r in per_seed]), per_seed=per_seed, summary=summary,
                        gap=Difference(**gap))
    if sk is not None:
        rows = [TransferScore(acc=r.sklearn.transfer_acc, auroc=None, agreement=None, pgr=r.sklearn.pgr) for r in per_seed]
        sk_correct = {k: np.stack([sk[k + (seed,)].correct(y_test) for seed in seeds])
                      for k in (("gt", w), ("ceiling", s), ("transfer", w, s))}
        sk_gap = paired_diff_ci(sk_correct["ceiling", s], sk_correct["gt", w], settings.n_bootstrap, seed=0,
                                threshold=settings.min_gap)
        result.sklearn_summary = {"xent": summarize(settings, same, sk_gap, rows, sk_correct["gt", w],
                                                    sk_correct["ceiling", s], sk_correct["transfer", w, s])}
    return result


def summarize(settings, same: bool, gap: dict, rows: list[TransferScore], weak_correct: np.ndarray,
              strong_correct: np.ndarray, transfer_correct: np.ndarray) -> Summary:
    """A method over seeds. PGR only when the gap's interval lies above min_gap: a gap that cannot be told
    from zero makes any ratio noise (a chess run with a gap of exactly min_gap once printed PGR 2.0)."""
    accs = [r.acc for r in rows]
    median, mean, n_valid = summarize_pgr([r.pgr for r in rows])
    reason: Any = None
    ci = None
    if same:
        reason = SAME_MODEL
    elif not gap["distinguishable"]:
        median = mean = None
        lo, hi = gap["ci"]
        reason = f"gap {gap['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] not clearly above min_gap {settings.min_gap}"
    elif median is None:
        reason = next((r.pgr_reason for r in rows if r.pgr_reason), None) or "no seed had a usable gap"
        reason = f"no seed has a usable gap ({reason})"
    else:
        ci, reason = bootstrap_pgr_ci(weak_correct, strong_correct, transfer_correct,
                                      settings.min_gap, settings.n_bootstrap, seed=0)
    return Summary(transfer_acc_mean=float(np.mean(accs)), transfer_acc_median=float(np.median(accs)),
                   auroc_mean=_mean([r.auroc for r in rows]), agreement_mean=_mean([r.agreement for r in rows]),
                   pgr_median=median, pgr_mean=mean, pgr_ci=ci, pgr_reason=reason, n_valid_seeds=n_valid,
                   misfit_train_mean=_mean([r.misfit_train for r in rows]),
                   misfit_test_mean=_mean([r.misfit_test for r in rows]))


def _mean(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None
