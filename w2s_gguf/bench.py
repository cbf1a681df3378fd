"""`w2s-gguf bench`: our extraction pipeline against llama.cpp's own throughput, on one load.

Speed on shared machines is noisy, so the figure that matters is a ratio
measured in one process: tokens/s of the whole pipeline (tokenize, batch,
decode, pool, store) over tokens/s of the engine decoding one sequence of
`max_tokens` tokens, on the same model, context and threads.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .embeddings import Embedder, embed_texts
from .errors import SettingError
from .models import load_registry, resolve_model
from .tasks import load_task


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def time_heads(x: np.ndarray, labels: np.ndarray, seeds: int = 3, losses=("xent", "logconf", "product")) -> float:
    """Seconds to train the heads of the default experiment's shape: per seed a weak and a
    strong ceiling plus one transfer head per loss (features reused for both models)."""
    from .splits import split_halves
    from .heads import LinearProbe

    start = time.perf_counter()
    groups = [str(i) for i in range(len(labels))]
    for seed in range(seeds):
        a, b = split_halves(groups, seed)
        weak = LinearProbe(loss="xent", seed=seed).fit(x[a], labels[a])
        LinearProbe(loss="xent", seed=seed).fit(x[a], labels[a])
        soft = weak.predict_proba(x[b]).astype(np.float32)
        for loss in losses:
            LinearProbe(loss=loss, seed=seed).fit(x[b], soft)
    return time.perf_counter() - start


def layer_capture_ratio(model, texts: list[str], layers: list[str], pooling: str, max_tokens: int, n_gpu_layers: int,
                        n_threads: int | None, rounds: int = 2) -> dict:
    """Pipeline tok/s capturing `layers` in the same forward pass against plain extraction, same docs and
    batches, interleaved (plain, capture, plain, capture) so load drifts hit both alike."""
    from .embeddings import embed_layers
    from .layers import resolve_layers

    chosen = resolve_layers(layers, model.n_layer or 0, model.name)
    tps = {"plain": [], "capture": []}
    for _ in range(rounds):
        for mode, wanted in (("plain", ["last"]), ("capture", chosen)):
            with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:
                result = next(iter(embed_layers(model, texts, wanted, pooling, max_tokens, n_gpu_layers, n_threads,
                                                progress=False, cache_root=Path(tmp)).values()))
            tps[mode].append(result.n_tokens / result.seconds)
    plain, capture = float(np.median(tps["plain"])), float(np.median(tps["capture"]))
    return {"layers": [str(layer) for layer in chosen], "pooling": pooling, "plain_tokens_per_second": round(plain, 1),
            "capture_tokens_per_second": round(capture, 1), "capture_ratio": round(capture / plain, 3)}


def warm_run_seconds(methods: str | None = None, extra: list[str] | None = None) -> float:
    """Wall time of a warm `w2s-gguf run` (features cached), imports included: the command runs once to fill the
    cache, then again, timed, in a fresh process."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:
        cmd = [sys.executable, "-m", "w2s_gguf.cli", "run", "--no-progress", "--out", tmp, *(extra or [])]
        if methods:
            cmd += ["--methods", methods]
        subprocess.run(cmd, check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - start


def run_bench(model_spec: str, task: str, n_docs: int, max_tokens: int = 512, n_gpu_layers: int = -1,
              n_threads: int | None = None, registry: str | None = None, layers: list[str] | None = None,
              pooling: str = "last") -> dict:
    if n_docs < 8:
        raise SettingError("n_docs", f"must be at least 8 (got {n_docs})")
    model = resolve_model(model_spec, load_registry(registry))
    data = load_task(task, n_train=n_docs, n_test=20)  # the test split is unused; it must hold both labels
    texts = [d.text for d in data.train]
    labels = np.array([d.label for d in data.train])

    embedder = Embedder(model, "last", max_tokens, n_gpu_layers, n_threads)
    engine_tps = embedder.engine_tokens_per_second()
    with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:  # a fresh cache: really compute
        result = embed_texts(model, texts, "last", max_tokens, n_gpu_layers, n_threads, progress=False,
                             cache_root=Path(tmp), embedder=embedder)
    engine_after = embedder.engine_tokens_per_second()  # measured on both sides of the run: load drifts
    embedder.close()
    engine = (engine_tps + engine_after) / 2
    pipeline_tps = result.n_tokens / result.seconds
    capture = layer_capture_ratio(model, texts, layers, pooling, max_tokens, n_gpu_layers, n_threads) if layers else None
    return {
        "layer_capture": capture,
        "model": model.name,
        "model_sha256": model.sha256,
        "task": task,
        "n_docs": len(texts),
        "n_tokens": result.n_tokens,
        "mean_tokens_per_doc": round(result.n_tokens / len(texts), 1),
        "n_threads": embedder.n_threads,
        "gpu_offload": embedder.gpu_offload,
        "docs_per_second": round(len(texts) / result.seconds, 2),
        "tokens_per_second": round(pipeline_tps, 1),
        "engine_tokens_per_second": round(engine, 1),
        "engine_sequence_tokens": max_tokens,
        "ratio": round(pipeline_tps / engine, 3),
        "head_training_seconds": round(time_heads(result.features, labels), 3),
        "peak_memory_mb": round(peak_rss_mb(), 1),
        "model_file_mb": round(model.size / 1e6, 1),
        "features_mb": round(result.features.nbytes / 1e6, 2),
    }


def format_bench(r: dict) -> str:
    lines = [
        f"model             {r['model']} ({r['n_threads']} threads, gpu offload {r['gpu_offload']})",
        f"docs              {r['n_docs']} from {r['task']} ({r['mean_tokens_per_doc']} tokens/doc)",
        f"pipeline          {r['docs_per_second']} docs/s, {r['tokens_per_second']} tok/s",
        f"engine            {r['engine_tokens_per_second']} tok/s (one {r['engine_sequence_tokens']}-token sequence)",
        f"ratio             {r['ratio']}x",
        f"head training     {r['head_training_seconds']} s (3 seeds x (2 ceilings + 3 losses))",
        f"peak memory       {r['peak_memory_mb']} MB (model file {r['model_file_mb']} MB, features {r['features_mb']} MB)",
    ]
    if r.get("layer_capture"):
        c = r["layer_capture"]
        lines.append(f"layer capture     {len(c['layers'])} layers ({c['pooling']} pooling) in one pass: "
                     f"{c['capture_tokens_per_second']} vs {c['plain_tokens_per_second']} tok/s plain = {c['capture_ratio']}x")
    return "\n".join(lines)
