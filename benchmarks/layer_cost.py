"""Cost of capturing every block: LayerEmbedder(layers=["all"]) vs plain Embedder, same texts, same batches.

Both engines are loaded side by side and run the same llama.cpp batches
(plan_batches with Embedder.batch_tokens). Batch by batch they alternate which
goes first (A,B then B,A), so a shared machine's load falls on both alike.

    W2S_GGUF_HOME=.cache-test python benchmarks/layer_cost.py --n-docs 300
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from w2s_gguf.embeddings import Embedder, plan_batches
from w2s_gguf.layers import LayerEmbedder
from w2s_gguf.models import ensure_model, load_registry
from w2s_gguf.tasks import load_task

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--n-docs", type=int, default=300)
p.add_argument("--model", default="smollm2-135m")
p.add_argument("--rounds", type=int, default=1, help="passes over all batches per engine")
args = p.parse_args()

start = time.perf_counter()
model = ensure_model(load_registry()[args.model])
texts = [d.text for d in load_task("sentiment", n_train=args.n_docs, n_test=20).train]
rows = []
for pooling in ("last", "mean"):
    plain = Embedder(model, pooling)
    capture = LayerEmbedder(model, pooling, layers=["all"])
    tokens = [plain.tokenize(t)[0] for t in texts]
    batches = [[tokens[i] for i in b] for b in plan_batches([len(t) for t in tokens], plain.batch_tokens)]
    plain.embed_batch(batches[0]), capture.embed_batch(batches[0])  # warm-up
    seconds = {"plain": 0.0, "capture": 0.0}
    per_batch = []  # capture time / plain time of each batch: its median resists bursts of load
    for r in range(args.rounds):
        for i, batch in enumerate(batches):
            order = [("plain", plain), ("capture", capture)]
            took = {}
            for name, engine in order if (i + r) % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                engine.embed_batch(batch)
                took[name] = time.perf_counter() - t0
                seconds[name] += took[name]
            per_batch.append(took["capture"] / took["plain"])
    n_tok = args.rounds * sum(map(len, tokens))
    rows.append((pooling, len(batches), n_tok, n_tok / seconds["plain"], n_tok / seconds["capture"], capture.n_layer,
                 float(np.median(per_batch))))
    plain.close()
    capture.close()

print(f"- model: {model.name}, {len(texts)} sentiment texts, {rows[0][2] // args.rounds} tokens per pass, "
      f"{args.rounds} pass(es) per engine, batches interleaved A,B / B,A; load average at the end "
      f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; script ran {time.perf_counter() - start:.0f} s")
print("\n| pooling | batches | plain Embedder tok/s | all blocks + last tok/s | capture ÷ plain (tok/s) | median per-batch time, capture ÷ plain |")
print("|---|---:|---:|---:|---:|---:|")
for pooling, n_batches, _, plain_tps, capture_tps, n_layer, median in rows:
    print(f"| {pooling} | {n_batches} | {plain_tps:.1f} | {capture_tps:.1f} ({n_layer} + 1 layers) | "
          f"{capture_tps / plain_tps:.3f} | {median:.3f} |")
