"""Prompt scoring on a Ray cluster, into the same resumable score cache as local scoring.

The driver tokenizes and plans exactly as `score_groups` does (`plan_scoring`: the same shards, the
same batches); actors (one per GPU, or per `n_threads` CPUs of a node, each loading the model once)
score whole shards, each shard with its group's prefix, and send back (docs, 2) log-probs. The driver
checks them and writes them in plan order under the store's lock, so a resumed run, on Ray or locally,
computes the same batches, and the scores equal a local run's with the same settings.

Ray is imported only inside these functions: the base install never needs it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import W2SError
from ..models import ModelEntry, ResolvedModel
from .cluster import IN_FLIGHT, LOOKAHEAD, _connect, _import_ray, fetch_shard, place_actors
from .engine import DEFAULT_MAX_TOKENS
from .pipeline import DEFAULT_SHARD_DOCS
from .prompt_scores import ScoreResult, ScoringInterrupted, plan_scoring, scoring_lock, write_shard
from .prompts import PromptGroup, PromptStyle
from .ray_schedule import ModelWorker
from .scoring import Scorer


class ScoreWorker(ModelWorker):
    """A Ray actor that scores whole shards, each with its group's prefix."""

    def __init__(self, spec: ModelEntry | str, n_ctx: int, n_batch: int, n_gpu_layers: int, n_threads: int | None):
        self.scorer = self._start(spec, lambda model: Scorer(model, n_ctx, n_batch, n_gpu_layers, n_threads))

    def score(self, prefix: list[int], batches: list[list[list[int]]], label_tokens: tuple[int, int]) -> dict:
        self.ready()
        decoded = self.scorer.decode_prefix(prefix)
        log_probs = np.concatenate([self.scorer.score_docs(len(prefix), batch, label_tokens) for batch in batches])
        return {**self.meta, "log_probs": log_probs, "prefix_tokens": len(prefix) if decoded else 0}


def score_groups_ray(
    model: ResolvedModel,
    style: PromptStyle,
    groups: list[PromptGroup],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    address: str = "auto",
    progress: bool = True,
    cache_root: Path | None = None,
    on_shard: Callable[[dict], None] | None = None,
) -> ScoreResult:
    """Like `score_groups`, but the missing shards are scored by actors on the Ray cluster at `address`."""
    ray = _import_ray()
    owns_connection = _connect(ray, address)
    try:
        use_gpus = n_gpu_layers != 0 and ray.cluster_resources().get("GPU", 0) >= 1
        plan = plan_scoring(model, style, groups, max_tokens, use_gpus, shard_docs, cache_root)
        plan.store.refresh()
        if plan.missing_work():
            with scoring_lock(plan):
                plan.store.refresh()  # another run may have finished shards while we waited
                todo = plan.missing_work()
                if todo:
                    spec = model.entry if model.entry is not None else str(model.path)
                    actors, group = place_actors(ray, ScoreWorker, (spec, plan.n_ctx, plan.n_batch,
                                                                    n_gpu_layers if use_gpus else 0), n_threads, use_gpus)
                    plan.result.model_loaded = True
                    try:
                        _run(ray, actors, plan, todo, progress, on_shard)
                    finally:
                        for actor in actors:
                            ray.kill(actor)
                        ray.util.remove_placement_group(group)
        return plan.finish()
    finally:
        if owns_connection:
            ray.shutdown()


def _run(ray, actors: list, plan, todo: list, progress: bool, on_shard: Callable[[dict], None] | None) -> None:
    from tqdm.auto import tqdm

    result = plan.result
    bar = tqdm(total=len(todo), unit="shard", disable=not progress, desc=f"ray score {plan.model.name}",
               dynamic_ncols=True, file=sys.stderr)
    pending: dict = {}  # ObjectRef -> (shard index, actor index)
    finished: dict[int, dict] = {}
    load = [0] * len(actors)
    pids: list[int | None] = [None] * len(actors)
    sent = written = 0
    start = time.perf_counter()
    try:
        while written < len(todo):
            while sent < len(todo) and sent < written + LOOKAHEAD * len(actors) and min(load) < IN_FLIGHT:
                j = load.index(min(load))
                g, shard = todo[sent]
                group = plan.tokenized[g]
                batches = [[group.docs[i] for i in batch] for batch in shard]
                pending[actors[j].score.remote(group.prefix, batches, plan.label_tokens)] = (sent, j)
                load[j] += 1
                sent += 1
            [ref], _ = ray.wait(list(pending), num_returns=1)
            index, j = pending.pop(ref)
            load[j] -= 1
            out = fetch_shard(ray, ref, "worker", "scoring", written, plan.store.dir)
            if pids[j] is not None and out["pid"] != pids[j]:
                result.problems.append(f"Ray worker on {out['node']} was restarted (pid {pids[j]} -> {out['pid']}); "
                                       f"its unfinished shards were scored again")
            pids[j] = out["pid"]
            _check(out, plan)
            finished[index] = out
            while written in finished:  # write in plan order: the store always holds a prefix of the plan
                out = finished.pop(written)
                g, shard = todo[written]
                write_shard(plan, g, shard, out["log_probs"], worker=out["node"])
                result.n_prefix_tokens += out["prefix_tokens"]
                written += 1
                bar.update(1)
                if on_shard is not None:
                    on_shard({"group": g, "shard": written - 1, "docs": sum(map(len, shard)), "node": out["node"],
                              "pid": out["pid"]})
    except KeyboardInterrupt:
        bar.close()
        raise ScoringInterrupted(plan.model.name, result.n_computed, result.n_prompts, plan.store.dir) from None
    finally:
        result.seconds += time.perf_counter() - start
        bar.close()


def _check(out: dict, plan) -> None:
    """Refuse a result that a local run with the driver's model and settings would not have produced."""
    settings = plan.store.settings
    if out["sha256"] != plan.model.sha256:
        raise W2SError(f"Ray worker on {out['node']} has a different {plan.model.name} file (sha256 "
                       f"{out['sha256'][:16]}...); delete its cached copy so it fetches the same file")
    if out["llama_cpp"] != settings.llama_cpp_version:
        raise W2SError(f"Ray worker on {out['node']} runs llama-cpp-python {out['llama_cpp']}, the driver "
                       f"{settings.llama_cpp_version}; install the same version on every node")
    if out["gpu_offload"] != settings.gpu_offload:
        raise W2SError(f"Ray worker on {out['node']} has a GPU but its llama-cpp-python cannot offload; install the "
                       f"GPU build there, or pass --n-gpu-layers 0 to run on CPUs")
