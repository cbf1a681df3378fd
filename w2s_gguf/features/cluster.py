"""Feature extraction on a Ray cluster, into the same resumable cache as local extraction.

The driver (the machine running w2s-gguf, which holds the cache) tokenizes
and plans shards exactly as `embed_texts` does: the same texts still missing
from the store, the same `plan_batches` order, the same batches per shard. Ray
actors (one per GPU, or per `n_threads` CPUs of a node, each loading the model
once) embed whole shards and send back float32 arrays; the driver checks them
and writes them with `EmbeddingStore.add_shard` under the store lock.

Shards are written in plan order, whatever order they finish in: the store
then always holds a prefix of the plan, the missing texts are the plan's
suffix, and re-planning a suffix that starts at a shard boundary gives the
same shards (the greedy packing restarts exactly where it left off). So a run
resumed after Ctrl-C, a killed driver or a dead worker, on Ray or locally,
computes exactly the batches an uninterrupted run would have, and the
features are bit-identical to a local run with the same settings.

Ray is imported only inside these functions: the base install never needs it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .capture import LayerEmbedder
from .pipeline import (DEFAULT_MAX_TOKENS, DEFAULT_SHARD_DOCS, Embedder, EmbeddingResult, EmbeddingStore,
                       ExtractionInterrupted, StoreSettings, batch_tokens, extraction_lock, plan_batches, text_key,
                       texts_per_batch)
from ..common.llama_logs import quiet_llama_logs
from .engine import extra_buffers
from .ray_schedule import ModelWorker, check_worker, connect, import_ray, place_actors, run_in_plan_order
from ..errors import W2SError
from ..models import ModelEntry, ResolvedModel
from .layers import LAST


def plan_shards(lengths: list[int], budget: int, shard_docs: int, max_texts: int | None = None) -> list[list[list[int]]]:
    """Batches of `plan_batches`, grouped into shards as local extraction writes them:
    a shard is closed after the batch that brings it to `shard_docs` docs."""
    shards: list[list[list[int]]] = []
    current: list[list[int]] = []
    for batch in plan_batches(lengths, budget, max_texts):
        current.append(batch)
        if sum(map(len, current)) >= shard_docs:
            shards.append(current)
            current = []
    if current:
        shards.append(current)
    return shards


class _VocabTokenizer:
    """The model's vocabulary without its weights: the driver tokenizes exactly as Embedder does."""

    tokenize = Embedder.tokenize  # uses only self.llm.tokenize, self.llm.token_bos and self.max_tokens

    def __init__(self, model: ResolvedModel, max_tokens: int):
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        with quiet_llama_logs():
            self.llm = LlamaModel(path_model=str(model.path), params=params, verbose=False)
        self.max_tokens = max_tokens


class EmbedWorker(ModelWorker):
    """A Ray actor that embeds whole shards with the local engine."""

    def __init__(self, spec: ModelEntry | str, pooling: str, max_tokens: int, n_gpu_layers: int, n_threads: int | None,
                 extra_buffers: bool = False):
        self.embedder = self._start(spec, lambda model: LayerEmbedder(model, pooling, max_tokens, [LAST],
                                                                      n_gpu_layers, n_threads,
                                                                      extra_buffers=extra_buffers))

    def embed(self, batches: list[list[list[int]]]) -> dict:
        self.ready()
        vectors = np.concatenate([self.embedder.embed_batch(batch)[:, 0] for batch in batches])
        return {**self.meta, "vectors": vectors}


