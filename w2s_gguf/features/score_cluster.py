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

from ..models import ModelEntry, ResolvedModel
from .ray_schedule import ModelWorker, check_worker, connect, import_ray, place_actors, run_in_plan_order
from .engine import DEFAULT_MAX_TOKENS
from .pipeline import DEFAULT_SHARD_DOCS
from .prompt_scores import ScoreResult, ScoringInterrupted, plan_scoring, scoring_lock, write_shard
from .prompts import PromptGroup, PromptStyle
from .scoring import Scorer


class ScoreWorker(ModelWorker):
    """A Ray actor that scores whole shards, each with its group's prefix."""

    def __init__(self, spec: ModelEntry | str, n_ctx: int, n_batch: int, n_gpu_layers: int, n_threads: int | None,
                 extra_buffers: bool = False):
        self.scorer = self._start(spec, lambda model: Scorer(model, n_ctx, n_batch, n_gpu_layers, n_threads,
                                                             extra_buffers))

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
    decode: str = "auto",
) -> ScoreResult:
    """Like `score_groups`, but the missing shards are scored by actors on the Ray cluster at `address`."""
    ray = import_ray()
    owns_connection = connect(ray, address)
    try:
        use_gpus = n_gpu_layers != 0 and ray.cluster_resources().get("GPU", 0) >= 1
        plan = plan_scoring(model, style, groups, max_tokens, use_gpus, shard_docs, cache_root, decode)
        plan.store.refresh()
        if plan.missing_work():
            with scoring_lock(plan):
                plan.store.refresh()  # another run may have finished shards while we waited
                todo = plan.missing_work()
                if todo:
                    spec = model.entry if model.entry is not None else str(model.path)
                    actors, group = place_actors(ray, ScoreWorker, (spec, plan.n_ctx, plan.n_batch,
                                                                    n_gpu_layers if use_gpus else 0), n_threads, use_gpus,
                                                 extra_buffers=plan.store.settings.extra_buffers)
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
    start = time.perf_counter()

    def submit(actor, index: int):
        g, shard = todo[index]
        group = plan.tokenized[g]
        return actor.score.remote(group.prefix, [[group.docs[i] for i in batch] for batch in shard], plan.label_tokens)

    def write(index: int, out: dict) -> None:
        g, shard = todo[index]
        write_shard(plan, g, shard, out["log_probs"], worker=out["node"])
        result.n_prefix_tokens += out["prefix_tokens"]
        bar.update(1)
        if on_shard is not None:
            on_shard({"group": g, "shard": index, "docs": sum(map(len, shard)), "node": out["node"], "pid": out["pid"]})

    try:
        run_in_plan_order(ray, actors, len(todo), submit, lambda i, out: check_worker(out, plan.model, plan.store.settings),
                          write, "scoring", plan.store.dir, result.problems)  # write_shard checks the log-probs
    except KeyboardInterrupt:
        bar.close()
        raise ScoringInterrupted(plan.model.name, result.n_computed, result.n_prompts, plan.store.dir) from None
    finally:
        result.seconds += time.perf_counter() - start
        bar.close()
