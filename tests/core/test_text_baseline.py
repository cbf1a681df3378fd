"""The text-only baseline on strings and halves, and the single-accuracy interval it reports."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.distributions import t_quantile
from w2s_gguf.core.intervals import NEW_DOCS_ONE_SEED, NEW_SEEDS_AND_DOCS, accuracy_ci
from w2s_gguf.core.splits import split_halves
from w2s_gguf.core.text_baseline import SETTINGS, text_baseline_proba, text_baseline_result

WORDS = "the a film story plot actor scene music light long short slow quick dark warm cold".split()


def texts(n, rng, marker=None, labels=None):
    """Random word salads; with `marker`, docs of label 1 carry that word (a shortcut)."""
    out = []
    for i in range(n):
        words = list(rng.choice(WORDS, 12))
        if marker and labels[i]:
            words.insert(int(rng.integers(12)), marker)
        out.append(" ".join(words))
    return out


def test_it_finds_a_word_that_gives_the_label_away_and_nothing_in_noise():
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    groups = [f"g{i // 2}" for i in range(200)]
    halves = [split_halves(groups, seed)[0] for seed in range(3)]
    shortcut = text_baseline_proba(texts(200, rng, "zebra", y_train), y_train, texts(200, rng, "zebra", y_test), halves)
    assert shortcut.shape == (3, 200)
    assert text_baseline_result(shortcut, y_test, [0, 1, 2]).acc_mean > 0.95
    noise = text_baseline_proba(texts(200, rng), y_train, texts(200, rng), halves)
    result = text_baseline_result(noise, y_test, [0, 1, 2])
    assert 0.38 < result.acc_mean < 0.62 and result.ci[0] < 0.5 + 0.05


def test_only_half_a_labels_are_used():
    """The baseline trains on half A, as the probes' ground truth does: B's labels cannot move it."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 120)
    train, test = texts(120, rng, "zebra", y), texts(50, rng, "zebra", rng.integers(0, 2, 50))
    half_a, half_b = split_halves([str(i) for i in range(120)], 0)
    flipped = y.copy()
    flipped[half_b] = 1 - flipped[half_b]
    a = text_baseline_proba(train, y, test, [half_a])
    assert np.array_equal(a, text_baseline_proba(train, flipped, test, [half_a]))
    assert not np.array_equal(a, text_baseline_proba(train, flipped, test, [half_b]))


def test_the_result_has_per_seed_scores_and_its_settings():
    y_test = np.array([0, 1, 1, 0])
    proba = np.array([[0.2, 0.8, 0.9, 0.4], [0.6, 0.7, 0.1, 0.3]])  # seed 0: 4/4, seed 1: 2/4
    result = text_baseline_result(proba, y_test, [3, 4])
    assert [(s.seed, s.acc) for s in result.per_seed] == [(3, 1.0), (4, 0.5)]
    assert result.acc_mean == 0.75 and result.ci[0] < 0.75 < result.ci[1]
    assert result.settings == SETTINGS and result.settings["version"] == "1"


# ---------------------------------------------------------------- accuracy_ci


def test_one_seed_is_the_t_interval_of_its_docs():
    correct = np.array([[1] * 30 + [0] * 10])
    got = accuracy_ci(correct)
    half = t_quantile(0.975, 39) * np.sqrt(0.75 * 0.25 / 39)  # the docs' sample variance over N
    assert got["acc"] == 0.75 and np.allclose(got["ci"], [0.75 - half, 0.75 + half], atol=1e-9)
    assert got["covers"] == NEW_DOCS_ONE_SEED


def test_the_two_way_variance_matches_its_formula():
    x = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=float)
    s, n = x.shape
    m = x.mean()
    ms_seed = n * ((x.mean(1) - m) ** 2).sum() / (s - 1)
    ms_doc = s * ((x.mean(0) - m) ** 2).sum() / (n - 1)
    ms_res = sum((x[i, j] - x[i].mean() - x[:, j].mean() + m) ** 2 for i in range(s) for j in range(n)) / ((s - 1) * (n - 1))
    total = max(ms_seed + ms_doc - ms_res, ms_res)
    df = total ** 2 / (ms_seed ** 2 / (s - 1) + ms_doc ** 2 / (n - 1) + ms_res ** 2 / ((s - 1) * (n - 1)))
    half = t_quantile(0.975, df) * np.sqrt(total / (s * n))
    got = accuracy_ci(x)
    assert np.allclose(got["ci"], [m - half, m + half], atol=1e-9) and got["covers"] == NEW_SEEDS_AND_DOCS
    assert accuracy_ci(np.ones((3, 5)))["ci"] == [1.0, 1.0]
    # Its coverage is pinned with the other intervals' in tests/core/test_intervals.py.


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="non-empty"):
        accuracy_ci(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        accuracy_ci(np.zeros(4))
