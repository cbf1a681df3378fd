"""Nearest-neighbour label cleaning in the strong model's features: knn-relabel-K, knn-filter-C.

Source: EleutherAI/w2s `w2s/probe.py` (KnnProbe.predict, Probe.filter) as
used by `w2s/sft.py` (probe_relabel, probe_filter, contamination 0.1). As
there, the probe is fit on the training docs' raw strong features and their
weak labels and then predicts those same docs, so a doc is its own nearest
neighbour (distance 0): its prediction is the mean weak label of its k
nearest docs, itself included. Distances are Euclidean on the raw features
(as ELA's torch.cdist), computed in float64; ties go to the lower index.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inputs import one_thread
from . import OneHeadMethod, W2SInput, parse_number, register

DEFAULT_K = 50


def knn_mean_labels(x: np.ndarray, labels: np.ndarray, k: int, queries: np.ndarray | None = None) -> np.ndarray:
    """Mean of `labels` (n, 2) over each doc's k nearest docs in x (itself included), or over the
    k nearest docs of x to each row of `queries` (other docs: the kNN teacher on the test docs)."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64))
    qt = xt if queries is None else torch.from_numpy(np.asarray(queries, dtype=np.float64))
    with one_thread():
        dist = ((qt * qt).sum(dim=1)[:, None] + (xt * xt).sum(dim=1)[None, :] - 2 * qt @ xt.T).numpy()
    if queries is None:
        # A doc is its own nearest neighbour (distance 0 in ELA); the matmul form leaves rounding
        # on the diagonal, so place it first explicitly.
        np.fill_diagonal(dist, -1.0)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return labels[nearest].mean(axis=1, dtype=np.float64).astype(np.float32)


@register
class KnnRelabel(OneHeadMethod):
    name = "knn-relabel"
    order = 20
    summary = "xent on each doc's mean weak label over its k nearest docs (strong features)"
    forms = f"knn-relabel (k = {DEFAULT_K}), knn-relabel-K (K >= 1)"
    source = "EleutherAI/w2s w2s/probe.py (KnnProbe), w2s/sft.py (probe_relabel)"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        self.k = DEFAULT_K if arg is None else parse_number(self, int, 1, None, what="K")

    @property
    def spec(self) -> str:
        return f"knn-relabel-{self.k}"

    def targets(self, data: W2SInput):
        k = min(self.k, len(data.weak))
        return None, knn_mean_labels(data.x_train, data.weak, k), {"k_used": k}

    def teacher_test(self, data: W2SInput):
        """Each test doc's mean weak label over its k nearest docs of B: the targets' rule, on test."""
        return knn_mean_labels(data.x_train, data.weak, min(self.k, len(data.weak)), queries=data.x_test)


@register
class KnnFilter(OneHeadMethod):
    name = "knn-filter"
    order = 21
    summary = f"xent without the share C of docs whose weak label disagrees most with its {DEFAULT_K} neighbours"
    forms = "knn-filter (C = 0.1), knn-filter-C (C in [0, 1))"
    source = "EleutherAI/w2s w2s/probe.py (Probe.filter), w2s/sft.py (probe_filter, contamination)"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        self.contamination = 0.1 if arg is None else parse_number(self, float, 0.0, 1.0, what="C")
        if self.contamination == 1.0:
            raise self.bad_arg("C must be below 1 (it would drop every doc)")

    @property
    def spec(self) -> str:
        return f"knn-filter-{self.contamination}"

    def targets(self, data: W2SInput):
        n = len(data.weak)
        k = min(DEFAULT_K, n)
        disagree = np.abs(knn_mean_labels(data.x_train, data.weak, k)[:, 1] - data.weak[:, 1])
        # ELA: argsort descending, drop the first int(contamination * n); kept docs stay in B's order.
        keep = np.sort(np.argsort(-disagree, kind="stable")[int(self.contamination * n):])
        return keep, data.weak[keep], {"k_used": k, "n_kept": int(len(keep))}
