"""The extraction engine's features against llama.cpp's pooled embeddings and against an older version's capture.

  # 1. features of one model, with whatever w2s_gguf is first on PYTHONPATH (this checkout, or an older one)
  PYTHONPATH=OLD python benchmarks/engine_exactness.py dump MODEL OLD.npz --docs 32 --requests "all,last"
  PYTHONPATH=.   python benchmarks/engine_exactness.py dump MODEL NEW.npz --docs 32
  # 2. compare: last pooling bit for bit, mean pooling's largest difference, every block against OLD
  python benchmarks/engine_exactness.py compare OLD.npz NEW.npz

An older checkout comes from `git archive COMMIT | tar -x -C OLD`. Both dumps decode the same sentiment docs
in the pipeline's batches (`plan_batches`, several texts per decode) on one thread (`llama_set_n_threads`:
no spin barriers on a loaded machine; ggml's CPU results do not depend on the thread count). Results:
docs/performance.md#computing-only-what-the-features-need.
"""

from __future__ import annotations

import argparse

import numpy as np


def dump(model_name: str, out: str, n_docs: int, requests: list[str]) -> None:
    import llama_cpp

    from w2s_gguf.features.capture import LayerEmbedder
    from w2s_gguf.features.engine import Embedder
    from w2s_gguf.features.pipeline import plan_batches
    from w2s_gguf.models import ensure_model, load_registry
    from w2s_gguf.tasks import load_task

    model = ensure_model(load_registry()[model_name])
    texts = [d.text for d in load_task("sentiment", n_train=n_docs, n_test=8).train][:n_docs]
    saved = {}
    for pooling in ("last", "mean"):
        plain = Embedder(model, pooling, 512)  # llama.cpp's embedding mode: the whole graph, its own pooling
        llama_cpp.llama_set_n_threads(plain.llm._ctx.ctx, 1, 1)
        tokens = [plain.tokenize(t)[0] for t in texts]
        batches = plan_batches([len(t) for t in tokens], plain.batch_tokens)
        saved[f"{pooling}/llama"] = np.concatenate([plain.embed_batch([tokens[i] for i in b]) for b in batches])
        plain.close()
        for request in requests:
            engine = LayerEmbedder(model, pooling, 512, layers=request.split(","))
            llama_cpp.llama_set_n_threads(engine.llm._ctx.ctx, 1, 1)
            saved[f"{pooling}/{request}"] = np.concatenate([engine.embed_batch([tokens[i] for i in b]) for b in batches])
            saved[f"{pooling}/{request}/layers"] = np.array([str(layer) for layer in engine.layers])
            print(model_name, pooling, request, getattr(engine, "graph", "-"), getattr(engine, "stats", "-"), flush=True)
            engine.close()
    saved["order"] = np.concatenate(batches)  # row k of every array is doc order[k]
    np.savez(out, **saved)


def compare(old_path: str, new_path: str) -> None:
    old, new = np.load(old_path), np.load(new_path)
    for pooling in ("last", "mean"):
        llama = new[f"{pooling}/llama"]
        scale = np.abs(llama).max(axis=1, keepdims=True)
        line = [f"{pooling}: llama.cpp old == new {np.array_equal(old[f'{pooling}/llama'], llama)}"]
        requests = [k.split("/")[1] for k in new.files if k.startswith(f"{pooling}/") and k.count("/") == 1]
        for request in (r for r in requests if r != "llama"):
            got, layers = new[f"{pooling}/{request}"], list(new[f"{pooling}/{request}/layers"])
            if "last" in layers:
                diff = np.abs(got[:, layers.index("last")] - llama)
                line.append(f"{request}: last == llama.cpp {not diff.any()} (largest difference {diff.max():.3g}, "
                            f"{(diff / scale).max():.3g} of the vector's largest entry)")
            old_layers = list(old[f"{pooling}/all,last/layers"])
            blocks = [layer for layer in layers if layer != "last"]
            if blocks:
                same = np.array_equal(got[:, [layers.index(b) for b in blocks]],
                                      old[f"{pooling}/all,last"][:, [old_layers.index(b) for b in blocks]])
                line.append(f"{request}: {len(blocks)} blocks == old capture {same}")
        print("; ".join(line))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    d = sub.add_parser("dump")
    d.add_argument("model")
    d.add_argument("out")
    d.add_argument("--docs", type=int, default=32)
    d.add_argument("--requests", default="all,last;last;middle;0,-1", help="layer requests, ';' between them")
    c = sub.add_parser("compare")
    c.add_argument("old")
    c.add_argument("new")
    args = parser.parse_args()
    if args.step == "dump":
        dump(args.model, args.out, args.docs, args.requests.split(";"))
    else:
        compare(args.old, args.new)


if __name__ == "__main__":
    main()
