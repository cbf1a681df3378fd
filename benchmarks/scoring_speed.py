"""The scoring engine's speed (docs/prompting.md): shared-prefix reuse against decoding every prompt whole,
and the scoring pass's tok/s against llama.cpp's own on the same context.

    python benchmarks/scoring_speed.py --models smollm2-135m gemma3-270m --task sentiment --docs 60 [--decode packed]

For each model: one 5-shot prefix (the default run's seed-0 ground-truth demonstrations, from half A) and
`--docs` test docs, scored three ways, interleaved, `--repeats` times (medians):
  reuse   the prefix decoded once, each batch of docs decoded after a copy of it (what --prompting does)
  whole   every prompt decoded whole, in batches of the same token budget (long prompts alone)
  engine  llama.cpp decoding sequences of `budget` tokens, one per decode, logits at the last token only:
          its own prompt-processing speed on this context, the yardstick for the pass's tok/s
A batch holds one doc part (or whole prompt), as `--prompting` decodes on the CPU, or as many as fit with
`--decode packed` (engine.texts_per_batch).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def measure(name: str, task: str, n_docs: int, shots: int, repeats: int, threads: int | None,
            decode: str = "auto") -> dict:
    from w2s_gguf.core.prompting import TRUE_DEMOS, choose_demos
    from w2s_gguf.core.splits import split_halves
    from w2s_gguf.features.engine import batch_tokens, texts_per_batch
    from w2s_gguf.features.pipeline import plan_batches
    from w2s_gguf.features.prompts import PromptGroup, PromptStyle, PromptTokens
    from w2s_gguf.features.scoring import Scorer, Vocab
    from w2s_gguf.models import load_registry, resolve_model
    from w2s_gguf.tasks import get_task, load_task

    data = load_task(task, 900, 600)
    form = get_task(task).prompting
    style = PromptStyle(form.suffix, form.label_words, form.separator, form.version)
    y = np.array([d.label for d in data.train])
    demos = choose_demos(y, split_halves([d.group for d in data.train], 0)[0], shots, 0, TRUE_DEMOS)
    model = resolve_model(name, load_registry())
    vocab = Vocab(model)
    tokens = PromptTokens(vocab, style, 512)
    group = tokens.group(PromptGroup([(data.train[i].text, data.train[i].label) for i in demos],
                                     [d.text for d in data.test[:n_docs]]))
    vocab.close()
    budget = batch_tokens(512)
    n_batch = 512 + len(tokens.suffix_tokens) + len(group.prefix)
    scorer = Scorer(model, n_ctx=len(group.prefix) + n_batch, n_batch=n_batch, n_threads=threads)
    lengths = [len(d) for d in group.docs]
    per_batch = texts_per_batch(False, decode)
    reuse_batches = [[group.docs[i] for i in b] for b in plan_batches(lengths, budget, per_batch)]
    whole = [group.prefix + d for d in group.docs]
    whole_batches = [[whole[i] for i in b] for b in plan_batches([len(w) for w in whole], budget, per_batch)]
    rng = np.random.default_rng(0)
    engine_seqs = [rng.integers(100, 20000, budget).tolist() for _ in range(4)]
    times = {"reuse": [], "whole": [], "engine": []}
    scorer.score(group.prefix, reuse_batches[:1], tokens.label_tokens)  # warm-up
    for _ in range(repeats):
        for mode in times:
            start = time.perf_counter()
            if mode == "reuse":
                scorer._prefix = None  # decode the prefix again: its cost is part of every group's pass
                scorer.score(group.prefix, reuse_batches, tokens.label_tokens)
            elif mode == "whole":
                for batch in whole_batches:
                    scorer.score_whole(batch, tokens.label_tokens)
            else:
                for seq in engine_seqs:
                    scorer.score_whole([seq], tokens.label_tokens)
            times[mode].append(time.perf_counter() - start)
    scorer.close()
    t = {k: float(np.median(v)) for k, v in times.items()}
    reuse_tokens = len(group.prefix) + sum(lengths)
    return {"model": name, "prefix": len(group.prefix), "doc_tokens": sum(lengths), "docs": len(lengths),
            "reuse_s": t["reuse"], "whole_s": t["whole"], "speedup": t["whole"] / t["reuse"],
            "reuse_tok_s": reuse_tokens / t["reuse"], "engine_tok_s": budget * len(engine_seqs) / t["engine"],
            "whole_tok_s": sum(map(len, whole)) / t["whole"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["smollm2-135m", "gemma3-270m"])
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--docs", type=int, default=60)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--decode", choices=["auto", "alone", "packed"], default="auto",
                        help="auto: one doc part per decode, as on the CPU; packed: as many as fit")
    args = parser.parse_args()
    print("| model | prefix tokens | docs (tokens) | whole s | reuse s | speed-up | pass tok/s | llama.cpp tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        r = measure(name, args.task, args.docs, args.shots, args.repeats, args.threads, args.decode)
        print(f"| {r['model']} | {r['prefix']} | {r['docs']} ({r['doc_tokens']}) | {r['whole_s']:.1f} | {r['reuse_s']:.1f} "
              f"| {r['speedup']:.2f}x | {r['reuse_tok_s']:.0f} | {r['engine_tok_s']:.0f} | "
              f"{r['reuse_tok_s'] / r['engine_tok_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
