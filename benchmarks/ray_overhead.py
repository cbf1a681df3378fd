"""Overhead of Ray extraction against local extraction on one machine (interleaved runs).

Starts a local Ray head with --num-cpus CPUs (stopped at the end), then for each round
embeds the same docs from scratch (a fresh cache folder each time):
  local     embed_texts, one process, --threads threads
  ray-Nx1   embed_texts_ray, one actor per CPU, 1 thread each
  ray-1xN   embed_texts_ray, one actor with --threads threads (same engine setup as local)
and prints end-to-end tok/s (connect, model loads, tokenizing, writing shards) and each
variant's median ratio to local. Features are checked equal to local's on every run.

  W2S_GGUF_HOME=/work/cache-test PYTHONPATH=. python3 benchmarks/ray_overhead.py --docs 200 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.features.test_ray import free_port, worker_env  # noqa: E402
from w2s_gguf.features.pipeline import embed_texts  # noqa: E402
from w2s_gguf.models import ensure_model, load_registry  # noqa: E402
from w2s_gguf.features.cluster import embed_texts_ray  # noqa: E402
from w2s_gguf.tasks import load_task  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--shard-docs", type=int, default=16)
    args = ap.parse_args()

    model = ensure_model(load_registry()["smollm2-135m"])
    data = load_task("sentiment", n_train=args.docs - 40, n_test=40)
    texts = [d.text for d in data.train + data.test]
    port, temp = free_port(), tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
                             f"--num-cpus={args.threads}", f"--port={port}", f"--temp-dir={temp}",
                             "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory=100000000",
                             f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                             f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
                             f"--runtime-env-agent-port={free_port()}"],
                            env=worker_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    common = dict(pooling="last", max_tokens=args.max_tokens, n_gpu_layers=-1, shard_docs=args.shard_docs, progress=False)
    variants = {
        "local": lambda root: embed_texts(model, texts, n_threads=args.threads, cache_root=root, **common),
        f"ray-{args.threads}x1": lambda root: embed_texts_ray(model, texts, n_threads=1, address=f"127.0.0.1:{port}",
                                                             cache_root=root, **common),
        f"ray-1x{args.threads}": lambda root: embed_texts_ray(model, texts, n_threads=args.threads,
                                                             address=f"127.0.0.1:{port}", cache_root=root, **common),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    reference = None
    try:
        time.sleep(10)  # let the head settle before the first timed run
        for r in range(args.rounds):
            for name, run in variants.items():
                with tempfile.TemporaryDirectory() as root:
                    start = time.perf_counter()
                    result = run(Path(root))
                    wall = time.perf_counter() - start
                reference = result.features if reference is None else reference
                assert np.array_equal(result.features, reference), name
                rates[name].append(result.n_tokens / wall)
                print(f"round {r} {name:8s} {result.n_tokens} tokens {wall:6.1f} s {result.n_tokens / wall:7.1f} tok/s "
                      f"({result.shards_written} shards, load avg {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        head.terminate()
        head.wait(timeout=60)
        try:
            os.killpg(head.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name, values in rates.items():
        ratios = [v / l for v, l in zip(values, rates["local"])]
        print(f"{name:8s} median {np.median(values):7.1f} tok/s, ratio to local (same round) median {np.median(ratios):.2f} "
              f"[{min(ratios):.2f}-{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
