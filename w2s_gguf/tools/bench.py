"""`w2s-gguf bench`: the extraction pipeline against llama.cpp's own embedding throughput, on the same batches.

Speed on shared machines is noisy, so the figure that matters is a ratio
measured in one process. Per layer request (last, middle, all, ...) the real
pipeline (`embed_layers`: tokenize, plan, decode only what the layers need,
pool, write checksummed shards) runs on a fresh cache, and every batch it
decodes is also decoded by `Embedder` (llama.cpp's embedding mode: the whole
graph, LM head included, llama.cpp pooling), alternately just before and just
after, so load drifts fall on both alike. The ratio is the pipeline's tok/s
over llama.cpp's tok/s on those same tokens. On the CPU the pipeline decodes
each text alone (a vector that does not depend on its batch), so each round
also times llama.cpp packing the same docs into its own batches: the second
ratio, the one a user of llama.cpp's embedding would see.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import SettingError, W2SError
from ..features.capture import LayerEmbedder
from ..features.engine import Embedder, extra_buffers, gpu_offload, texts_per_batch
from ..features.layers import LAST, parse_layers, resolve_layers
from ..features.pipeline import embed_layers, plan_batches
from ..models import load_registry, resolve_model
from ..tasks import load_task

clock = time.perf_counter  # every interval of the bench, on one clock (tests drive it by hand)


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


class Interleaved:
    """The pipeline's engine, with llama.cpp's embedding mode decoding every batch too (the yardstick).

    The yardstick decodes just before the engine on even batches and just after it on odd ones; its
    time is kept apart, so the pipeline's own time is the pipeline's wall time less the yardstick's.
    Everything else (tokenize, batch_tokens, layers, ...) is the engine's.
    """

    def __init__(self, engine: LayerEmbedder, yardstick: Embedder):
        self.engine, self.yardstick = engine, yardstick
        self.yardstick_seconds = 0.0
        self.yardstick_tokens = self.engine_tokens = 0
        self.per_batch: list[float] = []  # yardstick time / engine time of each batch (decode alone)
        self._n = 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def embed_batch(self, token_lists: list[list[int]]) -> np.ndarray:
        before = self._n % 2 == 0
        self._n += 1
        took = self._yardstick(token_lists) if before else 0.0
        start = clock()
        out = self.engine.embed_batch(token_lists)
        engine = clock() - start
        took = took if before else self._yardstick(token_lists)
        self.engine_tokens += sum(map(len, token_lists))
        self.per_batch.append(took / engine if engine > 0 else float("nan"))
        return out

    def _yardstick(self, token_lists: list[list[int]]) -> float:
        start = clock()
        self.yardstick.embed_batch(token_lists)
        took = clock() - start
        self.yardstick_seconds += took
        self.yardstick_tokens += sum(map(len, token_lists))
        return took


def compare_request(model, texts: list[str], request: list[str], pooling: str = "last", max_tokens: int = 512,
                    n_gpu_layers: int = -1, n_threads: int | None = None, rounds: int = 2,
                    yardstick: Embedder | None = None) -> dict:
    """Pipeline tok/s over llama.cpp embedding-mode tok/s for one layer request, on the same batches."""
    layers = resolve_layers(request, model.n_layer or 0, model.name)
    owns = yardstick is None
    yardstick = yardstick or Embedder(model, pooling, max_tokens, n_gpu_layers, n_threads, extra_buffers=True)
    engine = LayerEmbedder(model, pooling, max_tokens, layers, n_gpu_layers, n_threads,
                           extra_buffers=extra_buffers(texts_per_batch(gpu_offload(n_gpu_layers))))
    try:
        first = [engine.tokenize(texts[0])[0]]
        yardstick.embed_batch(first)  # warm-up; for the engine also its one decode of the whole graph (the check)
        engine.embed_batch(first)
        both = Interleaved(engine, yardstick)
        # llama.cpp's own way with the same docs: packed into batches, as llama-cpp-python's embed does
        # (the pipeline decodes each text alone on the CPU, engine.texts_per_batch); timed after each round.
        tokens = [yardstick.tokenize(t)[0] for t in texts]
        packed = plan_batches([len(t) for t in tokens], yardstick.batch_tokens)
        pipeline_seconds = packed_seconds = 0.0
        n_tokens = 0
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:  # a fresh cache: really compute
                spent = both.yardstick_seconds
                start = clock()
                results = embed_layers(model, texts, layers, pooling, max_tokens, progress=False,
                                       cache_root=Path(tmp), embedder=both)
                pipeline_seconds += clock() - start - (both.yardstick_seconds - spent)
            n_tokens += results[layers[0]].n_tokens
            start = clock()
            for batch in packed:
                yardstick.embed_batch([tokens[i] for i in batch])
            packed_seconds += clock() - start
        features = results[layers[-1]].features
    finally:
        engine.close()
        if owns:
            yardstick.close()
    pipeline_tps, yardstick_tps = n_tokens / pipeline_seconds, both.yardstick_tokens / both.yardstick_seconds
    return {"request": ",".join(request), "layers": [str(layer) for layer in layers], "pooling": pooling,
            "rounds": rounds, "batches": len(both.per_batch) // rounds, "docs": len(texts),
            "pipeline_tokens": n_tokens, "engine_tokens": both.engine_tokens, "yardstick_tokens": both.yardstick_tokens,
            "pipeline_tokens_per_second": round(pipeline_tps, 1), "llama_tokens_per_second": round(yardstick_tps, 1),
            "ratio": round(pipeline_tps / yardstick_tps, 3),
            "llama_packed_tokens_per_second": round(n_tokens / packed_seconds, 1),
            "ratio_vs_packed": round(packed_seconds / pipeline_seconds, 3),  # the same tokens on both sides
            "packed_batches": len(packed),
            "median_batch_ratio": round(float(np.nanmedian(both.per_batch)), 3),
            "graph": engine.graph, "stopped_decodes": engine.stats["stopped"], "decodes": engine.stats["decodes"],
            "late_nodes": engine.stats["late_nodes"], "features": features}


def run_bench(model_spec: str, task: str, n_docs: int, max_tokens: int = 512, n_gpu_layers: int = -1,
              n_threads: int | None = None, registry: str | None = None, requests: list[str] | None = None,
              pooling: str = "last", rounds: int = 2) -> dict:
    """Per layer request (default: last): pipeline vs llama.cpp on the same batches; head training, memory."""
    if n_docs < 8:
        raise SettingError("n_docs", f"must be at least 8 (got {n_docs})")
    model = resolve_model(model_spec, load_registry(registry))
    requests = requests or [LAST]
    for request in requests:  # every request checked before any work
        resolve_layers(parse_layers(request), model.n_layer or 0, model.name)
    data = load_task(task, n_train=n_docs, n_test=20)  # the test split is unused; it must hold both labels
    texts = [d.text for d in data.train]
    labels = np.array([d.label for d in data.train])
    yardstick = Embedder(model, pooling, max_tokens, n_gpu_layers, n_threads, extra_buffers=True)  # llama.cpp's own
    try:
        rows = [compare_request(model, texts, parse_layers(request), pooling, max_tokens, n_gpu_layers, n_threads,
                                rounds, yardstick) for request in requests]
    finally:
        yardstick.close()
    features = rows[0].pop("features")
    for row in rows[1:]:
        row.pop("features")
    try:
        heads: float | str = round(time_heads(features, labels), 3)
    except W2SError as exc:  # a half of a few docs may hold one label: keep the extraction figures anyway
        heads = f"not timed ({exc})"
    return {
        "model": model.name, "model_sha256": model.sha256, "task": task, "n_docs": len(texts),
        "n_tokens": rows[0]["pipeline_tokens"] // rounds,
        "mean_tokens_per_doc": round(rows[0]["pipeline_tokens"] / rounds / len(texts), 1),
        "n_threads": yardstick.n_threads, "gpu_offload": yardstick.gpu_offload, "max_tokens": max_tokens,
        "requests": rows,
        "head_training_seconds": heads,
        "peak_memory_mb": round(peak_rss_mb(), 1),
        "model_file_mb": round(model.size / 1e6, 1),
        "features_mb": round(features.nbytes / 1e6, 2),
    }


def format_bench(r: dict) -> str:
    lines = [
        f"model             {r['model']} ({r['n_threads']} threads, gpu offload {r['gpu_offload']})",
        f"docs              {r['n_docs']} from {r['task']} ({r['mean_tokens_per_doc']} tokens/doc)",
    ]
    for c in r["requests"]:
        lines.append(f"--layer {c['request']:9} {c['ratio']}x llama.cpp's embedding mode: {c['pipeline_tokens_per_second']} "
                     f"vs {c['llama_tokens_per_second']} tok/s ({c['pooling']} pooling; same {c['batches']} batches x "
                     f"{c['rounds']}, interleaved; median per batch {c['median_batch_ratio']}x; graph {c['graph']})")
        lines.append(f"{'':17} {c['ratio_vs_packed']}x llama.cpp packing the same docs into {c['packed_batches']} "
                     f"batches: {c['llama_packed_tokens_per_second']} tok/s")
    lines += [
        f"head training     {r['head_training_seconds']}{' s' if isinstance(r['head_training_seconds'], float) else ''} "
        f"(3 seeds x (2 ceilings + 3 losses))",
        f"peak memory       {r['peak_memory_mb']} MB (model file {r['model_file_mb']} MB, features {r['features_mb']} MB)",
    ]
    return "\n".join(lines)


def warm_run_seconds(methods: str | None = None, extra: list[str] | None = None, repeats: int = 3) -> dict:
    """Wall times of a warm `w2s-gguf run` (features cached), imports included: the command runs once to fill the
    cache, then `repeats` more times, each timed in a fresh process. Also the docs each run embedded per
    model (from its results.json): the first run's ("filled"), then zeros, or a timed run was not warm."""
    import subprocess

    from ..results import load_results

    with tempfile.TemporaryDirectory(prefix="w2s-bench-") as tmp:
        cmd = [sys.executable, "-m", "w2s_gguf.cli", "run", "--no-progress", "--out", tmp, *(extra or [])]
        if methods:
            cmd += ["--methods", methods]
        subprocess.run(cmd, check=True, capture_output=True)
        filled = {name: m.n_computed for name, m in load_results(tmp).models.items()}
        times, computed = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(round(time.perf_counter() - start, 2))
            computed.append({name: m.n_computed for name, m in load_results(tmp).models.items()})
        return {"seconds": times, "median": float(np.median(times)), "filled": filled, "computed": computed}


def warm_runs() -> dict[str, dict]:
    """The warm-run figures the docs quote: the default run, with the scikit-learn check, with every method."""
    return {"default run (3 losses, 5 seeds)": warm_run_seconds(),
            "with --sklearn-check": warm_run_seconds(extra=["--sklearn-check"]),
            "with --methods all": warm_run_seconds("all")}


def format_warm_runs(runs: dict[str, dict]) -> str:
    return "\n".join([f"{name:34} median {r['median']:.2f} s  (runs: {', '.join(map(str, r['seconds']))})"
                      for name, r in runs.items()]
                     + ["(wall time of a `w2s-gguf run` whose features are cached, imports included)"])
