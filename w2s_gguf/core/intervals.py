"""Honest gaps: is a difference in accuracy distinguishable from zero?

`paired_diff_ci` compares two runs scored on the same seeds and test docs
(strong vs weak, or a method vs xent). Each bootstrap draw resamples seeds
and test docs with replacement, the same draw for both runs, so that what
the seeds and docs share cancels, as in stats.bootstrap_pgr_ci.

`misfit` is the student's disagreement with the weak labels (Charikar et
al. 2024: in their analysis the gain over the weak model is at least the
misfit).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def paired_diff_ci(correct_a, correct_b, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                   threshold: float = 0.0) -> dict[str, Any]:
    """Bootstrap interval of mean accuracy(a) - mean accuracy(b).

    correct_a, correct_b: (n_seeds, n_test) booleans, whether each seed's run
    got each test doc right. Returns diff (observed), ci [lo, hi], and
    distinguishable = lo > threshold (a is better than b by more than the
    threshold, beyond resampling noise).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"correctness matrices must share a non-empty (n_seeds, n_test) shape, got {a.shape} and {b.shape}")
    diff = a.astype(np.int8) - b.astype(np.int8)  # per seed and doc: +1, 0 or -1
    n_seeds, n_test = diff.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    docs = rng.integers(0, n_test, (n_boot, n_test))
    # Mean over drawn seeds and drawn docs; per draw: (n_seeds x n_test) picks, summed in chunks to bound memory.
    draws = np.empty(n_boot)
    for start in range(0, n_boot, 100):
        s, d = seeds[start : start + 100, :, None], docs[start : start + 100, None, :]
        draws[start : start + 100] = diff[s, d].mean(axis=(1, 2))
    alpha = (1 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return {"diff": float(diff.mean()), "ci": [float(lo), float(hi)], "level": level,
            "threshold": threshold, "distinguishable": bool(lo > threshold)}


def misfit(student_proba, weak_proba) -> float:
    """Fraction of docs where the student's argmax differs from the weak labels' argmax."""
    s, w = np.asarray(student_proba), np.asarray(weak_proba)
    if s.shape != w.shape or s.ndim != 2:
        raise ValueError(f"student and weak probabilities must share an (n, classes) shape, got {s.shape} and {w.shape}")
    return float(np.mean(np.argmax(s, axis=1) != np.argmax(w, axis=1)))


def accuracy_ci(correct, level: float = 0.95) -> dict[str, Any]:
    """Mean accuracy over seeds and test docs with a normal interval.

    correct: (n_seeds, n_test) 0/1. The variance of the mean comes from a
    two-way ANOVA of seeds x docs (one observation per cell): (MS_seed +
    MS_doc - MS_interaction) / (S * N), the seed, doc and residual
    components each over the number of times it is averaged; clipped at 0.
    With one seed it is the binomial p(1 - p) / N.
    """
    from statistics import NormalDist

    x = np.asarray(correct, dtype=float)
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"correctness must be a non-empty (n_seeds, n_test) matrix, got shape {x.shape}")
    n_seeds, n_test = x.shape
    mean = float(x.mean())
    if n_seeds == 1 or n_test == 1:
        variance = mean * (1 - mean) / x.size
    else:
        seed_means, doc_means = x.mean(axis=1), x.mean(axis=0)
        ms_seed = n_test * np.sum((seed_means - mean) ** 2) / (n_seeds - 1)
        ms_doc = n_seeds * np.sum((doc_means - mean) ** 2) / (n_test - 1)
        residual = x - seed_means[:, None] - doc_means[None, :] + mean
        ms_interaction = np.sum(residual**2) / ((n_seeds - 1) * (n_test - 1))
        variance = max(0.0, float(ms_seed + ms_doc - ms_interaction)) / x.size
    half = NormalDist().inv_cdf((1 + level) / 2) * variance**0.5
    return {"acc": mean, "ci": [mean - half, mean + half], "level": level}
