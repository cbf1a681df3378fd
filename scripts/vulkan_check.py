"""Run by scripts/vulkan_check.sh: the project's own extraction on a GGML GPU backend.

  python scripts/vulkan_check.py cpu --out DIR   features from the CPU build (the reference)
  python scripts/vulkan_check.py gpu --out DIR   in the Vulkan build's venv: offload, features, failure

The gpu step proves, with w2s_gguf.features.pipeline.embed_texts and Embedder, that
n_gpu_layers=-1 puts every layer on the Vulkan device (llama.cpp's "offloaded
N/N layers" log line, and the weights in the device's buffers: the line alone
is printed even when the weights stay on the host), that the features match
the CPU build's (fail below cosine 0.995, warn below 0.998, the bound measured on
SmolLM2, next to the CPU build's own batched-vs-single-text cosine), that layer capture
(w2s_gguf.features.layers, every block of SmolLM2, last and mean pooling) reads the
device's tensors and matches the CPU build block by block, that graphs stopped
early (w2s_gguf.features.capture: after result_norm for "last", after block 8)
give those same features with full offload, partial offload (--n-gpu-layers 10)
and none, faster than llama.cpp's whole graph on the same batches, that
w2s_gguf.tools.doctor passes on a real GPU backend, and that a device
allocation failure ends as one W2SError line, not a crash. It prints one JSON
summary and exits 1 on a failed check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("smollm2-135m", "gemma3-270m")
N_DOCS = 24  # llvmpipe runs ~17x slower than the CPU build: a correctness check, not a benchmark
VULKAN_MEASURED_COSINE = 0.998  # Vulkan vs CPU build measured 0.9988-0.9994 on SmolLM2: below it the row says "warn"
MIN_COSINE = 0.995  # below it the check fails: the features are not the same features any more

# A device whose buffers hold at most 4 KiB: llama.cpp keeps the weights on the host (it still
# logs "offloaded N/N layers"), then cannot place the KV cache and fails to create the context.
FAILURE_ENV = {"GGML_VK_FORCE_MAX_ALLOCATION_SIZE": "4096", "GGML_VK_FORCE_MAX_BUFFER_SIZE": "4096"}
FAILURE_CHILD = """
import sys
from w2s_gguf.errors import W2SError
from w2s_gguf.features.pipeline import Embedder
from w2s_gguf.models import resolve_model
try:
    Embedder(resolve_model(sys.argv[1]), n_gpu_layers=-1).embed_batch([[1, 2, 3]])
except W2SError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
print("loaded and decoded although the device cannot hold a buffer", file=sys.stderr)
"""


def texts() -> list[str]:
    from w2s_gguf.tasks import load_task

    data = load_task("sentiment", n_train=N_DOCS - 8, n_test=8)
    return [d.text for d in data.train + data.test]


LAYER_MODEL = "smollm2-135m"
STOP_OFFLOADS = (-1, 10, 0)  # full offload, the last 10 of 30 blocks (three splits), none
STOP_REQUESTS = (["last"], ["8"])
# One llama.cpp CPU thread on both sides: with two threads on two cores that another job also uses, the
# timing is ggml's spin barriers' more than the graph's (--n-gpu-layers 0, last: 0.83x, then 1.30x in the
# Vulkan build and 0.77x in the CPU build, all beside other work; one thread: 1.14x and 1.16x).
STOP_THREADS = 1
STOP_DOCS = 12


def capture_all_layers(model, docs: list[str], n_gpu_layers: int, out: Path) -> dict:
    """Every block plus last, both poolings, through the project's pipeline: pooling -> (docs, layers, dim)."""
    from w2s_gguf.features.pipeline import embed_layers
    from w2s_gguf.features.layers import resolve_layers

    layers = resolve_layers(["all"], model.n_layer, model.name)
    captured = {}
    for pooling in ("last", "mean"):
        with tempfile.TemporaryDirectory(dir=out) as store:
            res = embed_layers(model, docs, layers, pooling, n_gpu_layers=n_gpu_layers, cache_root=Path(store),
                               progress=False)
        captured[pooling] = np.stack([res[layer].features for layer in layers], axis=1)
    return captured


