"""Prompt scores for groups of prompts that share demonstrations, computing only what the cache lacks.

The score of a prompt (prompts.py) is (log p(word 0), log p(word 1)) at its last position.

Scores go to a sibling of the embedding cache (`EmbeddingStore` shards of 2-float rows) keyed by the
prompt's text (its demonstrations and doc); the folder is named by everything else that changes them
(model sha256, the prompting form and its version, max_tokens, batch size, llama.cpp version, device).
Each group's docs are planned into batches and shards from the whole group, so a run resumed after a
kill computes exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..common.storage import cache_home, file_lock, sha256_bytes
from ..errors import W2SError
from ..models.modelfile import ResolvedModel
from .cache import EmbeddingStore
from .engine import DEFAULT_MAX_TOKENS, batch_tokens, extra_buffers, gpu_offload, texts_per_batch
from .pipeline import DEFAULT_SHARD_DOCS, ExtractionInterrupted, plan_batches
from .prompts import PromptGroup, PromptStyle, PromptTokens, TokenizedGroup, check_context
from .scoring import MAX_SEQUENCES, Scorer, Vocab


@dataclass
class ScoreSettings:
    """Everything except the prompt text that changes a score; it names the store folder."""

    model_sha256: str
    llama_cpp_version: str
    gpu_offload: bool
    max_tokens: int
    batch_tokens: int  # on a GPU, batch composition moves scores in the last float digits
    suffix: str
    label_words: list[str]
    separator: str
    prompt_version: str
    dtype: str = "float32"
    texts_per_batch: int | None = None  # 1: each prompt alone after its prefix (the CPU); None: packed (a GPU)
    extra_buffers: bool = True  # llama.cpp's extra weight buffers (engine.weight_buffers): packed only, since 0.3.1

    def key(self) -> str:
        defaults = {"texts_per_batch": None, "extra_buffers": True}  # out of the hash: older stores keep their names
        fields = {k: v for k, v in self.__dict__.items() if not (k in defaults and v == defaults[k])}
        digest = sha256_bytes(json.dumps(fields, sort_keys=True).encode())[:12]
        return f"{self.model_sha256[:16]}-logprobs-{self.max_tokens}-v{self.prompt_version}-{digest}"


def scores_root(cache_root: Path | None = None) -> Path:
    """Scores live beside the embeddings (or inside a cache folder given for them)."""
    return cache_root / "scores" if cache_root is not None else cache_home() / "scores"


@dataclass
class ScoreResult:
    log_probs: list[np.ndarray]  # per group, (n_docs, 2) float32: log p(word 0), log p(word 1)
    store_dir: Path
    n_prompts: int
    n_computed: int = 0  # prompts scored in this call (0 = all from the cache)
    n_tokens: int = 0  # doc-part tokens decoded in this call
    n_prefix_tokens: int = 0  # prefix tokens decoded in this call (once per group that needed work)
    n_truncated: int = 0
    seconds: float = 0.0
    model_loaded: bool = False
    gpu_offload: bool = False
    problems: list[str] = field(default_factory=list)


def plan_shards(lengths: list[int], budget: int, shard_docs: int, max_seqs: int = MAX_SEQUENCES - 1) -> list[list[list[int]]]:
    """Docs (indices) in batches of at most `budget` tokens and `max_seqs` docs, batches in shards of
    about `shard_docs` docs: a pure function of the lengths, so a resumed run plans the same shards."""
    batches = [b[i : i + max_seqs] for b in plan_batches(lengths, budget) for i in range(0, len(b), max_seqs)]
    shards, current = [], []
    for batch in batches:
        current.append(batch)
        if sum(map(len, current)) >= shard_docs:
            shards.append(current)
            current = []
    return shards + ([current] if current else [])


@dataclass
class ScorePlan:
    """Everything a scoring pass needs, made before any weights are loaded (locally or on Ray)."""

    model: ResolvedModel
    tokenized: list[TokenizedGroup]
    label_tokens: tuple[int, int]
    store: EmbeddingStore
    work: list[tuple[int, list[list[int]]]]  # (group, shard of batches of doc indices), in plan order
    n_ctx: int
    n_batch: int
    result: ScoreResult

    def missing_work(self) -> list[tuple[int, list[list[int]]]]:
        return [(g, shard) for g, shard in self.work
                if self.store.missing([self.tokenized[g].keys[i] for batch in shard for i in batch])]

    def finish(self) -> ScoreResult:
        self.result.problems = self.store.problems
        self.result.log_probs = [self.store.gather(t.keys) if t.keys else np.zeros((0, 2), np.float32)
                                 for t in self.tokenized]
        return self.result


def plan_scoring(model: ResolvedModel, style: PromptStyle, groups: list[PromptGroup], max_tokens: int,
                 offload: bool, shard_docs: int, cache_root: Path | None, decode: str = "auto") -> ScorePlan:
    """Tokenize with the vocabulary alone, check the context, open the store and plan every shard."""
    import llama_cpp

    vocab = Vocab(model)
    try:
        tokens = PromptTokens(vocab, style, max_tokens)
        tokenized = [tokens.group(g) for g in groups]
        shots = max((len(g.demos) for g in groups), default=0)
        longest_prefix = max((len(t.prefix) for t in tokenized), default=0)
        longest_doc = max((len(d) for t in tokenized for d in t.docs), default=0)
        check_context(model, vocab.n_ctx_train, longest_prefix, longest_doc, shots)
    finally:
        vocab.close()
    # On the CPU each doc part is decoded alone after the prefix, so its score is a function of the
    # prompt (engine.texts_per_batch, `decode`); on a GPU docs are packed into batches of `budget` tokens
    # (a longer doc gets a batch alone).
    budget = batch_tokens(max_tokens, offload)
    n_batch = max(budget, max_tokens + len(tokens.suffix_tokens))
    per_batch = texts_per_batch(offload, decode)
    settings = ScoreSettings(model.sha256, llama_cpp.__version__, offload, max_tokens, budget, style.suffix,
                             list(style.label_words), style.separator, style.version, texts_per_batch=per_batch,
                             extra_buffers=extra_buffers(per_batch))
    store = EmbeddingStore(settings, scores_root(cache_root))
    result = ScoreResult([], store.dir, sum(len(g.docs) for g in groups), n_truncated=tokens.n_truncated,
                         gpu_offload=offload)
    work = _plan(tokenized, budget, shard_docs, per_batch or min(MAX_SEQUENCES, n_batch) - 1)  # less the prefix's sequence
    return ScorePlan(model, tokenized, tokens.label_tokens, store, work,
                     longest_prefix + n_batch, n_batch, result)


def scoring_lock(plan: ScorePlan):
    """One lock per model's score store: runs sharing a cache never score the same prompt twice."""
    return file_lock(plan.store.dir.parent / f".{plan.model.sha256[:16]}.lock")


