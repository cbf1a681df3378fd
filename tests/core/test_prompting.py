"""Prompting baselines on arrays: demonstrations per seed, zero/k-shot scores, prompting PGR (no llama.cpp)."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.prompting import (TRUE_DEMOS, WEAK_DEMOS, auroc_ci, choose_demos, few_shot, mean_ci,
                                     pair_prompting, scores_of, zero_shot)
from w2s_gguf.core.stats import pgr_ci, rank_auroc


def test_demonstrations_are_balanced_seeded_and_from_the_pool():
    labels = np.array([0, 1] * 50)
    pool = np.arange(0, 100, 2)[:30].tolist() + np.arange(1, 100, 2)[:30].tolist()
    a = choose_demos(labels, np.array(pool), 5, seed=0, stream=TRUE_DEMOS)
    assert a == choose_demos(labels, np.array(pool), 5, seed=0, stream=TRUE_DEMOS)  # reproducible
    assert set(a) <= set(pool) and len(set(a)) == 5
    assert sorted(labels[a].tolist()) == [0, 0, 1, 1, 1]  # seed 0: the odd one is a positive
    b = choose_demos(labels, np.array(pool), 5, seed=1, stream=TRUE_DEMOS)
    assert sorted(labels[b].tolist()) == [0, 0, 0, 1, 1] and a != b
    assert choose_demos(labels, np.array(pool), 5, seed=0, stream=WEAK_DEMOS) != a  # its own draws
    assert choose_demos(labels, np.array(pool), 0, seed=0, stream=TRUE_DEMOS) == []


def test_a_label_too_rare_in_the_pool_is_filled_with_the_other():
    labels = np.array([1] * 20 + [0])  # the weak head called almost everything positive
    got = choose_demos(labels, np.arange(21), 5, seed=0, stream=WEAK_DEMOS)
    assert len(got) == 5 and sorted(labels[got].tolist()) == [0, 1, 1, 1, 1]


def test_zero_shot_scores_are_word1_minus_word0_and_auroc_ignores_bias():
    y = np.array([0, 0, 1, 1])
    # The model prefers word 0 everywhere (a bias) but ranks the docs perfectly.
    log_probs = np.log(np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]]))
    out = zero_shot(log_probs, y, n_boot=200)
    np.testing.assert_allclose(scores_of(log_probs), np.log([0.1 / 0.9, 0.2 / 0.8, 0.3 / 0.7, 0.4 / 0.6]))
    assert out.acc.value == 0.5 and out.predicted_positive == 0.0  # threshold 0: all called label 0
    assert out.auroc.value == 1.0 and out.mean_score < 0


def test_intervals_cover_the_mean_and_shrink_with_more_docs():
    rng = np.random.default_rng(0)
    small, large = rng.random((3, 50)) < 0.7, rng.random((3, 2000)) < 0.7
    a, b = mean_ci(small), mean_ci(large)
    assert a.ci[0] <= a.value <= a.ci[1] and b.ci[0] <= b.value <= b.ci[1]
    assert b.ci[1] - b.ci[0] < a.ci[1] - a.ci[0]
    y = rng.integers(0, 2, 300)
    scores = np.stack([y + rng.normal(0, 1.0, 300) for _ in range(3)])
    auc = auroc_ci(y, scores, 300)
    assert auc.value == pytest.approx(np.mean([rank_auroc(y, s) for s in scores]))
    assert 0.5 < auc.ci[0] <= auc.value <= auc.ci[1]


def test_few_shot_per_seed():
    y = np.array([0, 1, 0, 1])
    by_seed = {0: np.log([[0.6, 0.4], [0.3, 0.7], [0.6, 0.4], [0.3, 0.7]]),  # all right
               1: np.log([[0.4, 0.6], [0.3, 0.7], [0.4, 0.6], [0.3, 0.7]])}  # all called 1
    out = few_shot(by_seed, y, n_boot=200)
    assert [(s.seed, s.acc) for s in out.per_seed] == [(0, 1.0), (1, 0.5)]
    assert out.acc.value == 0.75 and out.auroc.value == 1.0


def _log_probs(correct: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Log-probs whose threshold-0 prediction is right exactly where `correct` says."""
    predicted = np.where(correct, y, 1 - y)
    return np.log(np.where(predicted[:, None] == 1, [0.3, 0.7], [0.7, 0.3]))


def test_prompting_pgr_uses_the_weak_probe_as_floor_and_true_shots_as_ceiling():
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 2, n)
    seeds = [0, 1, 2]
    floor = {s: rng.random(n) < 0.60 for s in seeds}
    ceiling = {s: _log_probs(rng.random(n) < 0.90, y) for s in seeds}
    weak = {s: _log_probs(rng.random(n) < 0.75, y) for s in seeds}
    out = pair_prompting("w", "s", y, floor, ceiling, weak, {s: 0.8 for s in seeds},
                         {s: np.where(floor[s], y, 1 - y) for s in seeds}, min_gap=0.01, n_boot=300)
    per_seed = []
    for i, s in enumerate(seeds):
        f, c = floor[s].mean(), (scores_of(ceiling[s]) > 0) == y
        t = (scores_of(weak[s]) > 0) == y
        assert out.per_seed[i].floor_acc == pytest.approx(f) and out.per_seed[i].ceiling_acc == pytest.approx(c.mean())
        per_seed.append((t.mean() - f) / (c.mean() - f))
        assert out.per_seed[i].pgr == pytest.approx(per_seed[-1])
    assert out.pgr_median == pytest.approx(np.median(per_seed))
    # The headline is the probes' PGR: mean gain over mean gap, with Fieller's interval on the same matrices.
    f, c = np.stack([floor[s] for s in seeds]), np.stack([(scores_of(ceiling[s]) > 0) == y for s in seeds])
    t = np.stack([(scores_of(weak[s]) > 0) == y for s in seeds])
    assert out.pgr == pytest.approx((t.mean() - f.mean()) / (c.mean() - f.mean()))
    assert out.pgr_ci == pytest.approx(pgr_ci(f, c, t)["ci"])
    assert out.gap_clears_min_gap and out.pgr_ci[0] < out.pgr < out.pgr_ci[1]
    assert 0.3 < out.pgr < 0.7 and out.agreement_mean is not None


def test_prompting_pgr_is_null_with_the_reason_when_the_gap_is_noise():
    rng = np.random.default_rng(2)
    n = 200
    y = rng.integers(0, 2, n)
    same = {s: rng.random(n) < 0.7 for s in (0, 1)}
    out = pair_prompting("w", "s", y, same, {s: _log_probs(same[s], y) for s in same},
                         {s: _log_probs(rng.random(n) < 0.7, y) for s in same}, {}, {s: y for s in same},
                         min_gap=0.01, n_boot=200)
    assert out.pgr is None and out.pgr_median is None and "not clearly above min_gap" in out.pgr_reason
    assert not out.gap_clears_min_gap and out.gap.value == pytest.approx(0.0)
