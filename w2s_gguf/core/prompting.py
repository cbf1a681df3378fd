"""Prompting baselines on arrays: choosing demonstrations, and scoring prompts into the results schema.

A prompt's score is log p(word 1) - log p(word 0) at its last position (features.prompt_scores). Per
model: zero-shot accuracy (threshold 0) and AUROC, and k-shot accuracy with ground-truth
demonstrations from half A, chosen per seed. Per pair: the strong model's k-shot accuracy with the
weak model's hard labels on half B as demonstrations (the labels its weak-to-strong students learn
from), and prompting PGR = (k-shot weak - floor) / (ceiling - floor), with floor = the weak model's
probe accuracy (the W2S run's weak_acc) and ceiling = the strong model's k-shot accuracy with true
labels, under the same gap rule and intervals as the probe PGR (summaries.summarize: the ratio of mean gain to
mean gap with Fieller's interval, and OAI's median of per-seed PGRs beside it).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..results import Estimate, FewShot, PairPrompting, PromptPairSeed, PromptSeed, TransferScore, ZeroShot
from .intervals import accuracy_ci, paired_diff_ci
from .stats import pgr, rank_auroc
from .summaries import summarize

TRUE_DEMOS, WEAK_DEMOS = 1, 2  # streams of each seed's generator, so the two choices never share draws


def choose_demos(labels: np.ndarray, pool: np.ndarray, k: int, seed: int, stream: int) -> list[int]:
    """k indices from `pool`, balanced over the labels given (k//2 of one, the rest of the other; which
    label gets the odd one alternates with the seed), in a seeded order. Where one label has too few
    docs in the pool, the other fills the rest."""
    if k <= 0:
        return []
    rng = np.random.default_rng([seed, stream])
    pool = np.asarray(pool)
    by_label = {c: rng.permutation(pool[np.asarray(labels)[pool] == c]) for c in (0, 1)}
    want = {1: k // 2 + (k % 2 if seed % 2 == 0 else 0)}
    want[0] = k - want[1]
    take = {c: min(want[c], len(by_label[c])) for c in (0, 1)}
    for c in (0, 1):  # fill from the other label
        take[c] = min(len(by_label[c]), take[c] + (k - take[0] - take[1]))
    chosen = np.concatenate([by_label[c][: take[c]] for c in (0, 1)])
    return [int(i) for i in rng.permutation(chosen)]


def scores_of(log_probs: np.ndarray) -> np.ndarray:
    """log p(word 1) - log p(word 0) per prompt."""
    log_probs = np.asarray(log_probs, dtype=np.float64)
    return log_probs[:, 1] - log_probs[:, 0]


def correct_of(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return (scores_of(log_probs) > 0) == np.asarray(labels).astype(bool)


# ---------------------------------------------------------------- intervals (all call sites here)

def mean_ci(correct: np.ndarray) -> Estimate:
    """Mean accuracy over seeds and test docs, with the probes' interval (intervals.accuracy_ci: two-way
    variance components, covering new seeds and new test docs)."""
    out = accuracy_ci(np.atleast_2d(np.asarray(correct, dtype=bool)))
    return Estimate(out["acc"], out["ci"], out["level"])


def auroc_ci(labels: np.ndarray, scores: np.ndarray, n_boot: int, level: float = 0.95) -> Estimate:
    """Mean AUROC over seeds (scores: (n_seeds, n_test), or one (n_test,) set), with a bootstrap interval
    that resamples seeds and test docs (AUROC is no mean over docs, so it has no variance-components form)."""
    labels, scores = np.asarray(labels), np.atleast_2d(np.asarray(scores, dtype=np.float64))
    values = [a for a in (rank_auroc(labels, row) for row in scores) if a is not None]
    value = float(np.mean(values)) if values else None
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, len(scores), (n_boot, len(scores)))
    docs = rng.integers(0, len(labels), (n_boot, len(labels)))
    draws = []
    for b in range(n_boot):
        got = [a for a in (rank_auroc(labels[docs[b]], scores[s, docs[b]]) for s in seeds[b]) if a is not None]
        if got:
            draws.append(np.mean(got))
    alpha = (1 - level) / 2
    ci = [float(q) for q in np.quantile(draws, [alpha, 1 - alpha])] if draws else None
    return Estimate(value, ci, level)


# ---------------------------------------------------------------- per model and per pair

def zero_shot(log_probs: np.ndarray, y_test: np.ndarray, n_boot: int) -> ZeroShot:
    scores = scores_of(log_probs)
    return ZeroShot(acc=mean_ci(correct_of(log_probs, y_test)), auroc=auroc_ci(y_test, scores, n_boot),
                    mean_score=float(scores.mean()), predicted_positive=float((scores > 0).mean()))


def few_shot(log_probs_by_seed: dict[int, np.ndarray], y_test: np.ndarray, n_boot: int) -> FewShot:
    seeds = sorted(log_probs_by_seed)
    per_seed = [PromptSeed(s, float(correct_of(log_probs_by_seed[s], y_test).mean()),
                          rank_auroc(y_test, scores_of(log_probs_by_seed[s]))) for s in seeds]
    correct = np.stack([correct_of(log_probs_by_seed[s], y_test) for s in seeds])
    scores = np.stack([scores_of(log_probs_by_seed[s]) for s in seeds])
    return FewShot(mean_ci(correct), auroc_ci(y_test, scores, n_boot), per_seed)


def pair_prompting(weak: str, strong: str, y_test: np.ndarray, floor_correct: dict[int, np.ndarray],
                   ceiling_log_probs: dict[int, np.ndarray], weak_log_probs: dict[int, np.ndarray],
                   demo_label_acc: dict[int, float], floor_predictions: dict[int, np.ndarray],
                   min_gap: float, n_boot: int) -> PairPrompting:
    """The strong model prompted with the weak model's labels, as a weak-to-strong run of its own."""
    seeds = sorted(weak_log_probs)
    floor = np.stack([floor_correct[s] for s in seeds])
    ceiling = np.stack([correct_of(ceiling_log_probs[s], y_test) for s in seeds])
    transfer = np.stack([correct_of(weak_log_probs[s], y_test) for s in seeds])
    gap = paired_diff_ci(ceiling, floor, threshold=min_gap)
    per_seed, rows = [], []
    for i, seed in enumerate(seeds):
        f, c, t = float(floor[i].mean()), float(ceiling[i].mean()), float(transfer[i].mean())
        value, reason = pgr(f, c, t, min_gap)
        predicted = scores_of(weak_log_probs[seed]) > 0
        agree = float(np.mean(predicted == floor_predictions[seed].astype(bool)))
        auroc = rank_auroc(y_test, scores_of(weak_log_probs[seed]))
        per_seed.append(PromptPairSeed(seed, f, c, t, auroc, value, reason, demo_label_acc.get(seed)))
        rows.append(TransferScore(acc=t, auroc=auroc, agreement=agree, pgr=value, pgr_reason=reason))
    # The probe runs' summary, so the gap rule and the PGR (mean gain / mean gap, Fieller's interval) are
    # the same code as the probes' (and change with it).
    s = summarize(SimpleNamespace(min_gap=min_gap), False, gap, rows, floor, ceiling, transfer)
    return PairPrompting(weak, strong, float(floor.mean()), float(ceiling.mean()), mean_ci(transfer),
                         s.auroc_mean, s.agreement_mean, Estimate(gap["diff"], gap["ci"], gap["level"]),
                         bool(gap["distinguishable"]), s.pgr, s.pgr_ci, s.pgr_median, s.pgr_reason, s.n_valid_seeds,
                         per_seed)