def score_groups(
    model: ResolvedModel,
    style: PromptStyle,
    groups: list[PromptGroup],
    max_tokens: int = DEFAULT_MAX_TOKENS,
    n_gpu_layers: int = -1,
    n_threads: int | None = None,
    shard_docs: int = DEFAULT_SHARD_DOCS,
    progress: bool = True,
    cache_root: Path | None = None,
    on_shard: Callable[[dict], None] | None = None,
    decode: str = "auto",
) -> ScoreResult:
    """Log-probs of both label words after every prompt of every group, from the cache where possible.

    `on_shard(info)` runs after each shard is written (info: group, shard, docs).
    """
    offload = gpu_offload(n_gpu_layers)
    plan = plan_scoring(model, style, groups, max_tokens, offload, shard_docs, cache_root, decode)
    plan.store.refresh()
    if plan.missing_work():
        with scoring_lock(plan):
            plan.store.refresh()  # another run may have finished shards while we waited
            todo = plan.missing_work()
            if todo:
                scorer = Scorer(model, plan.n_ctx, plan.n_batch, n_gpu_layers, n_threads,
                                plan.store.settings.extra_buffers)
                plan.result.model_loaded = True
                try:
                    _score(scorer, plan, todo, progress, on_shard)
                finally:
                    scorer.close()
    return plan.finish()


