"""How fast a model's probe learns the task from ground-truth labels: a salience measure without prompts.

For each model and seed, heads with the ground-truth recipe are trained on nested, label-stratified
subsets of half A of 8, 16, 32, ... docs (all heads of all models and seeds in one stack); the last
point is every doc of half A, which is the protocol's own ground-truth head. A model to which the task
is salient gets close to its full probe with few labels. `labels_to_90` is the number of labels at
which the mean curve over seeds first reaches chance + 0.9 x (full - chance), interpolated in
log2(labels); chance is the majority-label rate of the test docs. Its interval resamples seeds and
test docs, as the PGR interval does.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..results import CurvePoint, LabelCurve
from .intervals import accuracy_ci
from .stacked import HeadJob, train_heads
from .stats import rank_auroc

FIRST_SIZE = 8
TARGET = 0.9


def curve_sizes(half_sizes: list[int], first: int = FIRST_SIZE) -> list[int]:
    """8, 16, 32, ... below the smallest half A (the full half is the last point, added separately)."""
    sizes, n = [], first
    while n < min(half_sizes):
        sizes.append(n)
        n *= 2
    return sizes


def nested_subset(y: np.ndarray, half: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n docs of `half`, stratified by label (at least one of each), nested: a larger n keeps the smaller's docs."""
    rng = np.random.default_rng([seed, 3])
    labels = y[half]
    frac = float(labels.mean())
    n1 = int(np.clip(round(n * frac), 1, n - 1))
    parts = [rng.permutation(half[labels == 0])[: n - n1], rng.permutation(half[labels == 1])[:n1]]
    return np.sort(np.concatenate(parts))


def label_curves(x_train: Mapping[str, np.ndarray], x_test: Mapping[str, np.ndarray], y_train: np.ndarray,
                 y_test: np.ndarray, halves: Mapping[int, tuple[np.ndarray, np.ndarray]],
                 full_proba: Mapping[tuple[str, int], np.ndarray], layer: str, n_boot: int) -> dict[str, LabelCurve]:
    """Every model's curve; `full_proba[model, seed]`: the ground-truth head's test probabilities."""
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    seeds = sorted(halves)
    sizes = curve_sizes([len(halves[s][0]) for s in seeds])
    names = list(x_train)
    jobs, keys = [], []
    for m in names:
        for seed in seeds:
            for n in sizes:
                subset = nested_subset(y_train, halves[seed][0], n, seed)
                jobs.append(HeadJob(x_train[m][subset], y_train[subset], seed=seed))
                keys.append((m, seed, n))
    proba = {key: head.predict_proba(x_test[key[0]]) for key, head in zip(keys, train_heads(jobs) if jobs else [])}
    chance = float(max(y_test.mean(), 1 - y_test.mean()))
    full_n = float(np.mean([len(halves[s][0]) for s in seeds]))
    out = {}
    for m in names:
        probas = [[proba[m, seed, n] for seed in seeds] for n in sizes] + [[full_proba[m, seed] for seed in seeds]]
        correct = np.stack([[np.argmax(p, axis=1) == y_test for p in row] for row in probas])  # (sizes, seeds, docs)
        x = [float(n) for n in sizes] + [full_n]
        points = []
        for k, row in enumerate(probas):
            ci = accuracy_ci(correct[k])["ci"]
            aurocs = [a for a in (rank_auroc(y_test, p[:, 1]) for p in row) if a is not None]
            points.append(CurvePoint(x[k], float(correct[k].mean()), ci, float(np.mean(aurocs)) if aurocs else None,
                                     [float(c.mean()) for c in correct[k]], full=k == len(sizes)))
        value, reason = labels_to_target(x, correct.mean(axis=(1, 2)), chance)
        ci, ci_reason = (None, None) if value is None else _bootstrap(x, correct, y_test, n_boot)
        out[m] = LabelCurve(layer, chance, points, value, ci, reason or ci_reason)
    return out


def labels_to_target(x: list[float], acc: np.ndarray, chance: float, target: float = TARGET) -> tuple[float | None, str | None]:
    """Labels at which `acc` (one value per x, the last = the full probe) first reaches chance + target x gain."""
    gain = float(acc[-1]) - chance
    if gain <= 0:
        return None, f"the full probe ({acc[-1]:.3f}) does not beat chance ({chance:.3f})"
    goal = chance + target * gain
    k = int(np.argmax(acc >= goal - 1e-12))  # the last point always qualifies
    if k == 0:
        return x[0], None
    # Linear in log2(labels) between the last point below the goal and the first at or above it.
    lo, hi = np.log2(x[k - 1]), np.log2(x[k])
    t = (goal - acc[k - 1]) / (acc[k] - acc[k - 1])
    return float(2 ** (lo + t * (hi - lo))), None


def _bootstrap(x: list[float], correct: np.ndarray, y_test: np.ndarray, n_boot: int,
               level: float = 0.95) -> tuple[list[float] | None, str | None]:
    """Interval of labels_to_90 resampling seeds and test docs (chance recomputed on the drawn docs)."""
    _, n_seeds, n_docs = correct.shape
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    docs = rng.integers(0, n_docs, (n_boot, n_docs))
    draws = []
    for b in range(n_boot):
        acc = correct[:, seeds[b]][:, :, docs[b]].mean(axis=(1, 2))
        rate = float(y_test[docs[b]].mean())
        value, _ = labels_to_target(x, acc, max(rate, 1 - rate))
        draws.append(np.nan if value is None else value)
    draws = np.asarray(draws)
    if np.isnan(draws).mean() > 0.5:
        return None, f"the full probe does not beat chance in {int(np.isnan(draws).sum())} of {n_boot} bootstrap draws"
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(draws, [alpha, 1 - alpha])
    return [float(lo), float(hi)], None
