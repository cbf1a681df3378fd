"""Honest gaps: intervals for differences in accuracy, from (n_seeds, n_test) correctness matrices.

What is sampled. A run trains one head per seed (each seed has its own split and training) and
scores every head on the same test docs. Seeds and docs are both samples from larger populations,
and they are crossed: every seed meets every doc. For a per-seed, per-doc difference x[s, d] (for
a gap, strong right minus weak right: -1, 0 or +1) the two-way random-effects model is

    x[s, d] = mu + seed[s] + doc[d] + inter[s, d]

with variances var_seed (how much a seed shifts the difference), var_doc (how much a doc does)
and var_inter (seed s's head flipping doc d). mu is the expected difference for a new seed on a
new doc, the quantity a reader wants ("is the strong model better on this task?", not "on these
5 splits and these 600 docs"). The mean over S seeds and N docs estimates it with

    Var(mean) = var_seed / S + var_doc / N + var_inter / (S N).

The components come from the mean squares of the two-way table (no replication, so interaction
and per-cell noise are one term):

    MS_seed  = N sum_s (mean[s,.] - mean)^2 / (S-1)                    E = N var_seed + var_inter
    MS_doc   = S sum_d (mean[.,d] - mean)^2 / (N-1)                    E = S var_doc  + var_inter
    MS_inter = sum_sd (x - mean[s,.] - mean[.,d] + mean)^2 / ((S-1)(N-1))    E = var_inter

so S N Var(mean) = MS_seed + MS_doc - MS_inter, estimated as it stands (unbiased), floored at
MS_inter (the variance is at least the interaction's share). The interval is mean +- t sqrt(Var_hat),
t the Student quantile at Satterthwaite's degrees of freedom. Setting a component estimated below
zero to zero instead (the clipped sum) biases the variance up: in the simulation it covered up to
0.98 where seeds do not differ. With few seeds and a large seed component the df fall towards S - 1
and the interval widens, as it must: more test docs cannot pin down what varies between seeds.
Coverage in the simulation (tests/core/test_intervals.py, and the grid in docs/design.md): 0.93-0.96
at 5 and 10 seeds; at 3 seeds the seed variance rests on 2 df and coverage falls to about 0.92.

The interval covers new seeds and new test docs (with one seed: new test docs for that seed only).
Resampling seeds and docs in one crossed bootstrap draw, as this module did before, counts the
interaction about three times (var_inter (3S - 2) / (S^2 N) in expectation) and shrinks the seed
term by (S-1)/S: too wide when heads flip many docs, too narrow when a few seeds disagree.
tests/core/test_intervals.py simulates known components and pins the coverage of both.

Also here: Holm's step-down over a family of differences, and the student's misfit with its
teacher in Charikar et al.'s (2024) sense.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .distributions import t_cdf, t_quantile

NEW_SEEDS_AND_DOCS = "new seeds and new test docs"
NEW_DOCS_ONE_SEED = "new test docs, this seed only"


def mean_square_matrices(arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Grand means and the seed, doc and interaction mean-square matrices of k stacked (S, N) arrays.

    arrays: (k, S, N). Entry [i, j] of each matrix is the mean cross-product of arrays i and j
    (the mean square when i == j), divisors as in the module docstring. Mean squares are
    bilinear, so the mean square of a combination w @ arrays is w @ M @ w (stats.pgr_ci uses this).
    """
    x = np.asarray(arrays, dtype=np.float64)
    k, n_seeds, n_test = x.shape
    grand = x.mean(axis=(1, 2))
    seed_dev = x.mean(axis=2) - grand[:, None]  # (k, S): each seed's mean minus the grand mean
    doc_dev = x.mean(axis=1) - grand[:, None]  # (k, N): each doc's mean minus the grand mean
    resid = (x - seed_dev[:, :, None] - doc_dev[:, None, :] - grand[:, None, None]).reshape(k, -1)
    ms_seed = n_test * (seed_dev @ seed_dev.T) / max(n_seeds - 1, 1)
    ms_doc = n_seeds * (doc_dev @ doc_dev.T) / max(n_test - 1, 1)
    ms_inter = (resid @ resid.T) / max((n_seeds - 1) * (n_test - 1), 1)
    return grand, ms_seed, ms_doc, ms_inter


