"""How far a doc's features move with its batch neighbours when packed, and what decoding each doc alone costs.

  python benchmarks/batch_independence.py MODEL [--task sentiment] [--docs 96] [--rounds 3] [--threads 1]

For each doc: its vector decoded alone (the reference, and what the pipeline stores on the CPU), then in
llama.cpp-style packed batches (`plan_batches`, several docs per decode: llama.cpp's own way, and this
project's before). Prints the share of docs bit-identical to the reference, the largest difference
relative to the vector's largest entry and the smallest cosine. Then times both on the same docs,
alternately for `rounds` rounds in one process: text tokens per second. Results:
docs/performance.md#batch-independent-features.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def run(model_name: str, task: str, n_docs: int, rounds: int, threads: int) -> None:
    import llama_cpp

    from w2s_gguf.features.engine import Embedder
    from w2s_gguf.features.pipeline import plan_batches
    from w2s_gguf.models import ensure_model, load_registry
    from w2s_gguf.tasks import load_task

    model = ensure_model(load_registry()[model_name])
    texts = [d.text for d in load_task(task, n_train=n_docs, n_test=8).train][:n_docs]
    emb = Embedder(model, "last", 512, n_gpu_layers=0, n_threads=threads)
    llama_cpp.llama_set_n_threads(emb.llm._ctx.ctx, threads, threads)
    tokens = [emb.tokenize(t)[0] for t in texts]

    def decode_all(batches) -> np.ndarray:
        out = np.empty((len(tokens), emb.dim), np.float32)
        for b in batches:
            out[b] = emb.embed_batch([tokens[i] for i in b])
        return out

    try:
        alone = np.stack([emb.embed_batch([t])[0] for t in tokens])
        scale = np.abs(alone).max(axis=1)
        plans = {"packed": plan_batches([len(t) for t in tokens], emb.batch_tokens),
                 "alone": plan_batches([len(t) for t in tokens], emb.batch_tokens, max_texts=1)}
        n_text = sum(map(len, tokens))
        print(f"{model_name}, {len(tokens)} {task} docs, {n_text} tokens, {threads} thread(s)")
        for name, batches in plans.items():
            got = decode_all(batches)
            same = float(np.mean([np.array_equal(a, b) for a, b in zip(got, alone)]))
            rel = float((np.abs(got - alone).max(axis=1) / scale).max())
            cos = float(((got * alone).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(alone, axis=1)).min())
            print(f"  {name:8s} {len(batches)} batches: "
                  f"{same:.0%} of docs bit-identical to alone, largest difference {rel:.2e} of the largest entry, "
                  f"min cosine {cos:.6f}")
        seconds = {name: [] for name in plans}
        for _ in range(rounds):
            for name, batches in plans.items():
                start = time.perf_counter()
                decode_all(batches)
                seconds[name].append(time.perf_counter() - start)
        rate = {name: n_text / float(np.median(s)) for name, s in seconds.items()}
        print(f"  speed (median of {rounds} alternating rounds), text tokens per second: "
              + ", ".join(f"{name} {r:.0f}" for name, r in rate.items())
              + f"; alone/packed {rate['alone'] / rate['packed']:.3f}")
    finally:
        emb.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    run(args.model, args.task, args.docs, args.rounds, args.threads)
