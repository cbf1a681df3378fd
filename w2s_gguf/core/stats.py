"""Metrics and PGR statistics: accuracy, AUROC, PGR with the minimum-gap rule, bootstrap intervals."""

from __future__ import annotations

import numpy as np


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


def pgr(weak_acc: float, strong_acc: float, transfer_acc: float, min_gap: float = 0.01) -> tuple[float | None, str | None]:
    """Performance gap recovered, or None with the reason it is not meaningful.

    Below `min_gap` the ratio divides noise by noise (OAI's anthropic_hh row
    reports PGR 0.81 from a gap of ~0.005), so it is withheld.
    """
    gap = strong_acc - weak_acc
    if gap < min_gap or gap <= 0:
        return None, f"gap {gap:+.3f} < min_gap {min_gap}"
    return (transfer_acc - weak_acc) / gap, None


def summarize_pgr(values: list[float | None]) -> tuple[float | None, float | None, int]:
    """Median and mean over the seeds whose PGR is defined, and how many those are."""
    valid = [v for v in values if v is not None]
    if not valid:
        return None, None, 0
    return float(np.median(valid)), float(np.mean(valid)), len(valid)


def bootstrap_pgr_ci(
    weak_correct: np.ndarray,
    strong_correct: np.ndarray,
    transfer_correct: np.ndarray,
    min_gap: float = 0.01,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[list[float] | None, str | None]:
    """Interval for the median-over-seeds PGR, resampling seeds and test docs.

    Inputs are (n_seeds, n_test) booleans: whether each run got each test doc
    right. Each bootstrap draw resamples seeds and test docs with replacement
    (the same docs for weak, strong and transfer, so their errors stay paired)
    and takes the median PGR over the drawn seeds whose gap is >= min_gap.
    """
    weak_correct, strong_correct, transfer_correct = (np.asarray(a, dtype=bool) for a in (weak_correct, strong_correct, transfer_correct))
    n_seeds, n_test = weak_correct.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))[:, :, None]
    docs = rng.integers(0, n_test, (n_boot, n_test))[:, None, :]
    # (n_boot, n_seeds) accuracies of every draw at once.
    w, s, t = (a[seeds, docs].mean(axis=2) for a in (weak_correct, strong_correct, transfer_correct))
    gap = s - w
    ok = (gap >= min_gap) & (gap > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pgrs = np.where(ok, (t - w) / np.where(ok, gap, 1.0), np.nan)
    usable = ok.any(axis=1)
    draws = np.nanmedian(pgrs[usable], axis=1) if usable.any() else np.array([])
    if len(draws) < 0.5 * n_boot:
        return None, f"the gap is below min_gap {min_gap} in {n_boot - len(draws)} of {n_boot} bootstrap draws"
    alpha = (1 - level) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return [float(lo), float(hi)], None
