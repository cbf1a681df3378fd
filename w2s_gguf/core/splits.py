"""Splitting the training docs into halves A and B by group (a group never straddles halves)."""

from __future__ import annotations

import numpy as np


def split_halves(groups: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of halves A and B, whole groups on one side, about half the docs each."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    half_a: list[int] = []
    half_b: list[int] = []
    for k in order:
        members = by_group[unique[k]]
        (half_a if len(half_a) <= len(half_b) else half_b).extend(members)
    return np.array(sorted(half_a)), np.array(sorted(half_b))
