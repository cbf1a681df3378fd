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

from .results import GroundTruth, PairResult, PairSeed, SeedScore, SklearnPairSeed, SklearnScores, Summary, TransferScore
from .stats import accuracy, agreement, auroc, bootstrap_pgr_ci, pgr, summarize_pgr

SAME_MODEL = "weak and strong are the same model"


@dataclass
class Run:
    """Test-set predictions of one trained head."""

    proba: np.ndarray

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


def pair_result(settings, layer: str, w: str, s: str, seeds: list[int], y_test: np.ndarray,
                weak_on_test: dict, ceiling: dict, transfer: dict, sk: dict | None) -> PairResult:
    same = w == s
    per_seed = []
    for seed in seeds:
        weak_m, strong_m = weak_on_test[w, seed].metrics(y_test), ceiling[s, seed].metrics(y_test)
        scores = {}
        for method in settings.methods:
            run = transfer[w, s, method, seed]
            metrics = run.metrics(y_test)
            value, reason = (None, SAME_MODEL) if same else pgr(weak_m["acc"], strong_m["acc"], metrics["acc"], settings.min_gap)
            scores[method] = TransferScore(**metrics, agreement=agreement(run.proba, weak_on_test[w, seed].proba),
                                           pgr=value, pgr_reason=reason)
        sk_seed = None
        if sk is not None:
            sw, ss, st = (sk[k].metrics(y_test)["acc"] for k in (("gt", w, seed), ("ceiling", s, seed), ("transfer", w, s, seed)))
            sk_seed = SklearnPairSeed(sw, ss, st, None if same else pgr(sw, ss, st, settings.min_gap)[0])
        per_seed.append(PairSeed(seed, weak_m["acc"], weak_m["auroc"], strong_m["acc"], strong_m["auroc"], scores, sk_seed))

    weak_correct = np.stack([weak_on_test[w, seed].correct(y_test) for seed in seeds])
    strong_correct = np.stack([ceiling[s, seed].correct(y_test) for seed in seeds])
    summary = {}
    for method in settings.methods:
        rows = [r.transfer[method] for r in per_seed]
        transfer_correct = np.stack([transfer[w, s, method, seed].correct(y_test) for seed in seeds])
        summary[method] = summarize(settings, same, rows, weak_correct, strong_correct, transfer_correct)
    result = PairResult(weak=w, strong=s, layer=layer, weak_acc=_mean([r.weak_acc for r in per_seed]),
                        strong_acc=_mean([r.strong_acc for r in per_seed]), per_seed=per_seed, summary=summary)
    if sk is not None:
        rows = [TransferScore(acc=r.sklearn.transfer_acc, auroc=None, agreement=None, pgr=r.sklearn.pgr) for r in per_seed]
        sk_correct = {k: np.stack([sk[k + (seed,)].correct(y_test) for seed in seeds])
                      for k in (("gt", w), ("ceiling", s), ("transfer", w, s))}
        result.sklearn_summary = {"xent": summarize(settings, same, rows, sk_correct["gt", w],
                                                    sk_correct["ceiling", s], sk_correct["transfer", w, s])}
    return result


def summarize(settings, same: bool, rows: list[TransferScore], weak_correct: np.ndarray,
              strong_correct: np.ndarray, transfer_correct: np.ndarray) -> Summary:
    accs = [r.acc for r in rows]
    median, mean, n_valid = summarize_pgr([r.pgr for r in rows])
    reason: Any = None
    ci = None
    mean_gap = float(strong_correct.mean() - weak_correct.mean())
    if same:
        reason = SAME_MODEL
    elif mean_gap < settings.min_gap:
        # A few seeds with a lucky gap must not stand for a pair whose ceiling is not above the weak model.
        median = mean = None
        reason = f"mean gap over seeds {mean_gap:+.3f} < min_gap {settings.min_gap}"
    elif median is None:
        reason = next((r.pgr_reason for r in rows if r.pgr_reason), None) or "no seed had a usable gap"
        reason = f"no seed has a usable gap ({reason})"
    else:
        ci, reason = bootstrap_pgr_ci(weak_correct, strong_correct, transfer_correct,
                                      settings.min_gap, settings.n_bootstrap, seed=0)
    return Summary(transfer_acc_mean=float(np.mean(accs)), transfer_acc_median=float(np.median(accs)),
                   auroc_mean=_mean([r.auroc for r in rows]), agreement_mean=_mean([r.agreement for r in rows]),
                   pgr_median=median, pgr_mean=mean, pgr_ci=ci, pgr_reason=reason, n_valid_seeds=n_valid)


def _mean(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None
