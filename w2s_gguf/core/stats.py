"""Metrics and PGR: accuracy, AUROC, PGR with the minimum-gap rule, its summaries and interval.

PGR over seeds is the ratio of the mean gain to the mean gap, R = mean(T - W) / mean(S - W) over
every seed and test doc (W the weak ceiling, S the strong ceiling, T the transfer student, each 1
where a head got a doc right). Every seed weighs the same in numerator and denominator, so one
seed with a gap of 0.01 cannot dominate it, as it can a mean of per-seed ratios. OAI's summary,
the median of per-seed PGRs over the seeds whose own gap passes min_gap, is kept beside it.

Its interval is Fieller's: the set of R0 for which the t test of intervals.py does not reject
mean(n - R0 g) = 0, with n = T - W and g = S - W per seed and doc. The variance components of
n - R0 g are quadratic in R0 through the mean squares and cross-products of n and g, so what the
numerator and the denominator share (the weak model's errors, the seeds) is accounted for. It
covers the ratio over new seeds and new test docs, and it is bounded exactly when the gap's own
interval excludes zero; otherwise every PGR is consistent with the data and none is reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .distributions import t_quantile
from .intervals import as_correctness, mean_square_matrices, var_of_mean

# Accuracies are fractions k / n with n far below 1e9: this tolerance never merges distinct counts.
TOLERANCE = 1e-9


def accuracy(labels: np.ndarray, proba: np.ndarray) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == labels))


def auroc(labels: np.ndarray, proba: np.ndarray) -> float | None:
    """AUROC of P(label 1); the rank formula below, not sklearn's (same value within 1e-15), whose
    import alone took 2 s of a 6 s warm run."""
    return rank_auroc(labels, proba[:, 1])


def rank_auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """AUROC of scores (n,) against 0/1 labels, from ranks (Mann-Whitney U), ties sharing their mean rank.

    Equals sklearn.metrics.roc_auc_score without importing scikit-learn
    (about 1 s). None when the labels hold one class.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    # Tie groups of the sorted scores: each gets the mean of the ranks it spans (1-based).
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def agreement(proba_a: np.ndarray, proba_b: np.ndarray) -> float:
    """Fraction of docs where two heads predict the same class."""
    return float(np.mean(np.argmax(proba_a, axis=1) == np.argmax(proba_b, axis=1)))


def pgr(weak_acc: float, strong_acc: float, transfer_acc: float, min_gap: float = 0.01,
        n_test: int | None = None) -> tuple[float | None, str | None]:
    """Performance gap recovered, (transfer - weak) / (strong - weak), or None with the reason.

    Below min_gap the ratio divides noise by noise (OAI's anthropic_hh row reports PGR 0.81 from
    a gap of about 0.005), so it is withheld. With n_test (the docs the accuracies are fractions
    of) the rule counts whole docs: the gap of round(strong n) - round(weak n) docs must reach
    ceil(min_gap n) docs. Without it the floats are compared with a tolerance of 1e-9. Either way
    0.57 - 0.56, which is 0.00999... in floating point, passes min_gap 0.01 as 0.81 - 0.80 does.
    """
    if n_test is not None:
        n = int(n_test)
        weak, strong, transfer = (round(v * n) for v in (weak_acc, strong_acc, transfer_acc))
        gap_docs, need = strong - weak, math.ceil(min_gap * n - TOLERANCE * n)
        if gap_docs <= 0 or gap_docs < need:
            return None, f"gap {gap_docs} of {n} docs < min_gap {min_gap} ({need} docs)"
        return (transfer - weak) / gap_docs, None
    gap = strong_acc - weak_acc
    if gap <= TOLERANCE or gap < min_gap - TOLERANCE:
        return None, f"gap {gap:+.3f} < min_gap {min_gap}"
    return (transfer_acc - weak_acc) / gap, None


def summarize_pgr(weak_accs, strong_accs, transfer_accs, min_gap: float = 0.01,
                  n_test: int | None = None) -> dict[str, Any]:
    """PGR over seeds from per-seed accuracies (each a fraction of n_test docs, when given).

    ratio: the mean gain over the mean gap, i.e. pgr() of the mean accuracies, the min-gap rule on
    the mean gap. median: OAI's median of per-seed PGRs over the seeds whose own gap passes
    min_gap; n_valid: how many those are; per_seed: every seed's PGR (None where withheld).
    """
    w, s, t = (np.asarray(v, dtype=np.float64) for v in (weak_accs, strong_accs, transfer_accs))
    per_seed = [pgr(wi, si, ti, min_gap, n_test)[0] for wi, si, ti in zip(w, s, t)]
    valid = [v for v in per_seed if v is not None]
    total_docs = None if n_test is None else int(n_test) * len(w)
    ratio, reason = pgr(float(w.mean()), float(s.mean()), float(t.mean()), min_gap, total_docs)
    return {"ratio": ratio, "ratio_reason": reason, "median": float(np.median(valid)) if valid else None,
            "n_valid": len(valid), "per_seed": per_seed}


def pgr_ci(weak_correct, strong_correct, transfer_correct, level: float = 0.95) -> dict[str, Any]:
    """The ratio of mean gains to mean gaps with Fieller's interval (module docstring).

    Inputs are (n_seeds, n_test) booleans. Returns pgr (None when the mean gap is not positive),
    ci ([lo, hi], None when the set is unbounded: the gap is not distinguishable from zero at this
    level) and reason (why ci is None).
    """
    w, s, t = (a.astype(np.int8) for a in as_correctness(weak_correct, strong_correct, transfer_correct))
    n_seeds, n_test = w.shape
    means, *mean_squares = mean_square_matrices(np.stack([t - w, s - w]))  # index 0: gains n, 1: gaps g
    gain, gap = float(means[0]), float(means[1])
    if gap <= 0:
        return {"pgr": None, "ci": None, "reason": f"mean gap {gap:+.4f} is not positive"}
    ratio = gain / gap

    def test(r0: float) -> tuple[float, float, float]:
        """mean(n - r0 g), Var_hat of it and the critical t^2 at its df."""
        weights = np.array([1.0, -r0])
        var, df = var_of_mean(*(float(weights @ m @ weights) for m in mean_squares), n_seeds, n_test)
        return float(weights @ means), var, t_quantile(0.5 + level / 2, df) ** 2 if var > 0 else 0.0

    def rejects(r0: float) -> bool:
        mean, var, crit = test(r0)
        return mean * mean > crit * var

    # Bounded iff R0 -> +-inf is rejected, where n - R0 g behaves like -R0 g: the gap's own t test.
    gap_var, gap_df = var_of_mean(*(float(m[1, 1]) for m in mean_squares), n_seeds, n_test)
    if gap_var > 0 and gap * gap <= t_quantile(0.5 + level / 2, gap_df) ** 2 * gap_var:
        return {"pgr": ratio, "ci": None,
                "reason": "the gap is not distinguishable from zero: every PGR is consistent with the data"}
    # Walk out from the ratio with doubling steps until the test rejects, then bisect the crossing.
    step = max(math.sqrt(test(ratio)[1]) / gap, 1e-6)
    ends = []
    for sign in (-1.0, 1.0):
        inside, width = ratio, step
        while not rejects(ratio + sign * width):
            inside, width = ratio + sign * width, 2 * width
        outside = ratio + sign * width
        while abs(outside - inside) > 1e-10 * max(1.0, abs(inside)):
            mid = (inside + outside) / 2
            inside, outside = (inside, mid) if rejects(mid) else (mid, outside)
        ends.append(inside)
    return {"pgr": ratio, "ci": [float(ends[0]), float(ends[1])], "reason": None}
