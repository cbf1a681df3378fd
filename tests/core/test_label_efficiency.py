"""Label-efficiency curves: nested subsets of half A, labels to 90% of the probe's gain (no llama.cpp)."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.label_efficiency import curve_sizes, label_curves, labels_to_target, nested_subset
from w2s_gguf.core.splits import split_halves
from w2s_gguf.core.stacked import HeadJob, train_heads


def test_sizes_double_from_8_below_the_smallest_half():
    assert curve_sizes([200, 190]) == [8, 16, 32, 64, 128]
    assert curve_sizes([128]) == [8, 16, 32, 64]
    assert curve_sizes([6]) == []


def test_subsets_are_nested_stratified_and_seeded():
    y = np.array([0] * 70 + [1] * 30)
    half = np.arange(100)
    small, large = nested_subset(y, half, 10, seed=0), nested_subset(y, half, 40, seed=0)
    assert set(small) <= set(large) and len(small) == 10 and len(large) == 40
    assert y[small].sum() == 3 and y[large].sum() == 12  # the half's label rate
    assert y[nested_subset(y, half, 8, seed=1)].sum() >= 1  # both labels even when tiny
    assert not np.array_equal(nested_subset(y, half, 10, seed=1), small)


def test_labels_to_target_interpolates_in_log_labels():
    x = [8.0, 16.0, 32.0, 64.0]
    # chance 0.5, full 0.9: the goal is 0.86, reached between 16 (0.80) and 32 (0.90) at 60% of the way.
    value, reason = labels_to_target(x, np.array([0.6, 0.8, 0.9, 0.9]), 0.5)
    assert reason is None and value == pytest.approx(2 ** (4 + 0.6))
    assert labels_to_target(x, np.array([0.88, 0.9, 0.9, 0.9]), 0.5) == (8.0, None)  # at the first size already
    value, reason = labels_to_target(x, np.array([0.5, 0.52, 0.55, 0.49]), 0.5)
    assert value is None and "does not beat chance" in reason


def _features(rng, y, signals):
    out = {}
    for name, signal in signals.items():
        x = rng.standard_normal((len(y), 64)).astype(np.float32)
        x[:, :4] += signal * (2 * y[:, None] - 1)
        out[name] = x
    return out


def test_a_model_to_which_the_task_is_salient_needs_fewer_labels():
    rng = np.random.default_rng(0)
    n_train, n_test = 400, 400
    y = rng.integers(0, 2, n_train + n_test)
    x = _features(rng, y, {"faint": 0.35, "salient": 1.5})
    halves = {s: split_halves([str(i) for i in range(n_train)], s) for s in range(3)}
    full = {(m, s): train_heads([HeadJob(x[m][:n_train][halves[s][0]], y[:n_train][halves[s][0]], seed=s)])[0]
            .predict_proba(x[m][n_train:]) for m in x for s in halves}
    curves = label_curves({m: v[:n_train] for m, v in x.items()}, {m: v[n_train:] for m, v in x.items()},
                          y[:n_train], y[n_train:], halves, full, "last", n_boot=300)
    faint, salient = curves["faint"], curves["salient"]
    assert [p.n_labels for p in salient.points][:-1] == [8, 16, 32, 64, 128] and salient.points[-1].full
    assert salient.points[-1].acc_mean == pytest.approx(np.mean([(np.argmax(full["salient", s], 1) == y[n_train:]).mean()
                                                                 for s in halves]))  # the last point is the protocol's head
    assert salient.labels_to_90 < faint.labels_to_90
    assert salient.labels_to_90_ci[0] <= salient.labels_to_90 <= salient.labels_to_90_ci[1]
    assert salient.points[0].acc_mean > faint.points[0].acc_mean + 0.05
