"""One experiment, end to end: task -> models -> features -> protocol -> results folder.

The protocol itself runs on arrays (`protocol.run_protocol`); this module
only gathers its inputs and writes its outputs: results.json (the schema in
`results`) and predictions.npz (every head's test probabilities, numpy,
and the text-only baseline's as "text_baseline|SEED").
"""

from __future__ import annotations

import io
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from .config import ExperimentConfig
from ..features.cache import embeddings_root
from ..features.pipeline import EmbeddingResult, embed_layers
from ..errors import SettingError, W2SError
from ..features.layers import LAST, expand_all, resolve_layers
from ..models import ResolvedModel, load_registry, resolve_model
from ..core.protocol import run_protocol
from ..results import ModelInfo, Results, TaskInfo, refuse_newer_results, write_results
from ..common.storage import atomic_write_bytes, check_writable_dir
from ..tasks import TaskData, load_task
from .text_baseline import text_baseline

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
    if config.prompting:  # before any weights are loaded: the task has a form and its prompts fit each context
        from .prompting import check_prompting

        registry = load_registry(config.registry)
        check_prompting(config, data, [resolve_model(name, registry) for name in config.models])
    names, layers, features = extract_features(config, data, progress, log, cache_root)
    extraction_seconds = time.perf_counter() - start

    train_start = time.perf_counter()
    n_train = len(data.train)
    ground_truth, pairs, predictions, head, outcomes = [], [], {}, {}, []
    for spec in layers:  # the protocol once per layer, on the same docs, splits and seeds
        outcome = run_protocol(
            {m: (features[m][spec].features[:n_train], features[m][spec].features[n_train:]) for m in names},
            [d.label for d in data.train], [d.label for d in data.test], [d.group for d in data.train],
            config.protocol(), layer=spec, log=log,
        )
        ground_truth += outcome.ground_truth
        pairs += outcome.pairs
        predictions.update(outcome.predictions)
        head = outcome.head
        outcomes.append(outcome)
    training_seconds = time.perf_counter() - train_start
    baseline_start = time.perf_counter()
    seeds = list(range(config.seeds))
    baseline, baseline_proba = text_baseline(data, seeds, cache_root, log)  # the same halves and test docs
    predictions.update({f"text_baseline|{seed}": np.column_stack([1 - p, p]) for seed, p in zip(seeds, baseline_proba)})
    baseline_seconds = time.perf_counter() - baseline_start
    prompting = None
    if config.prompting:  # on the first layer's probes (the label-efficiency curves use its features)
        from .prompting import run_prompting

        spec = layers[0]
        prompting, scores = run_prompting(
            config, data, {m: features[m][spec].model for m in names},
            {m: (features[m][spec].features[:n_train], features[m][spec].features[n_train:]) for m in names},
            outcomes[0], spec, progress, log, cache_root)
        predictions.update(scores)
    results = Results(
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command or "",
        settings={**config.to_json(), "models": names, "model_specs": list(config.models), "layers": layers,
                  "methods": config.protocol().method_specs(len(names)), "head": head},
        task=TaskInfo(**data.info()),
        models={name: _model_info(features[name], layers) for name in names},
        versions=library_versions(),
        ground_truth=ground_truth,
        pairs=pairs,
        text_baseline=baseline,
        prompting=prompting,
    )
    results.timings = {
        "extraction_seconds": round(extraction_seconds, 3),
        "training_seconds": round(training_seconds, 3),
        "text_baseline_seconds": round(baseline_seconds, 3),
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    if prompting is not None:
        results.timings["prompting_seconds"] = round(sum(prompting.timings.values()), 3)
    atomic_write_bytes(out / PREDICTIONS_NAME, _npz_bytes(predictions))
    write_results(out, results)
    return results


def extract_features(config: ExperimentConfig, data: TaskData, progress: bool, log: Callable[[str], None],
                     cache_root: Path | None = None) -> tuple[list[str], list[str], dict[str, dict[str, EmbeddingResult]]]:
    """Every model's features of the train docs then the test docs, per layer spec (from the cache where possible).

    Returns the model names, the layer specs ("all" expanded) and features[model][spec].
    """
    registry = load_registry(config.registry)
    resolved = [resolve_model(name, registry) for name in config.models]  # fetch + verify all before any long work
    names = _unique_names(resolved)
    layers = list(config.layers)
    if layers != [LAST]:
        depths = [m.n_layer for m in resolved]
        if None in depths:
            raise W2SError(f"{resolved[depths.index(None)].name} has no block count in its GGUF header; only --layer last works with it")
        layers = expand_all(layers, depths)
        chosen = {m.name: {spec: resolve_layers([spec], m.n_layer, m.name)[0] for spec in layers} for m in resolved}
        _check_disk(config, data, resolved, chosen, cache_root)
    else:
        chosen = {m.name: {LAST: LAST} for m in resolved}
    # Logged only once the models are resolved, so bad input gets just its one-line error on stderr.
    log(f"task {data.name}: {len(data.train)} train / {len(data.test)} test docs from {data.source} "
        f"(positive rate {data.positive_rate_train:.2f} / {data.positive_rate_test:.2f})")
    for reason, count in data.skipped.items():
        log(f"skipped {count} source rows: {reason}")
    texts = [d.text for d in data.train] + [d.text for d in data.test]
    features: dict[str, dict[str, EmbeddingResult]] = {}
    for name, model in zip(names, resolved):
        if config.ray:  # the missing shards go to the cluster; the cache stays here
            from ..features.cluster import embed_texts_ray

            by_layer = {LAST: embed_texts_ray(model, texts, config.pooling, config.max_tokens, config.n_gpu_layers,
                                              config.n_threads, address=config.ray, progress=progress,
                                              cache_root=cache_root, decode=config.decode)}
        else:
            by_layer = embed_layers(model, texts, list(dict.fromkeys(chosen[model.name].values())), config.pooling,
                                    config.max_tokens, config.n_gpu_layers, config.n_threads, progress=progress,
                                    cache_root=cache_root, store_dtype=config.store_dtype, decode=config.decode)
        first = next(iter(by_layer.values()))
        for problem in {p for r in by_layer.values() for p in r.problems}:
            log(problem)
        if first.n_truncated:
            log(f"{name}: {first.n_truncated} texts were longer than {config.max_tokens} tokens and were cut from the left")
        features[name] = {spec: by_layer[layer] for spec, layer in chosen[model.name].items()}
    return names, layers, features


def _model_info(by_spec: dict[str, EmbeddingResult], layers: list[str]) -> ModelInfo:
    first = by_spec[layers[0]]
    return ModelInfo(**first.info(), n_layer=first.model.n_layer,
                     layers={spec: str(by_spec[spec].layer) for spec in layers})


def _check_disk(config, data, models, chosen, cache_root) -> None:
    """Refuse before extraction when the layer stores cannot fit on the cache's disk."""
    itemsize = 2 if config.store_dtype == "float16" else 4
    n_docs = len(data.train) + len(data.test)
    need = sum(n_docs * len(set(chosen[m.name].values())) * (m.n_embd or 0) * itemsize for m in models)
    root = embeddings_root(cache_root)
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if need > free:
        raise SettingError("layers", f"would store {need / 1e9:.1f} GB of features but {root} has {free / 1e9:.1f} GB free; "
                                     f"request fewer layers, use --store-dtype float16, or set W2S_GGUF_HOME to a larger disk")


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
