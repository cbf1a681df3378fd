"""Frozen features from GGUF models through llama.cpp, and their resumable cache.

`Embedder` is a thin wrapper over llama-cpp-python: it tokenizes, cuts long
texts from the left (last-token pooling needs the end), packs several texts
into one llama.cpp batch and reads the pooled vector of each sequence.

`EmbeddingStore` keeps vectors on disk in shards. Each shard is a `.npy`
file plus a small JSON manifest entry naming the texts it holds (by sha256)
and the sha256 of the `.npy` bytes; both are written atomically, the
manifest entry last. A killed run leaves only finished shards, which the next
run verifies and reuses. A shard whose checksum does not match is reported,
deleted and recomputed.

`embed_texts` ties them together: it computes only what the store lacks,
in a fixed order (sorted by token length, batched greedily), so a resumed
run computes exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import W2SError
from .models import ResolvedModel
from .storage import atomic_save_npy, atomic_write_json, cache_home, file_lock, load_npy, sha256_bytes, sha256_file

POOLINGS = ("last", "mean")
STORE_FORMAT = 1
DEFAULT_MAX_TOKENS = 512
DEFAULT_SHARD_DOCS = 128
# Tokens per llama.cpp batch. Several sequences in one batch share one KV
# cache, so every token's attention spans the whole batch; 256 ran 5-7%
# faster than 512 here (2 cores, SmolLM2, short and long docs), and larger
# batches slower still (SPEC.md section 3). A longer text gets a batch alone.
BATCH_TOKENS = 256


def batch_tokens(max_tokens: int) -> int:
    return min(BATCH_TOKENS, max_tokens)


def text_key(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def llama_cpp_version() -> str:
    import llama_cpp

    return llama_cpp.__version__


# ---------------------------------------------------------------- engine

class Embedder:
    """One loaded GGUF model in embedding mode (one load per model per run)."""

    def __init__(self, model: ResolvedModel, pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                 n_gpu_layers: int = -1, n_threads: int | None = None):
        if pooling not in POOLINGS:
            raise W2SError(f"unknown pooling {pooling!r}; choose last or mean")
        if max_tokens < 8:
            raise W2SError(f"--max-tokens must be at least 8 (got {max_tokens})")
        import llama_cpp

        pooling_type = {"last": llama_cpp.LLAMA_POOLING_TYPE_LAST, "mean": llama_cpp.LLAMA_POOLING_TYPE_MEAN}[pooling]
        if n_threads is None:
            n_threads = default_threads()
        self.model = model
        self.pooling = pooling
        self.max_tokens = max_tokens
        try:
            with quiet_llama_logs():
                # n_ctx = n_batch = n_ubatch: a batch is decoded in one pass, and one text fits in it.
                self.llm = llama_cpp.Llama(
                    model_path=str(model.path), embedding=True, pooling_type=pooling_type,
                    n_ctx=max_tokens, n_batch=max_tokens, n_ubatch=max_tokens,
                    n_gpu_layers=n_gpu_layers, n_threads=n_threads, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise W2SError(
                f"llama.cpp could not load {model.path} (architecture {model.architecture!r}: {exc}); "
                f"the file may be damaged or need a newer llama-cpp-python (have {llama_cpp.__version__})"
            ) from None
        self.batch_tokens = batch_tokens(max_tokens)
        self.dim = int(self.llm.n_embd())
        self.n_threads = int(self.llm.context_params.n_threads)
        self.gpu_offload = bool(llama_cpp.llama_supports_gpu_offload()) and n_gpu_layers != 0

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Tokens of `text` cut to max_tokens from the left, keeping BOS; and whether it was cut."""
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) <= self.max_tokens:
            return tokens, False
        bos = self.llm.token_bos()
        if tokens and tokens[0] == bos:
            return [bos] + tokens[-(self.max_tokens - 1):], True
        return tokens[-self.max_tokens:], True

    def embed_batch(self, token_lists: list[list[int]]) -> np.ndarray:
        """Pooled vectors of sequences decoded together in one llama.cpp batch."""
        import llama_cpp

        if sum(map(len, token_lists)) > self.max_tokens:
            raise ValueError("batch exceeds the token budget")
        llm = self.llm
        llm._batch.reset()
        for seq_id, tokens in enumerate(token_lists):
            # Every token is an output in embedding mode (llama.cpp would force it anyway).
            llm._batch.add_sequence(tokens, seq_id, True)
        llm._ctx.kv_cache_clear()
        try:
            llm._ctx.decode(llm._batch)
        except RuntimeError as exc:  # llama_decode's return code, e.g. out of memory on the GPU
            raise W2SError(f"llama.cpp failed to decode a batch of {self.model.name} ({exc}); "
                           f"try a smaller --max-tokens or fewer --n-gpu-layers") from None
        out = np.empty((len(token_lists), self.dim), dtype=np.float32)
        for seq_id in range(len(token_lists)):
            ptr = llama_cpp.llama_get_embeddings_seq(llm._ctx.ctx, seq_id)
            out[seq_id] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
        llm._batch.reset()
        return out

    def engine_tokens_per_second(self, n_tokens: int | None = None, repeats: int = 3) -> float:
        """llama.cpp's own throughput on one sequence of `n_tokens` (the benchmark's yardstick)."""
        n = min(n_tokens or self.max_tokens, self.max_tokens)
        vocab = int(self.llm.n_vocab())
        rng = np.random.default_rng(0)
        tokens = [self.llm.token_bos()] + rng.integers(100, min(vocab, 30000), n - 1).tolist()
        self.embed_batch([tokens])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.embed_batch([tokens])
            times.append(time.perf_counter() - start)
        return n / float(np.median(times))  # the median, like a typical batch of the pipeline (not the best)

    def close(self) -> None:
        self.llm.close()