def var_of_mean(ms_seed: float, ms_doc: float, ms_inter: float, n_seeds: int, n_test: int) -> tuple[float, float]:
    """Var_hat(mean) and its Satterthwaite df from the three mean squares:

        S N Var_hat = max(MS_seed + MS_doc - MS_inter, MS_inter)
        df = (S N Var_hat)^2 / (MS_seed^2 / (S-1) + MS_doc^2 / (N-1) + MS_inter^2 / ((S-1)(N-1)))

    With one seed the seed component cannot be estimated: the variance is
    MS_doc / N (new docs, this seed only), df N - 1; with one doc, symmetrically, MS_seed / S.
    """
    if n_seeds == 1 and n_test == 1:
        return math.nan, math.nan
    if n_seeds == 1:
        return ms_doc / n_test, n_test - 1.0
    if n_test == 1:
        return ms_seed / n_seeds, n_seeds - 1.0
    total = max(ms_seed + ms_doc - ms_inter, ms_inter)
    denom = ms_seed ** 2 / (n_seeds - 1.0) + ms_doc ** 2 / (n_test - 1.0) + ms_inter ** 2 / ((n_seeds - 1.0) * (n_test - 1.0))
    df = total * total / denom if denom > 0 else math.inf
    return max(total, 0.0) / (n_seeds * n_test), df


