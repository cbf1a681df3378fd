"""Heads' inputs, checked once at the boundary: features, labels or soft targets, training settings.

Shared by the single head (heads.py) and the stacked trainer (stacked.py).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..errors import W2SError
from .losses import ROW_SUM_ATOL


def as_features(X, name: str = "features") -> np.ndarray:
    """Float32 (n, d) view or copy of X; never writes to X (it may be a read-only memmap)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise W2SError(f"{name} must be a non-empty 2-D array (docs x dims), got shape {X.shape}; check the embedding cache")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise W2SError(f"{name} must be real numbers, got dtype {X.dtype}; check the embedding cache")
    X = X.astype(np.float32, copy=False)
    finite = np.isfinite(X)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        kind = "NaN" if np.isnan(X[bad_rows]).any() else "infinite values"
        raise W2SError(
            f"{name} contain {kind} in {len(bad_rows)} of {len(X)} docs (first: row {bad_rows[0]}); "
            "delete those docs' cached embeddings and extract them again"
        )
    return X


def as_targets(y, n: int) -> np.ndarray:
    """Labels (n,) in {0,1} or soft targets (n, 2) -> float32 targets (n, 2)."""
    y = np.asarray(y)
    if y.shape[:1] != (n,):
        raise W2SError(f"features have {n} docs but labels have shape {y.shape}; pass one label or target row per doc")
    if y.ndim == 1:
        if y.dtype == bool:
            y = y.astype(np.int64)
        if not np.issubdtype(y.dtype, np.number):
            raise W2SError(f"labels must be 0/1 numbers, got dtype {y.dtype}")
        bad = set(np.unique(y[(y != 0) & (y != 1)]).tolist())
        if bad:
            shown = sorted(bad, key=str)[:5]
            raise W2SError(f"labels must be 0/1, got {set(shown)}; map the task's classes to 0/1")
        if len(np.unique(y)) < 2:
            raise W2SError(f"labels are all {int(y[0])}; a probe needs both classes, use more training docs")
        y = y.astype(np.int64)
        return np.eye(2, dtype=np.float32)[y]
    if y.ndim == 2 and y.shape[1] == 2 and np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float32)
        if not np.isfinite(y).all():
            raise W2SError("soft targets contain NaN or infinite values; recompute the weak labels")
        if (y < 0).any() or (y > 1).any():
            raise W2SError("soft targets must be probabilities in [0, 1]; pass predict_proba output, not logits")
        worst = float(np.abs(y.sum(axis=1) - 1).max())
        if not worst <= ROW_SUM_ATOL:  # the losses' own tolerance: checked here once, at the boundary
            raise W2SError(f"soft target rows must sum to 1 (within {ROW_SUM_ATOL}), worst row is off by {worst:.3g}; "
                           "pass predict_proba output, or divide each row by its sum")
        return y
    raise W2SError(f"labels must be 0/1 of shape (n,) or soft targets of shape (n, 2), got shape {y.shape} dtype {y.dtype}")


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread, then restore the caller's setting.

    The head's matmuls are tiny ((100 x d) @ (d x 2)); with two threads each
    step pays a thread sync, and on a busy 2-core machine that made fitting
    ~10x slower (0.55 s vs 0.055 s for 500 docs x 1000 dims x 10 epochs).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def check_settings(epochs, lr, batch_size, C) -> None:
    """A head's training settings, checked once (LinearProbe and the stacked trainer's jobs)."""
    if not (isinstance(epochs, (int, np.integer)) and epochs >= 1):
        raise W2SError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise W2SError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not lr > 0:
        raise W2SError(f"lr must be positive, got {lr!r}")
    if C is not None and not C > 0:
        raise W2SError(f"C must be positive (or None for no penalty), got {C!r}")
