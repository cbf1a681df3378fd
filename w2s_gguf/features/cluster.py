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

import re
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
from .ray_schedule import ModelWorker, in_group, reserve
from ..errors import W2SError
from ..models import ModelEntry, ResolvedModel
from .layers import LAST

MAX_RESTARTS = 3  # a dead actor process is restarted this often (model reloaded) ...
MAX_TASK_RETRIES = 3  # ... and its unfinished shards are sent again this often
IN_FLIGHT = 2  # shards queued per actor, so it never waits for the driver between shards
LOOKAHEAD = 8  # shards sent ahead of the oldest unwritten one, per actor (bounds what a straggler holds back)
INSTALL_HINT = "install it with pip install 'w2s-gguf[ray]'"


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

    def __init__(self, spec: ModelEntry | str, pooling: str, max_tokens: int, n_gpu_layers: int, n_threads: int | None):
        self.embedder = self._start(spec, lambda model: LayerEmbedder(model, pooling, max_tokens, [LAST],
                                                                      n_gpu_layers, n_threads))

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
) -> EmbeddingResult:
    """Like `embed_texts`, but the missing shards are embedded by actors on the Ray cluster at `address`.

    `on_shard(info)` is called in the driver after each shard is written (info: shard, docs, node, pid).
    """
    ray = _import_ray()  # first: without Ray nothing else matters
    import llama_cpp

    owns_connection = _connect(ray, address)
    try:
        use_gpus = n_gpu_layers != 0 and ray.cluster_resources().get("GPU", 0) >= 1
        # Workers must run this llama-cpp-python version (checked on every result), so the
        # store folder is the one a local run with the same build and device would use.
        settings = StoreSettings(model.sha256, pooling, max_tokens, llama_cpp.__version__, use_gpus,
                                 batch_tokens(max_tokens, use_gpus), texts_per_batch=texts_per_batch(use_gpus))
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
                                                                    n_gpu_layers if use_gpus else 0), n_threads, use_gpus)
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


def _import_ray():
    try:
        import ray
    except ImportError:
        raise W2SError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def _connect(ray, address: str) -> bool:
    """Join the cluster; True when this call made the connection (and so closes it)."""
    if ray.is_initialized():
        return False
    if not (address == "auto" or address.startswith("ray://") or re.fullmatch(r"[\w.\-\[\]:]+:\d+", address)):
        raise W2SError(f"Ray address {address!r} is not auto, ray://HOST:PORT or HOST:PORT; pass the head node's address")
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise W2SError(f"cannot join the Ray cluster at {address} ({first}); start one with `ray start --head` "
                       f"or check the address") from None
    return True


