"""One experiment, end to end: task -> models -> features -> protocol -> results folder.

The protocol itself runs on arrays (`protocol.run_protocol`); this module
only gathers its inputs and writes its outputs: results.json (the schema in
`results`) and predictions.npz (every head's test probabilities, numpy).
"""

from __future__ import annotations

import io
import platform
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .config import ExperimentConfig
from .embeddings import EmbeddingResult, embed_texts
from .errors import W2SError
from .models import ResolvedModel, load_registry, resolve_model
from .protocol import run_protocol
from .results import ModelInfo, Results, TaskInfo, refuse_newer_results, write_results
from .storage import atomic_write_bytes, check_writable_dir
from .tasks import TaskData, load_task

__all__ = ["ExperimentConfig", "run_experiment", "library_versions"]
PREDICTIONS_NAME = "predictions.npz"


def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    cache_root: Path | None = None,
) -> Results:
    """Run the whole protocol, write results.json and predictions.npz into `out_dir`, return the results.

    `cache_root`: the embedding cache folder (default: the one under $W2S_GGUF_HOME).
    """
    log = log or (lambda msg: print(f"[w2s-gguf] {msg}", file=sys.stderr, flush=True))
    start = time.perf_counter()
    config.validate()
    out = check_writable_dir(out_dir)
    refuse_newer_results(out)

    data = load_task(config.task, config.n_train, config.n_test, config.task_options, config.balance, config.data_seed)
    names, features = extract_features(config, data, progress, log, cache_root)
    extraction_seconds = time.perf_counter() - start

    train_start = time.perf_counter()
    n_train = len(data.train)
    outcome = run_protocol(
        {m: (features[m].features[:n_train], features[m].features[n_train:]) for m in names},
        [d.label for d in data.train], [d.label for d in data.test], [d.group for d in data.train],
        config.protocol(), log=log,
    )
    results = Results(
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command or "",
        settings={**config.to_json(), "models": names, "model_specs": list(config.models), "head": outcome.head},
        task=TaskInfo(**data.info()),
        models={name: ModelInfo(**features[name].info()) for name in names},
        versions=library_versions(),
        ground_truth=outcome.ground_truth,
        pairs=outcome.pairs,
    )
    results.timings = {
        "extraction_seconds": round(extraction_seconds, 3),
        "training_seconds": round(time.perf_counter() - train_start, 3),
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    atomic_write_bytes(out / PREDICTIONS_NAME, _npz_bytes(outcome.predictions))
    write_results(out, results)
    return results


def extract_features(config: ExperimentConfig, data: TaskData, progress: bool, log: Callable[[str], None],
                     cache_root: Path | None = None) -> tuple[list[str], dict[str, EmbeddingResult]]:
    """Every model's features of the train docs then the test docs (from the cache where possible)."""
    registry = load_registry(config.registry)
    resolved = [resolve_model(name, registry) for name in config.models]  # fetch + verify all before any long work
    names = _unique_names(resolved)
    # Logged only once the models are resolved, so bad input gets just its one-line error on stderr.
    log(f"task {data.name}: {len(data.train)} train / {len(data.test)} test docs from {data.source} "
        f"(positive rate {data.positive_rate_train:.2f} / {data.positive_rate_test:.2f})")
    for reason, count in data.skipped.items():
        log(f"skipped {count} source rows: {reason}")
    texts = [d.text for d in data.train] + [d.text for d in data.test]
    features: dict[str, EmbeddingResult] = {}
    for name, model in zip(names, resolved):
        result = embed_texts(model, texts, config.pooling, config.max_tokens, config.n_gpu_layers,
                             config.n_threads, progress=progress, cache_root=cache_root)
        for problem in result.problems:
            log(problem)
        if result.n_truncated:
            log(f"{name}: {result.n_truncated} texts were longer than {config.max_tokens} tokens and were cut from the left")
        features[name] = result
    return names, features


def _unique_names(models: list[ResolvedModel]) -> list[str]:
    names = [m.name for m in models]
    if len(set(names)) != len(names):  # two files with the same stem: fall back to short hashes
        names = [f"{m.name}-{m.sha256[:8]}" for m in models]
    if len({m.sha256 for m in models}) != len(models):
        raise W2SError("two of the models are the same file (same sha256); give different weak and strong models")
    return names


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"w2s_gguf": __version__, "python": platform.python_version(),
                                       "platform": platform.platform()}
    for dist in ("llama-cpp-python", "torch", "numpy", "scikit-learn", "datasets", "chess"):
        try:
            versions[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist.replace("-", "_")] = None
    return versions