def stopped_graphs(model, docs: list[str], out: Path) -> dict:
    """Per offload and request: the engine's features against the CPU build's, and its speed against
    llama.cpp's whole graph (plain Embedder) on the same batches, interleaved."""
    from w2s_gguf.tools import doctor
    from w2s_gguf.features.capture import LayerEmbedder
    from w2s_gguf.features.engine import Embedder
    from w2s_gguf.features.pipeline import plan_batches

    cpu = np.load(out / f"cpu-layers-last-{LAYER_MODEL}.npy")  # (docs, L+1, dim), last pooling
    rows, failed = {}, []
    for n_gpu_layers in STOP_OFFLOADS:
        plain = Embedder(model, "last", 128, n_gpu_layers=n_gpu_layers, n_threads=STOP_THREADS)
        for request in STOP_REQUESTS:
            engine = LayerEmbedder(model, "last", 128, request, n_gpu_layers=n_gpu_layers, n_threads=STOP_THREADS)
            try:
                tokens = [engine.tokenize(t)[0] for t in docs]
                batches = plan_batches([len(t) for t in tokens], engine.batch_tokens)
                plain.embed_batch([tokens[0]]), engine.embed_batch([tokens[0]])  # warm-up; the engine's check
                got = np.zeros((len(docs), engine.dim), np.float32)
                took = {"plain": 0.0, "engine": 0.0}
                for r in range(2):
                    for i, batch in enumerate(batches):
                        for name in (("plain", "engine") if (i + r) % 2 == 0 else ("engine", "plain")):
                            start = time.perf_counter()
                            vectors = (plain if name == "plain" else engine).embed_batch([tokens[j] for j in batch])
                            took[name] += time.perf_counter() - start
                            if name == "engine":
                                got[batch] = vectors[:, 0]
            finally:
                engine.close()
            column = -1 if request == ["last"] else int(request[0])
            cos = doctor.cosines(cpu[:len(docs), column], got)
            key = f"n_gpu_layers {n_gpu_layers}, --layer {request[0]}"
            rows[key] = {"graph": engine.graph, **engine.stats, "speedup": round(took["plain"] / took["engine"], 3),
                         "cosine_min": round(float(cos.min()), 5), "docs": len(docs), "batches": len(batches)}
            if cos.min() < MIN_COSINE:
                failed.append(f"stopped graph ({key}): cosine {cos.min():.5f} < {MIN_COSINE}")
            if engine.graph != "stopped" or engine.stats["stopped"] < engine.stats["decodes"] - 1:
                failed.append(f"stopped graph ({key}): the graph was not stopped ({engine.graph}, {engine.stats})")
            if took["plain"] <= took["engine"]:
                failed.append(f"stopped graph ({key}): no faster than the whole graph ({rows[key]['speedup']}x)")
        plain.close()
    return {"cases": rows, "failed": failed}


def cpu_step(out: Path) -> dict:
    """The CPU build's features, and how far the CPU build itself moves them with batch composition."""
    import llama_cpp

    from w2s_gguf.tools import doctor
    from w2s_gguf.features.pipeline import embed_texts
    from w2s_gguf.models import resolve_model

    assert not llama_cpp.llama_supports_gpu_offload(), "the reference must come from a CPU-only build"
    docs = texts()
    summary = {}
    for name in MODELS:
        model = resolve_model(name)
        with tempfile.TemporaryDirectory(dir=out) as store:  # compute afresh, never read a user cache
            res = embed_texts(model, docs, n_gpu_layers=0, cache_root=Path(store), progress=False)
        np.save(out / f"cpu-{name}.npy", res.features)
        single, _ = doctor.offload_features(model, 0, texts=docs)  # one text per batch
        cos = doctor.cosines(res.features, single)
        summary[name] = {"tokens": res.n_tokens, "tok_per_s": round(res.n_tokens / res.seconds, 1),
                         "batched_vs_single_cosine_min": round(float(cos.min()), 5)}
    for pooling, x in capture_all_layers(resolve_model(LAYER_MODEL), docs, 0, out).items():
        np.save(out / f"cpu-layers-{pooling}-{LAYER_MODEL}.npy", x)
    (out / "cpu.json").write_text(json.dumps(summary))
    return {"llama_cpp": llama_cpp.__file__, "models": summary}