def place_actors(ray, worker: type, args: tuple, n_threads: int | None, use_gpus: bool) -> tuple[list, object]:
    """One `worker(*args, threads)` actor per GPU; on CPUs, one per `n_threads` cores of each node.

    Their resources are reserved first (ray_schedule.reserve): what the cluster cannot hold, or cannot
    free in time, fails with one line instead of waiting forever. Returns the actors and their group.
    """
    remote = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(worker)
    workers: list[tuple[dict, int | None, str | None]] = []  # (resources, threads, node) per actor
    if use_gpus:
        workers = [({"GPU": 1.0, "CPU": 1.0}, n_threads, None)] * int(ray.cluster_resources()["GPU"])
    for node in [] if use_gpus else ray.nodes():
        cpus = int(node["Resources"].get("CPU", 0)) if node["Alive"] else 0
        threads = min(n_threads or (cpus if cpus <= 4 else max(4, cpus // 2)), cpus)
        workers += [({"CPU": float(threads)}, threads, node["NodeID"])] * (cpus // threads if cpus else 0)
    if not workers:
        raise W2SError("the Ray cluster has no CPUs or GPUs to run on; start workers with `ray start --address HEAD:PORT`")
    group = reserve(ray, [w[0] for w in workers], [w[2] for w in workers], "GPU worker" if use_gpus else "CPU worker")
    return [remote.options(num_cpus=res["CPU"], num_gpus=res.get("GPU", 0), scheduling_strategy=in_group(group, i))
            .remote(*args, threads) for i, (res, threads, _) in enumerate(workers)], group


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
    pending: dict = {}  # ObjectRef -> (shard index, actor index)
    finished: dict[int, dict] = {}
    load = [0] * len(actors)
    node = ["a Ray worker (starting)"] * len(actors)
    pid: list[int | None] = [None] * len(actors)
    sent = written = 0
    start = time.perf_counter()
    try:
        while written < len(shards):
            while sent < len(shards) and sent < written + LOOKAHEAD * len(actors) and min(load) < IN_FLIGHT:
                j = load.index(min(load))
                batches = [[tokenized[i][0] for i in batch] for batch in shards[sent]]
                pending[actors[j].embed.remote(batches)] = (sent, j)
                load[j] += 1
                sent += 1
            [ref], _ = ray.wait(list(pending), num_returns=1)
            index, j = pending.pop(ref)
            load[j] -= 1
            out = fetch_shard(ray, ref, f"worker on {node[j]}", "embedding", written, store.dir)
            node[j] = out["node"]
            if pid[j] is not None and out["pid"] != pid[j]:
                problems.append(f"Ray worker on {out['node']} was restarted (pid {pid[j]} -> {out['pid']}); "
                                f"its unfinished shards were computed again")
            pid[j] = out["pid"]
            _check(out, model, store, len(shard_docs_[index]))
            finished[index] = out
            while written in finished:  # write in plan order: the store always holds a prefix of the plan
                out = finished.pop(written)
                docs = shard_docs_[written]
                n_tok = sum(lengths[i] for i in docs)
                store.add_shard([keys[i] for i in docs], out["vectors"], {"n_tokens": n_tok, "worker": out["node"]})
                stats["n_tokens"] += n_tok
                stats["n_truncated"] += sum(tokenized[i][1] for i in docs)
                stats["n_computed"] += len(docs)
                stats["shards_written"] += 1
                written += 1
                bar.update(1)
                bar.set_postfix_str(f"{stats['n_tokens'] / max(time.perf_counter() - start, 1e-9):.0f} tok/s",
                                    refresh=False)
                if on_shard is not None:
                    on_shard({"shard": written - 1, "docs": len(docs), "node": out["node"], "pid": out["pid"]})
    except KeyboardInterrupt:
        bar.close()
        raise ExtractionInterrupted(model.name, done_before + stats["n_computed"], total_unique, store.dir) from None
    finally:
        stats["seconds"] += time.perf_counter() - start
        bar.close()


def fetch_shard(ray, ref, worker: str, doing: str, written: int, store_dir: Path) -> dict:
    """One shard's result from a Ray worker, or a one-line W2SError (finished shards stay cached).
    `worker` names it in the message ("worker on NODE"), `doing` says what it was at ("embedding")."""
    from ray.exceptions import RayActorError, RayError, RayTaskError

    resume = f"{written} shard(s) of this run are cached in {store_dir}; run the same command again to resume"
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, W2SError):
            raise W2SError(str(exc.cause.args[0] if exc.cause.args else exc.cause)) from None
        raise W2SError(f"Ray {worker} failed while {doing} ({type(exc.cause).__name__}: {exc.cause}); {resume}") from None
    except RayActorError as exc:
        first = (str(exc).strip().splitlines() or ["no reason given"])[0]
        raise W2SError(f"Ray {worker} died after {MAX_RESTARTS} restarts ({first}); {resume}") from None
    except RayError as exc:
        raise W2SError(f"Ray failed while {doing} on its {worker} ({type(exc).__name__}); {resume}") from None


def _check(out: dict, model: ResolvedModel, store: EmbeddingStore, n_docs: int) -> None:
    """Refuse a result that a local run with the driver's model and settings would not have produced."""
    settings = store.settings
    if out["sha256"] != model.sha256:
        raise W2SError(f"Ray worker on {out['node']} has a different {model.name} file (sha256 {out['sha256'][:16]}..., "
                       f"driver {model.sha256[:16]}...); delete its cached copy so it fetches the same file")
    if out["llama_cpp"] != settings.llama_cpp_version:
        raise W2SError(f"Ray worker on {out['node']} runs llama-cpp-python {out['llama_cpp']}, the driver "
                       f"{settings.llama_cpp_version}; install the same version on every node")
    if out["gpu_offload"] != settings.gpu_offload:
        raise W2SError(f"Ray worker on {out['node']} has a GPU but its llama-cpp-python cannot offload; install the "
                       f"GPU build there (see README), or pass --n-gpu-layers 0 to run on CPUs")
    vectors = out["vectors"]
    if vectors.dtype != np.float32 or vectors.ndim != 2 or vectors.shape[0] != n_docs:
        raise W2SError(f"Ray worker on {out['node']} returned {vectors.dtype} {vectors.shape} for {n_docs} docs; "
                       f"install the same w2s-gguf version on every node")
    if not np.isfinite(vectors).all():
        raise W2SError(f"{model.name} produced NaN/inf features; try --pooling mean or another quantisation")
