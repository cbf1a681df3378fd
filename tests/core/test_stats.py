"""PGR: the minimum-gap rule, the summary over seeds and Fieller's interval (w2s_gguf/core/stats.py)."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.intervals import mean_square_matrices, var_of_mean
from w2s_gguf.core.distributions import t_quantile
from w2s_gguf.core.stats import pgr, pgr_ci, summarize_pgr


def test_pgr_and_the_minimum_gap():
    assert pgr(0.70, 0.80, 0.75) == (pytest.approx(0.5), None)
    assert pgr(0.70, 0.80, 0.85)[0] == pytest.approx(1.5)  # beyond the ceiling is allowed
    value, reason = pgr(0.800, 0.805, 0.803)
    assert value is None and "min_gap" in reason
    assert pgr(0.80, 0.80, 0.80, min_gap=0)[0] is None  # a zero gap is never divided by
    assert pgr(0.7, 0.69, 0.7, min_gap=0.0)[0] is None  # nor a negative one


def test_the_min_gap_rule_is_not_fooled_by_float_rounding():
    # 0.57 - 0.56 is 0.00999... in floating point: the old `gap < min_gap` withheld this PGR, not 0.81 - 0.80's.
    assert pgr(0.56, 0.57, 0.565)[0] == pytest.approx(0.5)
    assert pgr(0.80, 0.81, 0.805)[0] == pytest.approx(0.5)
    n = 600
    for k in range(n - 6):  # a gap of exactly 6 of 600 docs is min_gap 0.01, wherever it sits (110 failed before)
        assert pgr(k / n, (k + 6) / n, (k + 3) / n)[0] == pytest.approx(0.5)
        assert pgr(k / n, (k + 6) / n, (k + 3) / n, n_test=n)[0] == 0.5
        assert pgr(k / n, (k + 5) / n, (k + 3) / n)[0] is None
        assert pgr(k / n, (k + 5) / n, (k + 3) / n, n_test=n) == (None, "gap 5 of 600 docs < min_gap 0.01 (6 docs)")


def test_pgr_over_seeds_is_the_ratio_of_mean_gain_to_mean_gap():
    weak = [0.60, 0.60, 0.600]
    strong = [0.80, 0.80, 0.611]  # the third seed's gap, 0.011, barely passes min_gap
    transfer = [0.70, 0.70, 0.650]
    summary = summarize_pgr(weak, strong, transfer)
    assert summary["per_seed"] == pytest.approx([0.5, 0.5, 0.05 / 0.011])
    assert summary["median"] == pytest.approx(0.5) and summary["n_valid"] == 3
    # The mean of the per-seed ratios is 1.85, dominated by the tiny gap; the ratio of the means is not.
    assert summary["ratio"] == pytest.approx(0.25 / 0.411)
    assert summarize_pgr([0.6, 0.6], [0.605, 0.6], [0.6, 0.6])["median"] is None


def _correct(rng, acc: float, shape=(5, 600)) -> np.ndarray:
    return rng.random(shape) < acc


def test_fieller_interval_ends_where_the_t_test_flips():
    rng = np.random.default_rng(41)
    weak = _correct(rng, 0.70)
    strong = weak | _correct(rng, 0.35)  # strong ~0.80, sharing the weak model's right answers
    transfer = weak | _correct(rng, 0.18)  # about half the gap
    res = pgr_ci(weak, strong, transfer)
    lo, hi = res["ci"]
    gain, gap = (transfer.mean() - weak.mean()), (strong.mean() - weak.mean())
    assert res["pgr"] == pytest.approx(gain / gap) and lo < res["pgr"] < hi
    w, s, t = (a.astype(np.int8) for a in (weak, strong, transfer))
    means, *ms = mean_square_matrices(np.stack([t - w, s - w]))

    def accepted(r0):
        vec = np.array([1.0, -r0])
        var, df = var_of_mean(*(float(vec @ m @ vec) for m in ms), 5, 600)
        return float(vec @ means) ** 2 <= t_quantile(0.975, df) ** 2 * var

    for r0, inside in ((lo + 1e-6, True), (hi - 1e-6, True), (lo - 1e-4, False), (hi + 1e-4, False)):
        assert accepted(r0) == inside


def test_fieller_is_unbounded_when_the_gap_cannot_be_told_from_zero():
    rng = np.random.default_rng(42)
    weak, transfer = _correct(rng, 0.7, (3, 200)), _correct(rng, 0.7, (3, 200))
    strong = weak.copy()
    strong[:, :4] = True  # a gap of at most 4 docs in 200, on top of the weak model's own answers
    strong[:, 4:8] = ~weak[:, 4:8]
    res = pgr_ci(weak, strong, transfer)
    assert strong.mean() > weak.mean() and res["pgr"] is not None
    assert res["ci"] is None and "every PGR is consistent" in res["reason"]
    assert pgr_ci(weak, weak, transfer) == {"pgr": None, "ci": None, "reason": "mean gap +0.0000 is not positive"}