def variance_components(x) -> dict[str, Any]:
    """Two-way random-effects summary of an (n_seeds, n_test) array (module docstring).

    Returns mean, n_seeds, n_test, the mean squares, the per-cell components
    var_seed = max(MS_seed - MS_inter, 0) / N, var_doc = max(MS_doc - MS_inter, 0) / S,
    var_inter = MS_inter (nan where the design cannot estimate them), and se, df of the mean.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"expected a non-empty (n_seeds, n_test) array, got shape {x.shape}")
    n_seeds, n_test = x.shape
    grand, ms_seed, ms_doc, ms_inter = (float(np.squeeze(m)) for m in mean_square_matrices(x[None]))
    var_mean, df = var_of_mean(ms_seed, ms_doc, ms_inter, n_seeds, n_test)
    both = n_seeds > 1 and n_test > 1
    return {"mean": grand, "n_seeds": n_seeds, "n_test": n_test,
            "ms_seed": ms_seed, "ms_doc": ms_doc, "ms_inter": ms_inter,
            "var_seed": max(ms_seed - ms_inter, 0.0) / n_test if both else math.nan,
            "var_doc": max(ms_doc - ms_inter, 0.0) / n_seeds if both else math.nan,
            "var_inter": ms_inter if both else math.nan,
            "se": math.sqrt(var_mean), "df": df}


def as_correctness(*arrays) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=bool) for a in arrays]
    shape = out[0].shape
    if any(a.shape != shape for a in out) or len(shape) != 2 or 0 in shape:
        raise ValueError(f"correctness matrices must share a non-empty (n_seeds, n_test) shape, "
                         f"got {' and '.join(str(a.shape) for a in out)}")
    return out


def paired_diff_ci(correct_a, correct_b, *, level: float = 0.95, threshold: float = 0.0) -> dict[str, Any]:
    """Interval for the expected accuracy(a) - accuracy(b) over new seeds and new test docs.

    correct_a, correct_b: (n_seeds, n_test) booleans, whether seed s's head of each run got doc d
    right; same seeds, same docs, so whatever the runs share cancels in x = a - b. The interval is
    diff +- t_df se from the variance components of x (module docstring); distinguishable = its
    lower end lies above threshold. p_value: two-sided, of diff = 0 (for Holm over methods).

    Returns the keys of results.Difference: diff, ci, level, threshold, distinguishable, se, df,
    p_value, covers, n_seeds, n_test, var_seed, var_doc, var_inter.
    """
    a, b = as_correctness(correct_a, correct_b)
    comp = variance_components(a.astype(np.int8) - b.astype(np.int8))
    mean, se, df = comp["mean"], comp["se"], comp["df"]
    if se > 0:
        half = t_quantile(0.5 + level / 2, df) * se
        p_value = 2 * t_cdf(-abs(mean) / se, df)
    else:  # every seed and doc gives the same difference: nothing varies, the interval is a point
        half, p_value = 0.0, (1.0 if mean == 0 else 0.0)
    lo, hi = mean - half, mean + half
    return {"diff": mean, "ci": [lo, hi], "level": level, "threshold": threshold,
            "distinguishable": bool(lo > threshold), "se": se, "df": _finite(df), "p_value": p_value,
            "covers": NEW_SEEDS_AND_DOCS if comp["n_seeds"] > 1 else NEW_DOCS_ONE_SEED,
            "n_seeds": comp["n_seeds"], "n_test": comp["n_test"],
            **{k: _finite(comp[k]) for k in ("var_seed", "var_doc", "var_inter")}}


def accuracy_ci(correct, level: float = 0.95) -> dict[str, Any]:
    """Mean accuracy over seeds and test docs with the interval paired_diff_ci uses for differences.

    correct: (n_seeds, n_test) 0/1. mean +- t_df se from the two-way variance components of the
    matrix itself (module docstring): it covers new seeds and new test docs (with one seed, new test
    docs for that seed: se^2 = the docs' sample variance / N). Returns acc, ci, level, se, df, covers.
    """
    x = np.asarray(correct, dtype=np.float64)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"correctness must be a non-empty (n_seeds, n_test) matrix, got shape {x.shape}")
    comp = variance_components(x)
    mean, se, df = comp["mean"], comp["se"], comp["df"]
    half = t_quantile(0.5 + level / 2, df) * se if se > 0 else 0.0
    return {"acc": mean, "ci": [mean - half, mean + half], "level": level, "se": se, "df": _finite(df),
            "covers": NEW_SEEDS_AND_DOCS if comp["n_seeds"] > 1 else NEW_DOCS_ONE_SEED}


def holm(p_values: dict[str, float], alpha: float = 0.05) -> dict[str, bool]:
    """Holm's step-down: which hypotheses to reject so that the chance of any false rejection in the
    family stays at most alpha. Sorted p ascending, reject the i-th (from 0) while p <= alpha / (k - i)."""
    k = len(p_values)
    rejected = {name: False for name in p_values}
    for i, name in enumerate(sorted(p_values, key=lambda n: p_values[n])):
        if p_values[name] > alpha / (k - i):
            break
        rejected[name] = True
    return rejected


# ---------------------------------------------------------------- misfit (Charikar et al. 2024)

def misfit(student_proba, teacher_proba) -> float:
    """Mean squared distance between the student's and its teacher's P(label 1) over the docs.

    Charikar, Pabbaraju and Shiragur (2024): for a student fit by squared loss to its teacher's
    soft labels over a convex class that contains the truth, the reduction in squared error
    (sq_gain) is at least this misfit. The 0-1 disagreement is another quantity (disagreement).
    """
    s, t = _probas(student_proba, teacher_proba)
    return float(np.mean((s[:, 1] - t[:, 1]) ** 2))


def sq_gain(student_proba, teacher_proba, labels) -> float:
    """Reduction in squared error against the true labels: mean (t1 - y)^2 - mean (s1 - y)^2."""
    s, t = _probas(student_proba, teacher_proba)
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean((t[:, 1] - y) ** 2) - np.mean((s[:, 1] - y) ** 2))


def disagreement(proba_a, proba_b) -> float:
    """Share of docs where two sets of probabilities name different classes (argmax)."""
    a, b = _probas(proba_a, proba_b)
    return float(np.mean(np.argmax(a, axis=1) != np.argmax(b, axis=1)))


def _probas(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"probabilities must share an (n, classes) shape, got {a.shape} and {b.shape}")
    return a, b


def _finite(value: float) -> float | None:
    """JSON has no nan or inf: an unestimable number is null."""
    return float(value) if math.isfinite(value) else None
