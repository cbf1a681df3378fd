"""A run's text-only baseline (core/text_baseline.py), cached so that a warm rerun never imports scikit-learn.

The per-seed test probabilities are stored as one .npy named by the sha256
of what decides them: the docs (tasks.docs_fingerprint: texts, labels,
groups, so also halves A and B), the seeds, the baseline's settings and
scikit-learn's version. Written atomically; a file of the wrong shape is
recomputed.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from ..common.storage import atomic_save_npy, cache_home, load_npy
from ..core.splits import split_halves
from ..core.text_baseline import SETTINGS, text_baseline_proba, text_baseline_result
from ..results import TextBaseline
from ..tasks import TaskData, docs_fingerprint

FOLDER = "text-baseline"


def baseline_dir(cache_root: Path | None = None) -> Path:
    """Beside the embeddings under $W2S_GGUF_HOME, or inside the cache folder a caller chose."""
    return (Path(cache_root) if cache_root else cache_home()) / FOLDER


def baseline_key(data: TaskData, seeds: list[int]) -> str:
    try:
        sklearn_version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        sklearn_version = None
    recipe = {"docs": docs_fingerprint(data.train, data.test), "seeds": list(seeds), "settings": SETTINGS,
              "scikit_learn": sklearn_version}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode("utf-8")).hexdigest()


def text_baseline(data: TaskData, seeds: list[int], cache_root: Path | None = None,
                  log: Callable[[str], None] | None = None) -> tuple[TextBaseline, np.ndarray]:
    """The baseline's summary and its (n_seeds, n_test) probabilities of label 1, from the cache where possible."""
    path = baseline_dir(cache_root) / f"{baseline_key(data, seeds)}.npy"
    proba = _cached(path, (len(seeds), len(data.test)))
    if proba is None:
        groups = [d.group for d in data.train]
        proba = text_baseline_proba([d.text for d in data.train], [d.label for d in data.train],
                                    [d.text for d in data.test], [split_halves(groups, seed)[0] for seed in seeds])
        atomic_save_npy(path, proba)
    result = text_baseline_result(proba, [d.label for d in data.test], seeds)
    if log:
        log(f"text-only baseline (word and character n-grams, half A): accuracy {result.acc_mean:.3f} "
            f"[{result.ci[0]:.3f}, {result.ci[1]:.3f}]")
    return result, proba


def _cached(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        proba = load_npy(path, mmap=False)
    except (OSError, ValueError):
        return None  # damaged: computed again and replaced
    if proba.shape != shape or not np.all((proba >= 0) & (proba <= 1)):
        return None
    return proba