def default_threads() -> int:
    """All cores on small machines; about the physical cores on big ones (SMT does not help llama.cpp)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n if n <= 4 else max(4, n // 2)


@contextlib.contextmanager
def quiet_llama_logs():
    """Silence llama.cpp's load logs: its Python log callback (which prints even errors,
    already turned into our one-line W2SError) and C code writing to fd 2 directly."""
    import logging

    logger = logging.getLogger("llama-cpp-python")
    level = max(logger.level, logging.ERROR)  # afterwards: errors only, as Llama(verbose=False) sets it
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with _stderr_to_devnull():
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. captured): nothing to redirect
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def plan_batches(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices grouped into batches of at most `budget` tokens, shortest texts first.

    Sorting by length keeps batches dense; the order is a pure function of
    the inputs, so a resumed run plans the remaining batches identically.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        if current and used + lengths[i] > budget:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        batches.append(current)
    return batches


# ---------------------------------------------------------------- store

@dataclass
class StoreSettings:
    """Everything that changes the vectors; it names the store folder."""

    model_sha256: str
    pooling: str
    max_tokens: int
    llama_cpp_version: str
    gpu_offload: bool
    batch_tokens: int = BATCH_TOKENS  # batch composition moves vectors slightly (cosine >= 0.999)

    def key(self) -> str:
        payload = json.dumps({**self.__dict__, "format": STORE_FORMAT}, sort_keys=True)
        return f"{self.model_sha256[:16]}-{self.pooling}-{self.max_tokens}-{sha256_bytes(payload.encode())[:12]}"


class EmbeddingStore:
    """Vectors keyed by text sha256, in checksummed shards under one folder."""

    def __init__(self, settings: StoreSettings, root: Path | None = None):
        self.settings = settings
        self.dir = (root or cache_home() / "embeddings") / settings.key()
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "settings.json"
        if not info.exists():
            atomic_write_json(info, settings.__dict__)
        self._index: dict[str, tuple[str, int]] = {}
        self._shards: dict[str, np.ndarray] = {}
        self.problems: list[str] = []

    def lock(self):
        """Held while extracting, so two runs on one cache never compute the same shard twice."""
        return file_lock(self.dir / ".lock")

    def refresh(self) -> None:
        """Read and verify every finished shard; delete (and report) any that fail."""
        self._index.clear()
        self._shards.clear()
        for entry_path in sorted(self.dir.glob("shard-*.json")):
            npy = entry_path.with_suffix(".npy")
            try:
                entry = json.loads(entry_path.read_text())
                ok = npy.is_file() and sha256_file(npy) == entry["sha256"]
                vectors = load_npy(npy) if ok else None
                ok = ok and vectors.shape == (len(entry["keys"]), entry["dim"]) and vectors.dtype == np.float32
            except (ValueError, KeyError, OSError):
                ok = False
            if not ok:
                self.problems.append(f"cache shard {npy.name} in {self.dir} is damaged (checksum or manifest mismatch); it was deleted and will be recomputed")
                for path in (entry_path, npy):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                continue
            self._shards[npy.name] = vectors
            for row, key in enumerate(entry["keys"]):
                self._index.setdefault(key, (npy.name, row))

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in self._index]

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def add_shard(self, keys: list[str], vectors: np.ndarray, stats: dict) -> None:
        name = f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}"  # sorts in the order written
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        sha = atomic_save_npy(self.dir / f"{name}.npy", vectors)
        # The manifest entry is written last: a shard without one does not exist.
        atomic_write_json(self.dir / f"{name}.json",
                          {"keys": keys, "sha256": sha, "dim": int(vectors.shape[1]), **stats})
        self._shards[f"{name}.npy"] = vectors
        for row, key in enumerate(keys):
            self._index.setdefault(key, (f"{name}.npy", row))

    def gather(self, keys: list[str]) -> np.ndarray:
        """Vectors for `keys` in that order, as one float32 array."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        first = self._shards[self._index[keys[0]][0]]
        out = np.empty((len(keys), first.shape[1]), dtype=np.float32)
        for i, key in enumerate(keys):
            shard, row = self._index[key]
            out[i] = self._shards[shard][row]
        return out

    def count_shards(self) -> int:
        return len(self._shards)


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
) -> EmbeddingResult:
    """Features for `texts` with `model`, computing only what the cache lacks."""
    import llama_cpp

    offload = bool(llama_cpp.llama_supports_gpu_offload()) and n_gpu_layers != 0
    settings = StoreSettings(model.sha256, pooling, max_tokens, llama_cpp.__version__, offload,
                             batch_tokens(max_tokens))
    store = EmbeddingStore(settings, cache_root)
    keys = [text_key(t) for t in texts]
    store.refresh()
    stats = dict(n_computed=0, n_tokens=0, n_truncated=0, seconds=0.0, shards_written=0)
    loaded = False
    if store.missing(keys):
        with store.lock():
            store.refresh()  # another run may have finished shards while we waited
            todo = list(dict.fromkeys(store.missing(keys)))
            if todo:
                by_key = dict(zip(keys, texts))
                owns = embedder is None
                embedder = embedder or Embedder(model, pooling, max_tokens, n_gpu_layers, n_threads)
                loaded = owns
                try:
                    _extract(embedder, store, todo, [by_key[k] for k in todo], shard_docs, progress, stats, len(set(keys)))
                finally:
                    if owns:
                        embedder.close()
    return EmbeddingResult(
        features=store.gather(keys), model=model, settings=settings, store_dir=store.dir,
        model_loaded=loaded, problems=store.problems, **stats,
    )


