"""A text-only baseline: what a probe could get from the docs' words alone, without any model.

A logistic regression on word 1-2-gram and character 2-5-gram counts
(tf-idf weighted, sublinear), trained on half A of each seed, the very
halves the protocol's probes train on, and scored on the same test docs.
A baseline well above chance is a surface shortcut in the task; a model's
probe at or below it has learned nothing the words do not already show.

The vocabulary and idf weights are fitted once on all training docs'
texts (no labels), so one vectorisation serves every seed; a word seen only
in half B gets no weight from a classifier trained on A anyway.

    proba = text_baseline_proba(train_texts, y_train, test_texts, [split_halves(groups, s)[0] for s in seeds])
    baseline = text_baseline_result(proba, y_test, seeds)
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..results import SeedScore, TextBaseline
from .intervals import accuracy_ci
from .stats import accuracy, auroc

VERSION = "1"  # bump when the features or the classifier change (it is in the cache key)
SETTINGS = {
    "version": VERSION,
    "features": "word 1-2-grams (lower case) + char_wb 2-5-grams (case kept), tf-idf, sublinear tf, "
                "vocabulary from all training texts",
    "classifier": "scikit-learn LogisticRegression(C=10, lbfgs, max_iter=2000) on half A",
}


def text_baseline_proba(train_texts: Sequence[str], y_train, test_texts: Sequence[str],
                        halves_a: Sequence[np.ndarray]) -> np.ndarray:
    """(n_seeds, n_test) probability of label 1 on the test docs, one row per half A given."""
    from scipy.sparse import hstack
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    y_train = np.asarray(y_train)
    vectorizers = [TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
                   TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=False)]
    x_train = hstack([v.fit_transform(train_texts) for v in vectorizers]).tocsr()
    x_test = hstack([v.transform(test_texts) for v in vectorizers]).tocsr()
    out = np.empty((len(halves_a), len(test_texts)))
    for row, half in enumerate(halves_a):
        half = np.asarray(half)
        if len(np.unique(y_train[half])) < 2:  # one class in A: the baseline predicts it
            out[row] = float(y_train[half][0]) if len(half) else 0.5
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 2000 lbfgs steps are plenty for a baseline
            classifier = LogisticRegression(C=10.0, max_iter=2000).fit(x_train[half], y_train[half])
        out[row] = classifier.predict_proba(x_test)[:, 1]
    return out


def text_baseline_result(proba: np.ndarray, y_test, seeds: Sequence[int], level: float = 0.95) -> TextBaseline:
    """Per-seed accuracy and AUROC, and the mean accuracy with its interval over seeds and test docs."""
    y_test = np.asarray(y_test)
    two_class = [np.column_stack([1 - p, p]) for p in np.asarray(proba)]
    per_seed = [SeedScore(seed=int(seed), acc=accuracy(y_test, p), auroc=auroc(y_test, p))
                for seed, p in zip(seeds, two_class)]
    correct = np.stack([np.argmax(p, axis=1) == y_test for p in two_class])
    interval = accuracy_ci(correct, level)
    return TextBaseline(per_seed=per_seed, acc_mean=interval["acc"], ci=interval["ci"], level=level,
                        settings=dict(SETTINGS))