def embed_texts_ray(
    model: ResolvedModel,
    texts: list[str],
    pooling: str = "last",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    address: str = "auto",
    progress: bool = True,
    cache_root: Path | None = None,
    on_shard: Callable[[dict], None] | None = None,
    decode: str = "auto",
) -> EmbeddingResult:
    """Like `embed_texts`, but the missing shards are embedded by actors on the Ray cluster at `address`.

    `on_shard(info)` is called in the driver after each shard is written (info: shard, docs, node, pid).
    """
    ray = import_ray()  # first: without Ray nothing else matters
    import llama_cpp

    owns_connection = connect(ray, address)
    try:
        use_gpus = n_gpu_layers != 0 and ray.cluster_resources().get("GPU", 0) >= 1
        # Workers must run this llama-cpp-python version (checked on every result), so the
        # store folder is the one a local run with the same build and device would use.
        per_batch = texts_per_batch(use_gpus, decode)
        settings = StoreSettings(model.sha256, pooling, max_tokens, llama_cpp.__version__, use_gpus,
                                 batch_tokens(max_tokens, use_gpus), texts_per_batch=per_batch,
                                 extra_buffers=extra_buffers(per_batch))
        store = EmbeddingStore(settings, cache_root)
        keys = [text_key(t) for t in texts]
        stats = dict(n_computed=0, n_tokens=0, n_truncated=0, seconds=0.0, shards_written=0)
        problems: list[str] = []
        store.refresh()
        if store.missing(keys):
            with extraction_lock(model, cache_root):
                store.refresh()  # another run may have finished shards while we waited
                todo = list(dict.fromkeys(store.missing(keys)))
                if todo:
                    by_key = dict(zip(keys, texts))
                    spec = model.entry if model.entry is not None else str(model.path)  # workers fetch it themselves
                    actors, group = place_actors(ray, EmbedWorker, (spec, pooling, max_tokens,
                                                                    n_gpu_layers if use_gpus else 0), n_threads, use_gpus,
                                                 extra_buffers=settings.extra_buffers)
                    try:
                        _extract(ray, actors, model, store, todo, [by_key[k] for k in todo], shard_docs,
                                 progress, stats, problems, len(set(keys)), on_shard)
                    finally:
                        for actor in actors:
                            ray.kill(actor)
                        ray.util.remove_placement_group(group)
        return EmbeddingResult(features=store.gather(keys), model=model, settings=settings, store_dir=store.dir,
                               model_loaded=stats["n_computed"] > 0, problems=store.problems + problems, **stats)
    finally:
        if owns_connection:
            ray.shutdown()


def _extract(ray, actors: list, model: ResolvedModel, store: EmbeddingStore, keys: list[str], texts: list[str],
             shard_docs: int, progress: bool, stats: dict, problems: list[str], total_unique: int,
             on_shard: Callable[[dict], None] | None) -> None:
    from tqdm.auto import tqdm

    tokenizer = _VocabTokenizer(model, store.settings.max_tokens)  # while the actors load the model
    tokenized = [tokenizer.tokenize(t) for t in texts]
    lengths = [len(toks) for toks, _ in tokenized]
    shards = plan_shards(lengths, store.settings.batch_tokens, shard_docs, store.settings.texts_per_batch)
    shard_docs_ = [[i for batch in shard for i in batch] for shard in shards]
    done_before = total_unique - len(keys)
    bar = tqdm(total=len(shards), unit="shard", disable=not progress, desc=f"ray {model.name}",
               dynamic_ncols=True, file=sys.stderr)
    start = time.perf_counter()

    def submit(actor, index: int):
        return actor.embed.remote([[tokenized[i][0] for i in batch] for batch in shards[index]])

    def write(index: int, out: dict) -> None:
        docs = shard_docs_[index]
        n_tok = sum(lengths[i] for i in docs)
        store.add_shard([keys[i] for i in docs], out["vectors"], {"n_tokens": n_tok, "worker": out["node"]})
        stats["n_tokens"] += n_tok
        stats["n_truncated"] += sum(tokenized[i][1] for i in docs)
        stats["n_computed"] += len(docs)
        stats["shards_written"] += 1
        bar.update(1)
        bar.set_postfix_str(f"{stats['n_tokens'] / max(time.perf_counter() - start, 1e-9):.0f} tok/s", refresh=False)
        if on_shard is not None:
            on_shard({"shard": index, "docs": len(docs), "node": out["node"], "pid": out["pid"]})

    try:
        run_in_plan_order(ray, actors, len(shards), submit, lambda i, out: _check(out, model, store, len(shard_docs_[i])),
                          write, "embedding", store.dir, problems)
    except KeyboardInterrupt:
        bar.close()
        raise ExtractionInterrupted(model.name, done_before + stats["n_computed"], total_unique, store.dir) from None
    finally:
        stats["seconds"] += time.perf_counter() - start
        bar.close()


def _check(out: dict, model: ResolvedModel, store: EmbeddingStore, n_docs: int) -> None:
    """Refuse a result that a local run with the driver's model and settings would not have produced."""
    check_worker(out, model, store.settings)
    vectors = out["vectors"]
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != n_docs:
        raise W2SError(f"Ray worker on {out['node']} returned {vectors.dtype} {vectors.shape} for {n_docs} docs; "
                       f"install the same w2s-gguf version on every node")
    if not np.isfinite(vectors).all():
        raise W2SError(f"{model.name} produced NaN/inf features; try --pooling mean or another quantisation")
