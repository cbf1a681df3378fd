"""llama.cpp's extra CPU weight buffers (repacked kernels) against the plain ones, decoding texts alone
(docs/performance.md, "Batch-independent features"): speed, interleaved, and how far the vectors move.

    python benchmarks/weight_buffers.py gemma3-270m --docs 64 --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    from w2s_gguf.features import engine
    from w2s_gguf.features.capture import LayerEmbedder
    from w2s_gguf.features.layers import LAST
    from w2s_gguf.models import load_registry, resolve_model
    from w2s_gguf.tasks import load_task

    if engine.cpu_amx_matmuls():
        raise SystemExit("this build has AMX: the extra buffers are always off here (engine.weight_buffers)")
    texts = [d.text for d in load_task("sentiment", n_train=args.docs, n_test=8).train]
    model = resolve_model(args.model, load_registry())
    engines = {extra: LayerEmbedder(model, "last", 512, [LAST], n_gpu_layers=0, n_threads=args.threads,
                                    extra_buffers=extra) for extra in (True, False)}
    tokens = [engines[False].tokenize(t)[0] for t in texts]
    seconds: dict[bool, list[float]] = {True: [], False: []}
    vectors = {}
    for _ in range(args.rounds):
        for extra, embedder in engines.items():
            start = time.perf_counter()
            vectors[extra] = np.concatenate([embedder.embed_batch([t]) for t in tokens])[:, 0]
            seconds[extra].append(time.perf_counter() - start)
    for embedder in engines.values():
        embedder.close()
    n = sum(map(len, tokens))
    extra, plain = vectors[True], vectors[False]
    cosine = (extra * plain).sum(-1) / np.linalg.norm(extra, axis=-1) / np.linalg.norm(plain, axis=-1)
    tps = {k: n / float(np.median(v)) for k, v in seconds.items()}
    print(f"| {args.model} | {tps[True]:.0f} | {tps[False]:.0f} | {tps[False] / tps[True]:.2f}x | "
          f"{cosine.min():.5f}, {np.abs(extra - plain).max() / np.abs(extra).max():.1e} of the largest entry |")


if __name__ == "__main__":
    main()