class ScoringInterrupted(ExtractionInterrupted):
    """Ctrl-C while scoring prompts, after the finished shards are safe on disk."""

    def __init__(self, model: str, done: int, total: int, store_dir: Path):
        Exception.__init__(self, f"interrupted while scoring prompts with {model}: {done} of {total} prompts of this "
                                 f"call are cached in {store_dir}; run the same command again to resume from there")


def write_shard(plan: ScorePlan, g: int, shard: list[list[int]], log_probs: np.ndarray, **stats) -> int:
    """Check one shard's log-probs and add the prompts the store lacks; returns the doc tokens it scored."""
    group, store, result = plan.tokenized[g], plan.store, plan.result
    docs = [i for batch in shard for i in batch]
    if log_probs.shape != (len(docs), 2) or not np.isfinite(log_probs).all():
        raise W2SError(f"{plan.model.name} produced {log_probs.shape} log-probs with NaN/inf for {len(docs)} prompts; "
                       f"try another quantisation")
    n_tok = sum(len(group.docs[i]) for i in docs)
    keep = [r for r, i in enumerate(docs) if group.keys[i] not in store]
    if keep:  # another run's shards may hold some of these prompts already
        store.add_shard([group.keys[docs[r]] for r in keep], log_probs[keep], {"n_tokens": n_tok, **stats})
    result.n_tokens += n_tok
    result.n_computed += len(docs)
    return n_tok


def _plan(tokenized: list[TokenizedGroup], budget: int, shard_docs: int, max_seqs: int) -> list[tuple[int, list[list[int]]]]:
    """(group, shard) in order; each group's docs deduplicated by key before planning."""
    work = []
    for g, group in enumerate(tokenized):
        first: dict[str, int] = {}
        for i, key in enumerate(group.keys):
            first.setdefault(key, i)
        unique = list(first.values())
        for shard in plan_shards([len(group.docs[i]) for i in unique], budget, shard_docs, max_seqs):
            work.append((g, [[unique[i] for i in batch] for batch in shard]))
    return work


def _score(scorer: Scorer, plan: ScorePlan, todo: list[tuple[int, list[list[int]]]], progress: bool,
           on_shard: Callable[[dict], None] | None) -> None:
    from tqdm.auto import tqdm

    store, tokenized, result = plan.store, plan.tokenized, plan.result
    total = sum(len(tokenized[g].docs[i]) for g, shard in todo for b in shard for i in b)
    bar = tqdm(total=total, unit="tok", unit_scale=True, disable=not progress, dynamic_ncols=True, file=sys.stderr,
               desc=f"score {scorer.model.name} ({sum(len(b) for _, s in todo for b in s)} prompts)")
    start = time.perf_counter()
    try:
        for shard_no, (g, shard) in enumerate(todo):
            group = tokenized[g]
            if scorer.decode_prefix(group.prefix):
                result.n_prefix_tokens += len(group.prefix)
            log_probs = np.concatenate([scorer.score_docs(len(group.prefix), [group.docs[i] for i in batch],
                                                          plan.label_tokens) for batch in shard])
            bar.update(write_shard(plan, g, shard, log_probs))
            if on_shard is not None:
                on_shard({"group": g, "shard": shard_no, "docs": sum(map(len, shard))})
    except KeyboardInterrupt:
        bar.close()
        raise ScoringInterrupted(scorer.model.name, result.n_computed, result.n_prompts, store.dir) from None
    finally:
        result.seconds += time.perf_counter() - start
        bar.close()
