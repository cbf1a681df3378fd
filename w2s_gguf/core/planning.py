"""How many test docs (and seeds) would settle it: sample sizes projected from a run's own variance.

A run's variance components (intervals.py: per seed, per doc and their interaction, per cell)
say how the standard error of a mean shrinks with more docs or seeds:

    se(S, N)^2 = var_seed / S + var_doc / N + var_inter / (S N).

Taking the observed means as the truth, this finds the smallest number of test docs N at the
run's S seeds for which

  * the gap's interval would clear min_gap: its lower end, gap - t_df se(S, N), lies above
    min_gap in a share `power` of reruns, (gap - min_gap) / se >= t_df + z_power; power 0.5
    (z = 0) is "the lower end lands on min_gap at the observed gap";
  * Fieller's PGR interval (stats.pgr_ci) would have half-width `half_width`: with the 2x2
    (gain, gap) covariance V = C_seed / S + C_doc / N + C_inter / (S N), the interval solves
    a R^2 - 2 b R + c <= 0 with a = g^2 - t^2 V_gg, b = n g - t^2 V_ng, c = n^2 - t^2 V_nn, and
    its half-width is sqrt(b^2 - a c) / a.

The seed terms do not shrink with N: when they alone keep the target out of reach at S seeds, no
number of docs is enough and the answer is a number of seeds (with unlimited docs) instead. These
are projections from a noisy run (the components are estimates), to plan the next run with,
checked against the simulation of tests/core/test_intervals.py.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .distributions import normal_quantile, t_quantile
from .intervals import as_correctness, mean_square_matrices, var_of_mean

MAX_DOCS = 10 ** 7
MAX_SEEDS = 1000


def projected_se(var_seed: float, var_doc: float, var_inter: float, n_seeds: int, n_test: float) -> tuple[float, float]:
    """se and Satterthwaite df of a mean over n_seeds x n_test cells, from per-cell components.

    The mean squares at the new sizes are their expectations, E MS_seed = N var_seed + var_inter,
    E MS_doc = S var_doc + var_inter, E MS_inter = var_inter. n_test may be math.inf.
    """
    if math.isinf(n_test):
        return math.sqrt(var_seed / n_seeds), (n_seeds - 1.0 if var_seed > 0 else math.inf)
    var, df = var_of_mean(n_test * var_seed + var_inter, n_seeds * var_doc + var_inter, var_inter,
                          n_seeds, int(n_test))
    return math.sqrt(var), df


def _smallest(ok: Callable[[int], bool], lo: int, hi: int) -> int | None:
    """Smallest integer n in [lo, hi] with ok(n), ok monotone in n; None when even hi fails."""
    if not ok(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid + 1, hi)
    return lo


def gap_plan(components: dict[str, Any], threshold: float, *, level: float = 0.95, power: float = 0.5,
             n_seeds: int | None = None) -> dict[str, Any]:
    """Test docs (at n_seeds, default the run's) for the gap's interval to clear threshold.

    components: the var_seed, var_doc, var_inter, n_seeds and diff of a gap (intervals.paired_diff_ci).
    Returns n_test (None when no number of docs is enough at these seeds), n_seeds, seeds_min
    (seeds needed with unlimited docs, None beyond MAX_SEEDS), reason (set when no size can do it),
    and where only more seeds help, n_test_more_seeds at more_seeds seeds.
    """
    seeds = int(n_seeds or components["n_seeds"])
    gap = float(components["diff"])
    vs, vd, vi = (max(float(components.get(k) or 0.0), 0.0) for k in ("var_seed", "var_doc", "var_inter"))
    z, q = normal_quantile(power), 0.5 + level / 2

    def clears(k_seeds: int, k_docs: float) -> bool:
        se, df = projected_se(vs, vd, vi, k_seeds, k_docs)
        return se == 0 or (gap - threshold) / se >= t_quantile(q, df) + z

    out: dict[str, Any] = {"n_test": None, "n_seeds": seeds, "seeds_min": None, "reason": None,
                           "more_seeds": None, "n_test_more_seeds": None}
    if gap <= threshold:
        out["reason"] = f"the observed gap {gap:+.3f} is not above min_gap {threshold}: no size clears it"
        return out
    out["seeds_min"] = _smallest(lambda k: clears(k, math.inf), 2, MAX_SEEDS)
    out["n_test"] = _smallest(lambda k: clears(seeds, k), 2, MAX_DOCS)
    return _with_more_seeds(out, clears)


def pgr_components(weak_correct, strong_correct, transfer_correct) -> dict[str, Any]:
    """Mean gain n and gap g per seed-doc cell and their 2x2 (gain, gap) seed, doc and interaction
    covariance components (mean-square matrices turned into components as in intervals.py)."""
    w, s, t = (a.astype(np.int8) for a in as_correctness(weak_correct, strong_correct, transfer_correct))
    n_seeds, n_test = w.shape
    means, ms_seed, ms_doc, ms_inter = mean_square_matrices(np.stack([t - w, s - w]))
    return {"n_seeds": n_seeds, "n_test": n_test, "gain": float(means[0]), "gap": float(means[1]),
            "cov_seed": _psd((ms_seed - ms_inter) / n_test), "cov_doc": _psd((ms_doc - ms_inter) / n_seeds),
            "cov_inter": _psd(ms_inter)}


def _psd(m: np.ndarray) -> np.ndarray:
    """A covariance estimate with its negative eigenvalues set to zero: a 2x2 analogue of clipping a
    variance component at zero (an estimated seed covariance can come out indefinite on 3 seeds)."""
    values, vectors = np.linalg.eigh(m)
    return (vectors * np.clip(values, 0.0, None)) @ vectors.T


def pgr_plan(components: dict[str, Any], half_width: float = 0.1, *, level: float = 0.95,
             n_seeds: int | None = None) -> dict[str, Any]:
    """Test docs (at n_seeds, default the run's) for Fieller's PGR interval to be +- half_width.

    components: pgr_components() of a run. Returns n_test (None when the seed terms alone keep the
    interval wider at these seeds), n_seeds, seeds_min (with unlimited docs) and reason (set when no
    size can do it).
    """
    seeds = int(n_seeds or components["n_seeds"])
    c_seed, c_doc, c_inter = (np.asarray(components[k], dtype=np.float64) for k in ("cov_seed", "cov_doc", "cov_inter"))
    gain, gap = float(components["gain"]), float(components["gap"])
    out: dict[str, Any] = {"n_test": None, "n_seeds": seeds, "seeds_min": None, "reason": None,
                           "more_seeds": None, "n_test_more_seeds": None}
    if not gap > 0:
        out["reason"] = "the observed gap is not positive"
        return out
    weights = np.array([1.0, -gain / gap])  # n - R g at the observed ratio: its df set the t
    z_seed, z_doc, z_inter = (max(float(weights @ m @ weights), 0.0) for m in (c_seed, c_doc, c_inter))
    q = 0.5 + level / 2

    def half(k_seeds: int, k_docs: float) -> float:
        per_doc = 0.0 if math.isinf(k_docs) else 1.0 / k_docs
        v = c_seed / k_seeds + c_doc * per_doc + c_inter * per_doc / k_seeds
        t2 = t_quantile(q, projected_se(z_seed, z_doc, z_inter, k_seeds, k_docs)[1]) ** 2
        a, b, c = gap * gap - t2 * v[1, 1], gain * gap - t2 * v[0, 1], gain * gain - t2 * v[0, 0]
        if a <= 0 or b * b - a * c < 0:
            return math.inf  # the gap would not be distinguishable from zero: an unbounded interval
        return math.sqrt(b * b - a * c) / a

    out["seeds_min"] = _smallest(lambda k: half(k, math.inf) <= half_width, 2, MAX_SEEDS)
    out["n_test"] = _smallest(lambda k: half(seeds, k) <= half_width, 2, MAX_DOCS)
    return _with_more_seeds(out, lambda k_seeds, k_docs: half(k_seeds, k_docs) <= half_width)


def _with_more_seeds(out: dict[str, Any], ok: Callable[[int, float], bool]) -> dict[str, Any]:
    """Where no number of docs is enough at the run's seeds: the docs needed at twice the fewest seeds
    that could do it (at the fewest, the docs needed run off to infinity)."""
    out["more_seeds"] = out["n_test_more_seeds"] = None
    if out["n_test"] is None and out["seeds_min"] is not None and out["reason"] is None:
        more = 2 * max(out["seeds_min"], out["n_seeds"])
        out["more_seeds"], out["n_test_more_seeds"] = more, _smallest(lambda k: ok(more, k), 2, MAX_DOCS)
    return out