def _extract(embedder: Embedder, store: EmbeddingStore, keys: list[str], texts: list[str],
             shard_docs: int, progress: bool, stats: dict, total_unique: int) -> None:
    from tqdm.auto import tqdm

    start = time.perf_counter()
    tokenized = [embedder.tokenize(t) for t in texts]
    lengths = [len(toks) for toks, _ in tokenized]
    batches = plan_batches(lengths, embedder.batch_tokens)
    done_before = total_unique - len(keys)
    bar = tqdm(total=total_unique, initial=done_before, unit="doc", disable=not progress,
               desc=f"embed {embedder.model.name}", dynamic_ncols=True, file=sys.stderr)
    shard_keys: list[str] = []
    shard_vecs: list[np.ndarray] = []
    shard_tokens = 0
    try:
        for batch in batches:
            vectors = embedder.embed_batch([tokenized[i][0] for i in batch])
            if not np.isfinite(vectors).all():
                raise W2SError(f"{embedder.model.name} produced NaN/inf features; try --pooling mean or another quantisation")
            shard_keys += [keys[i] for i in batch]
            shard_vecs.append(vectors)
            n_tok = sum(lengths[i] for i in batch)
            shard_tokens += n_tok
            stats["n_tokens"] += n_tok
            stats["n_truncated"] += sum(tokenized[i][1] for i in batch)
            stats["n_computed"] += len(batch)
            elapsed = time.perf_counter() - start
            bar.update(len(batch))
            bar.set_postfix_str(f"{stats['n_tokens'] / max(elapsed, 1e-9):.0f} tok/s", refresh=False)
            if len(shard_keys) >= shard_docs:
                store.add_shard(shard_keys, np.concatenate(shard_vecs), {"n_tokens": shard_tokens})
                stats["shards_written"] += 1
                shard_keys, shard_vecs, shard_tokens = [], [], 0
        if shard_keys:
            store.add_shard(shard_keys, np.concatenate(shard_vecs), {"n_tokens": shard_tokens})
            stats["shards_written"] += 1
    except KeyboardInterrupt:
        bar.close()
        raise ExtractionInterrupted(embedder.model.name, done_before + stats["n_computed"] - len(shard_keys),
                                    total_unique, store.dir) from None
    finally:
        stats["seconds"] += time.perf_counter() - start
        bar.close()
