"""The extraction pipeline: features for a list of texts, computing only what the cache lacks.

Texts are tokenized once, sorted by length and decoded one at a time on the
CPU, packed into llama.cpp batches on a GPU (`plan_batches`,
`engine.texts_per_batch`), in a fixed order, so a resumed run computes exactly
the batches an uninterrupted run would have. Every layer request runs through one
engine (`capture.LayerEmbedder`, which computes only the graph the requested
layers need). Finished shards go to the cache (`cache.EmbeddingStore`) as
they are computed.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache import STORE_DTYPES, EmbeddingStore, StoreSettings, embeddings_root, text_key
from .engine import DEFAULT_MAX_TOKENS, POOLINGS, Embedder, batch_tokens, extra_buffers, gpu_offload, texts_per_batch
from ..errors import SettingError, W2SError
from .capture import LayerEmbedder
from .layers import LAST, Layer
from ..models.modelfile import ResolvedModel
from ..common.storage import file_lock
from ..common.testhooks import stop_point

DEFAULT_SHARD_DOCS = 128
__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_SHARD_DOCS", "POOLINGS", "Embedder", "EmbeddingResult", "EmbeddingStore",
           "ExtractionInterrupted", "StoreSettings", "embed_layers", "embed_texts", "plan_batches", "text_key",
           "texts_per_batch"]


def plan_batches(lengths: list[int], budget: int, max_texts: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of at most `budget` tokens and `max_texts` texts, shortest texts first.

    Sorting by length keeps batches dense; the order is a pure function of
    the inputs, so a resumed run plans the remaining batches identically.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        if current and (used + lengths[i] > budget or len(current) == max_texts):
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------- pipeline

@dataclass
class EmbeddingResult:
    features: np.ndarray  # (n_texts, dim) float32, rows in the order of the texts given
    model: ResolvedModel
    settings: StoreSettings
    store_dir: Path
    n_computed: int  # texts computed in this call (0 = everything came from the cache)
    n_tokens: int  # tokens decoded in this call
    n_truncated: int  # texts cut to max_tokens in this call
    seconds: float  # wall time spent computing in this call
    model_loaded: bool
    shards_written: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def layer(self) -> str:
        return self.settings.layer

    def info(self) -> dict:
        return {
            **self.model.info(),
            "dim": self.dim,
            "pooling": self.settings.pooling,
            "max_tokens": self.settings.max_tokens,
            "gpu_offload": self.settings.gpu_offload,
            "cache_dir": str(self.store_dir),
            "n_computed": self.n_computed,
            "n_tokens": self.n_tokens,
            "n_truncated": self.n_truncated,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.n_tokens / self.seconds, 1) if self.seconds > 0 else None,
            "model_loaded": self.model_loaded,
        }


class ExtractionInterrupted(Exception):
    """Raised on Ctrl-C during extraction, after the finished shards are safe on disk."""

    def __init__(self, model: str, done: int, total: int, store_dir: Path):
        super().__init__(f"interrupted while embedding with {model}: {done} of {total} texts are cached in {store_dir}; "
                         f"run the same command again to resume from there")


def embed_texts(
    model: ResolvedModel,
    texts: list[str],
    pooling: str = "last",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    progress: bool = True,
    cache_root: Path | None = None,
    embedder: Embedder | None = None,
    layer: Layer = LAST,
    store_dtype: str = "float32",
    decode: str = "auto",
) -> EmbeddingResult:
    """Features for `texts` with `model` at one layer, computing only what the cache lacks.

    With `embedder` given, its own pooling, max_tokens and offload key the
    cache (the arguments of the same names are ignored), so vectors are never
    stored under settings that did not make them.
    """
    return embed_layers(model, texts, [layer], pooling, max_tokens, n_gpu_layers, n_threads, shard_docs, progress,
                        cache_root, embedder, store_dtype, decode)[layer]


def embed_layers(
    model: ResolvedModel,
    texts: list[str],
    layers: list[Layer],
    pooling: str = "last",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    progress: bool = True,
    cache_root: Path | None = None,
    embedder: Embedder | None = None,
    store_dtype: str = "float32",
    decode: str = "auto",
) -> dict[Layer, EmbeddingResult]:
    """Features of several layers (resolved: block indices and/or LAST), all from one forward pass per batch.

    Each layer has its own cache folder; a doc is computed when any requested
    layer lacks it, and each layer's store receives only the docs it lacks.
    `decode` (engine.texts_per_batch): each text alone, or packed with others, which keys the stores.
    """
    import llama_cpp

    if store_dtype not in STORE_DTYPES:
        raise SettingError("store_dtype", f"must be float32 or float16 (got {store_dtype!r})")
    if embedder is not None:
        if embedder.model.sha256 != model.sha256:
            raise ValueError("embedder was loaded from another model file")
        pooling, max_tokens, offload = embedder.pooling, embedder.max_tokens, embedder.gpu_offload
    else:
        offload = gpu_offload(n_gpu_layers)
    per_batch = texts_per_batch(offload, decode)
    extra = embedder.extra_buffers if embedder is not None else extra_buffers(per_batch)
    stores = {layer: EmbeddingStore(StoreSettings(model.sha256, pooling, max_tokens, llama_cpp.__version__, offload,
                                                  batch_tokens(max_tokens, offload), str(layer), store_dtype,
                                                  per_batch, extra), cache_root)
              for layer in dict.fromkeys(layers)}
    keys = [text_key(t) for t in texts]
    for store in stores.values():
        store.refresh()
    stats = dict(n_computed=0, n_tokens=0, n_truncated=0, seconds=0.0, shards_written=0)
    loaded = False
    if any(store.missing(keys) for store in stores.values()):
        with extraction_lock(model, cache_root):
            for store in stores.values():
                store.refresh()  # another run may have finished shards while we waited
            todo = list(dict.fromkeys(k for k in keys if any(k not in store for store in stores.values())))
            if todo:
                by_key = dict(zip(keys, texts))
                owns = embedder is None
                if owns:
                    embedder = LayerEmbedder(model, pooling, max_tokens, list(stores), n_gpu_layers, n_threads,
                                             extra_buffers=extra)
                loaded = owns
                try:
                    _extract(embedder, stores, todo, [by_key[k] for k in todo], per_batch, shard_docs, progress,
                             stats, len(set(keys)))
                finally:
                    if owns:
                        embedder.close()
    return {layer: EmbeddingResult(features=store.gather(keys), model=model, settings=store.settings,
                                   store_dir=store.dir, model_loaded=loaded, problems=store.problems, **stats)
            for layer, store in stores.items()}


def extraction_lock(model: ResolvedModel, cache_root: Path | None = None):
    """One lock per model file, held while extracting (locally or on a cluster): runs that share a
    cache never compute the same doc twice, whichever layers they ask for."""
    return file_lock(embeddings_root(cache_root) / f".{model.sha256[:16]}.lock",
                     waiting=f"waiting for another run that is embedding with {model.name} on this cache")


def _extract(embedder: Embedder, stores: dict[Layer, EmbeddingStore], keys: list[str], texts: list[str],
             per_batch: int | None, shard_docs: int, progress: bool, stats: dict, total_unique: int) -> None:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    tokenized = [embedder.tokenize(t) for t in texts]
    lengths = [len(toks) for toks, _ in tokenized]
    batches = plan_batches(lengths, embedder.batch_tokens, per_batch)
    done_before = total_unique - len(keys)
    # The bar counts tokens, not docs: docs run shortest first, so a doc rate
    # would promise an ETA far too low early on.
    bar = tqdm(total=sum(lengths), unit="tok", unit_scale=True, disable=not progress, dynamic_ncols=True,
               desc=f"embed {embedder.model.name} ({len(keys)} docs" + (f", {done_before} cached)" if done_before else ")"),
               file=sys.stderr)
    layers = list(stores)
    slots = [getattr(embedder, "layers", [LAST]).index(layer) for layer in layers]
    shard_keys: list[str] = []
    shard_vecs: list[np.ndarray] = []
    shard_tokens = 0

    def flush() -> None:
        vectors = np.concatenate(shard_vecs)  # (docs, layers, dim)
        for layer, slot in zip(layers, slots):
            store = stores[layer]
            rows = [i for i, k in enumerate(shard_keys) if k not in store]
            if rows:
                store.add_shard([shard_keys[i] for i in rows], vectors[rows, slot], {"n_tokens": shard_tokens})
        stats["shards_written"] += 1

    try:
        stop_point("shard", 0)  # test hook (common/testhooks.py): the model is loaded, nothing computed yet
        for n_batch, batch in enumerate(batches, 1):
            vectors = embedder.embed_batch([tokenized[i][0] for i in batch])
            if vectors.ndim == 2:  # a plain Embedder (given by the caller): the one layer, LAST
                vectors = vectors[:, None, :]
            if not np.isfinite(vectors).all():
                raise W2SError(f"{embedder.model.name} produced NaN/inf features; try --pooling mean or another quantisation")
            shard_keys += [keys[i] for i in batch]
            shard_vecs.append(vectors)
            n_tok = sum(lengths[i] for i in batch)
            shard_tokens += n_tok
            stats["n_tokens"] += n_tok
            stats["n_truncated"] += sum(tokenized[i][1] for i in batch)
            stats["n_computed"] += len(batch)
            bar.update(n_tok)
            if len(shard_keys) >= shard_docs:
                flush()
                shard_keys, shard_vecs, shard_tokens = [], [], 0
                stop_point("shard", stats["shards_written"])  # test hook: this shard is on disk
            stop_point("batch", n_batch, f" ({len(shard_keys)} docs not yet in a shard)")  # test hook
        if shard_keys:
            flush()
            stop_point("shard", stats["shards_written"])
    except KeyboardInterrupt:
        bar.close()
        raise ExtractionInterrupted(embedder.model.name, done_before + stats["n_computed"] - len(shard_keys),
                                    total_unique, stores[layers[0]].dir) from None
    finally:
        stats["seconds"] += time.perf_counter() - start
        bar.close()