def gpu_step(out: Path) -> dict:
    import llama_cpp

    from w2s_gguf.tools import doctor
    from w2s_gguf.features.pipeline import embed_texts
    from w2s_gguf.models import resolve_model

    devices = doctor.ggml_devices()
    report = {"llama_cpp": llama_cpp.__file__, "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
              "devices": [f"{d['name']} [{d['type']}] {d['description']}" for d in devices], "models": {}}
    failed = [] if report["gpu_offload"] and any(d["type"] in doctor.GPU_TYPES for d in devices) else ["no GPU device"]
    docs = texts()
    cpu_info = json.loads((out / "cpu.json").read_text())
    warnings: list[str] = []
    for name in MODELS:
        model = resolve_model(name)
        with tempfile.TemporaryDirectory(dir=out) as store, doctor.captured_llama_log() as log:
            res = embed_texts(model, docs, n_gpu_layers=-1, cache_root=Path(store), progress=False)
        cpu = np.load(out / f"cpu-{name}.npy")
        cos = doctor.cosines(cpu, res.features)
        layers = doctor.offloaded_layers(log)
        buffers = doctor.weight_buffers(log)
        row = {
            "offloaded": f"{layers[0]}/{layers[1]}" if layers else None,
            "weights_mib": buffers, "weights_on_device": round(doctor.device_share(buffers), 3),
            "gpu_offload_setting": res.settings.gpu_offload,
            "cosine_min": round(float(cos.min()), 5), "cosine_median": round(float(np.median(cos)), 5),
            "docs": len(docs), "tokens": res.n_tokens, "tok_per_s": round(res.n_tokens / res.seconds, 1),
        }
        report["models"][name] = row
        row["cpu_batched_vs_single_cosine_min"] = cpu_info[name]["batched_vs_single_cosine_min"]
        row["tensors_moved_to_host"] = "{}/{}".format(*doctor.host_fallback(log))
        if not doctor.all_on_device(log):
            failed.append(f"{name}: weights not on the device ({row['offloaded']} layers, "
                          f"{row['tensors_moved_to_host']} tensors moved to the host, {buffers})")
        if row["cosine_min"] < MIN_COSINE:
            failed.append(f"{name}: cosine {row['cosine_min']} < {MIN_COSINE}")
        elif row["cosine_min"] < VULKAN_MEASURED_COSINE:
            warnings.append(f"{name}: cosine {row['cosine_min']} < {VULKAN_MEASURED_COSINE} (measured on SmolLM2); "
                            f"the CPU build itself moves these features to {row['cpu_batched_vs_single_cosine_min']} "
                            f"between batched and one-text batches")

    # Layer capture on the device: ggml_backend_tensor_get copies each block's output out of the device buffer.
    report["layer_capture"] = {}
    for pooling, x in capture_all_layers(resolve_model(LAYER_MODEL), docs, -1, out).items():
        cpu = np.load(out / f"cpu-layers-{pooling}-{LAYER_MODEL}.npy")
        per_layer = [float(doctor.cosines(cpu[:, k], x[:, k]).min()) for k in range(x.shape[1])]
        worst = int(np.argmin(per_layer))
        worst_name = f"block {worst}" if worst < x.shape[1] - 1 else "last"
        report["layer_capture"][pooling] = {"model": LAYER_MODEL, "layers": x.shape[1], "docs": len(docs),
                                            "cosine_min": round(per_layer[worst], 5), "worst_layer": worst_name,
                                            "cosine_median": round(float(np.median(per_layer)), 5)}
        if per_layer[worst] < MIN_COSINE:
            failed.append(f"layer capture ({pooling}): {worst_name} cosine {per_layer[worst]:.5f} < {MIN_COSINE}")

    stops = stopped_graphs(resolve_model(LAYER_MODEL), docs[:STOP_DOCS], out)
    report["stopped_graphs"] = stops["cases"]
    failed += stops["failed"]

    rows = doctor.doctor_report(model=MODELS[0])
    print(doctor.format_report(rows), file=sys.stderr)
    report["doctor"] = [list(r) for r in rows]
    failed += [f"doctor: {c}: {d}" for c, s, d in rows if s == "fail"]

    env = {**os.environ, **FAILURE_ENV}
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", FAILURE_CHILD, MODELS[0]], env=env, capture_output=True, text=True)
    lines = child.stderr.strip().splitlines()
    report["device_failure"] = {"returncode": child.returncode, "stderr_lines": len(lines),
                                "last_line": lines[-1] if lines else "", "seconds": round(time.perf_counter() - start, 1)}
    # ggml_vulkan prints its device list to stderr itself on first use; the error must be one line after it.
    if child.returncode != 2 or "Traceback" in child.stderr or not report["device_failure"]["last_line"].startswith("llama.cpp"):
        failed.append(f"device failure: exit {child.returncode}, stderr ends {lines[-3:]} (want exit 2 and one W2SError line)")
    report["warnings"], report["failed"] = warnings, failed
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("cpu", "gpu"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report = cpu_step(args.out) if args.step == "cpu" else gpu_step(args.out)
    print(json.dumps({"step": args.step, **report}, indent=1))
    return 1 if report.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
