"""How far a doc's features move with its batch neighbours when packed, and what decoding each doc alone costs.

  python benchmarks/batch_independence.py MODEL [--task sentiment] [--docs 96] [--rounds 3] [--threads 1] [--streams 8]

For each doc: its vector decoded alone (the reference, and what the pipeline stores on the CPU), then in
llama.cpp-style packed batches (`plan_batches`, several docs per decode: llama.cpp's own way, and this
project's before). Prints the share of docs bit-identical to the reference, the largest difference
relative to the vector's largest entry and the smallest cosine. Then times both on the same docs,
alternately for `rounds` rounds in one process: text tokens per second. `--streams K` adds two plans in
a second context where each of K sequences has its own KV cache (llama.cpp's kv_unified=False, so each
text's cells start at 0 as when alone): up to K texts per decode, and up to K texts of one token length
per decode (a decode of unequal texts is split into several). Results:
docs/performance.md#batch-independent-features.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def own_streams(emb, k: int) -> None:
    """Swap the Embedder's context for one with k sequences, each in its own KV stream of max_tokens cells."""
    from llama_cpp import _internals

    from w2s_gguf.common.llama_logs import quiet_llama_logs

    llm = emb.llm
    params = type(llm.context_params).from_buffer_copy(llm.context_params)
    params.n_seq_max, params.kv_unified = k, False
    params.n_ctx = params.n_batch = params.n_ubatch = k * emb.max_tokens
    llm._ctx.close()
    with quiet_llama_logs():
        llm._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    llm.context_params = params
    llm._batch = _internals.LlamaBatch(n_tokens=int(params.n_ctx), embd=0, n_seq_max=k, verbose=False)
    emb.n_ctx = int(params.n_ctx)


def equal_length_batches(lengths: list[int], k: int) -> list[list[int]]:
    batches: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if batches and len(batches[-1]) < k and lengths[batches[-1][0]] == lengths[i]:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def run(model_name: str, task: str, n_docs: int, rounds: int, threads: int, streams: int = 0) -> None:
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

    engines = {"packed": emb, "alone": emb}
    if streams:
        streamed = Embedder(model, "last", 512, n_gpu_layers=0, n_threads=threads)
        llama_cpp.llama_set_n_threads(streamed.llm._ctx.ctx, threads, threads)
        own_streams(streamed, streams)
        engines.update({"streams": streamed, "streams, one length": streamed})

    def decode_all(name, batches) -> np.ndarray:
        out = np.empty((len(tokens), emb.dim), np.float32)
        for b in batches:
            out[b] = engines[name].embed_batch([tokens[i] for i in b])
        return out

    try:
        alone = np.stack([emb.embed_batch([t])[0] for t in tokens])
        scale = np.abs(alone).max(axis=1)
        lengths = [len(t) for t in tokens]
        plans = {"packed": plan_batches(lengths, emb.batch_tokens),
                 "alone": plan_batches(lengths, emb.batch_tokens, max_texts=1)}
        if streams:
            plans.update({"streams": plan_batches(lengths, streams * emb.max_tokens, max_texts=streams),
                          "streams, one length": equal_length_batches(lengths, streams)})
        n_text = sum(map(len, tokens))
        print(f"{model_name}, {len(tokens)} {task} docs, {n_text} tokens, {threads} thread(s)")
        for name, batches in plans.items():
            got = decode_all(name, batches)
            same = float(np.mean([np.array_equal(a, b) for a, b in zip(got, alone)]))
            rel = float((np.abs(got - alone).max(axis=1) / scale).max())
            cos = float(((got * alone).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(alone, axis=1)).min())
            print(f"  {name:19s} {len(batches)} batches: "
                  f"{same:.0%} of docs bit-identical to alone, largest difference {rel:.2e} of the largest entry, "
                  f"min cosine {cos:.6f}")
        seconds = {name: [] for name in plans}
        for _ in range(rounds):
            for name, batches in plans.items():
                start = time.perf_counter()
                decode_all(name, batches)
                seconds[name].append(time.perf_counter() - start)
        rate = {name: n_text / float(np.median(s)) for name, s in seconds.items()}
        print(f"  speed (median of {rounds} alternating rounds), text tokens per second: "
              + ", ".join(f"{name} {r:.0f}" for name, r in rate.items())
              + f"; alone/packed {rate['alone'] / rate['packed']:.3f}")
    finally:
        for engine in {id(e): e for e in engines.values()}.values():
            engine.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--task", default="sentiment")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--streams", type=int, default=0, help="also K texts per decode, each in its own KV stream")
    args = parser.parse_args()
    run(args.model, args.task, args.docs, args.rounds, args.threads, args.streams)
