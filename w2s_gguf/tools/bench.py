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

from ..features.pipeline import Embedder, embed_texts
from ..errors import SettingError
from ..features.layers import resolve_layers
from ..models import load_registry, resolve_model
from ..tasks import load_task


def peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 / 1024 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def time_heads(x: np.ndarray, labels: np.ndarray, seeds: int = 3, losses=("xent", "logconf", "product")) -> float:
    """Seconds to train the heads of the default experiment's shape: per seed a weak and a
    strong ceiling plus one transfer head per loss (features reused for both models)."""
    from ..core.splits import split_halves
    from ..core.heads import LinearProbe

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


def layer_capture_ratio(model, texts: list[str], layers: list, pooling: str, max_tokens: int, n_gpu_layers: int,
                        n_threads: int | None, rounds: int = 2) -> dict:
    """tok/s capturing `layers` (resolved: block indices and/or "last") in the same forward pass, against
    plain extraction of the same batches.

    Both engines are loaded side by side and decode every batch in turn, alternating which goes first
    (A,B then B,A), so a shared machine's load drifts fall on both alike; timing whole runs one after the
    other moved the ratio by +-10% here. Each side then writes what it produced to cache stores (one
    layer for plain, every captured layer for capture) and that time is counted too.
    """
    from ..features.cache import EmbeddingStore, StoreSettings
    from ..features.pipeline import plan_batches
    from ..features.capture import LayerEmbedder

    chosen = list(layers)
    plain = Embedder(model, pooling, max_tokens, n_gpu_layers, n_threads)
    capture = LayerEmbedder(model, pooling, max_tokens, chosen, n_gpu_layers, n_threads)
    try:
        tokens = [plain.tokenize(t)[0] for t in texts]
        batches = [[tokens[i] for i in b] for b in plan_batches([len(t) for t in tokens], plain.batch_tokens)]
        engines = {"plain": plain, "capture": capture}
        for engine in engines.values():
            engine.embed_batch(batches[0])  # warm-up
        seconds = {"plain": 0.0, "capture": 0.0}
        per_batch = []  # plain time / capture time of each batch: its median resists bursts of load
        outputs = {}
        for r in range(rounds):
            for i, batch in enumerate(batches):
                took = {}
                for name in (["plain", "capture"] if (i + r) % 2 == 0 else ["capture", "plain"]):
                    start = time.perf_counter()
                    outputs[name, i] = engines[name].embed_batch(batch)
                    took[name] = time.perf_counter() - start
                    seconds[name] += took[name]
                per_batch.append(took["plain"] / took["capture"])
    finally:
        plain.close()
        capture.close()
    keys = [f"{i:064x}" for i in range(len(texts))]
    with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:
        for name, stored in (("plain", ["last"]), ("capture", [str(layer) for layer in chosen])):
            vectors = np.concatenate([outputs[name, i] for i in range(len(batches))])
            vectors = vectors.reshape(len(texts), -1, vectors.shape[-1])
            start = time.perf_counter()
            for slot, layer in enumerate(stored):
                settings = StoreSettings(model.sha256, pooling, max_tokens, "bench", False, plain.batch_tokens, layer)
                EmbeddingStore(settings, Path(tmp) / name).add_shard(keys, vectors[:, slot], {})
            seconds[name] += rounds * (time.perf_counter() - start)  # one store write per pass over the docs
    n_tokens = rounds * sum(map(len, tokens))
    plain_tps, capture_tps = n_tokens / seconds["plain"], n_tokens / seconds["capture"]
    return {"layers": [str(layer) for layer in chosen], "pooling": pooling, "batches": len(batches), "rounds": rounds,
            "plain_tokens_per_second": round(plain_tps, 1), "capture_tokens_per_second": round(capture_tps, 1),
            "capture_ratio": round(capture_tps / plain_tps, 3),
            "median_batch_ratio": round(float(np.median(per_batch)), 3)}


def warm_run_seconds(methods: str | None = None, extra: list[str] | None = None, repeats: int = 3) -> list[float]:
    """Wall times of a warm `w2s-gguf run` (features cached), imports included: the command runs once to fill the
    cache, then `repeats` more times, each timed in a fresh process."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:
        cmd = [sys.executable, "-m", "w2s_gguf.cli", "run", "--no-progress", "--out", tmp, *(extra or [])]
        if methods:
            cmd += ["--methods", methods]
        subprocess.run(cmd, check=True, capture_output=True)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(round(time.perf_counter() - start, 2))
        return times


def warm_runs() -> dict[str, dict]:
    """The warm-run figures the README quotes: the default run, with the scikit-learn check, with every method."""
    runs = {"default run (3 losses, 5 seeds)": warm_run_seconds(),
            "with --sklearn-check": warm_run_seconds(extra=["--sklearn-check"]),
            "with --methods all": warm_run_seconds("all")}
    return {name: {"seconds": times, "median": float(np.median(times))} for name, times in runs.items()}


def format_warm_runs(runs: dict[str, dict]) -> str:
    return "\n".join([f"{name:34} median {r['median']:.2f} s  (runs: {', '.join(map(str, r['seconds']))})"
                      for name, r in runs.items()]
                     + ["(wall time of a `w2s-gguf run` whose features are cached, imports included)"])


def run_bench(model_spec: str, task: str, n_docs: int, max_tokens: int = 512, n_gpu_layers: int = -1,
              n_threads: int | None = None, registry: str | None = None, layers: list[str] | None = None,
              pooling: str = "last") -> dict:
    if n_docs < 8:
        raise SettingError("n_docs", f"must be at least 8 (got {n_docs})")
    model = resolve_model(model_spec, load_registry(registry))
    chosen = resolve_layers(layers, model.n_layer or 0, model.name) if layers else None  # before any work
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
    capture = layer_capture_ratio(model, texts, chosen, pooling, max_tokens, n_gpu_layers, n_threads) if chosen else None
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
                     f"{c['capture_tokens_per_second']} vs {c['plain_tokens_per_second']} tok/s plain = {c['capture_ratio']}x "
                     f"(same {c['batches']} batches x {c['rounds']}, interleaved; median per batch "
                     f"{c['median_batch_ratio']}x)")
    return "\n".join(lines)
