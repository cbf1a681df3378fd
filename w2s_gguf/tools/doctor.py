"""`w2s-gguf doctor`: what this machine and this llama.cpp build can do.

Each check is a (name, status, detail) row, status "ok", "warn" or "fail".
The GPU rows answer the common surprise: pip's llama-cpp-python is built for
the CPU only, so a machine with an NVIDIA card runs on the CPU until the
package is rebuilt with CUDA. The last row proves that offloading changes
nothing but speed: the default weak model's features with every layer on the
GPU match those computed on the CPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import re
import shutil
import sys
from pathlib import Path

import numpy as np

Check = tuple[str, str, str]  # (check, "ok" | "warn" | "fail", detail)

MIN_LLAMA_CPP = (0, 3, 24)  # older versions misalign several texts embedded in one call
MIN_FREE_BYTES = 5 << 30  # a 7B Q4 model is about 4 GB
MIN_COSINE = 0.998  # Vulkan vs CPU build measured 0.9988-0.9994 on SmolLM2 (docs/gpu-and-hub.md)
DEV_TYPES = {0: "CPU", 1: "GPU", 2: "IGPU", 3: "ACCEL", 4: "META"}  # enum ggml_backend_dev_type
GPU_TYPES = ("GPU", "IGPU")
CHECK_TEXTS = ("The film was a delight from start to finish.",
               "A dull, lifeless script and wooden acting.",
               "Chess is a game of two players on a board of 64 squares.")

REINSTALL = 'CMAKE_ARGS="{flag}" pip install --force-reinstall --no-cache-dir llama-cpp-python'
CUDA_FLAG, METAL_FLAG, VULKAN_FLAG = "-DGGML_CUDA=on", "-DGGML_METAL=on", "-DGGML_VULKAN=on"

# ---------------------------------------------------------------- ggml devices

def ggml_devices() -> list[dict]:
    """Every device the loaded ggml registers: name, description, type, memory (bytes)."""
    from llama_cpp._ggml import libggml

    lib = libggml
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    for fn in (lib.ggml_backend_dev_name, lib.ggml_backend_dev_description):
        fn.argtypes, fn.restype = [ctypes.c_void_p], ctypes.c_char_p
    lib.ggml_backend_dev_type.argtypes, lib.ggml_backend_dev_type.restype = [ctypes.c_void_p], ctypes.c_int
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)]
    lib.ggml_backend_dev_memory.restype = None
    devices = []
    for i in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(i)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        devices.append({
            "name": (lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
            "description": (lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
            "type": DEV_TYPES.get(lib.ggml_backend_dev_type(dev), "?"),
            "free": int(free.value), "total": int(total.value),
        })
    return devices


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def _has_nvidia() -> bool:
    return bool(shutil.which("nvidia-smi")) or Path("/proc/driver/nvidia").exists()


def _is_apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def _has_amd() -> bool:
    return Path("/dev/kfd").exists()  # the ROCm kernel driver


def machine_gpu() -> tuple[str, str] | None:
    """(what, CMake flag) for a GPU this machine has, from files and tools only (no driver calls)."""
    if _has_nvidia():
        return "an NVIDIA GPU", CUDA_FLAG
    if _is_apple_silicon():
        return "Apple Silicon", METAL_FLAG  # Metal is on by default when building on a Mac
    if _has_amd():
        return "an AMD GPU", VULKAN_FLAG  # the simplest build for AMD (ROCm: -DGGML_HIP=on)
    return None


# ---------------------------------------------------------------- llama.cpp log

_log_stack: list[list[str]] = []  # the lists of the open captured_llama_log blocks
_collector = None  # one ctypes callback for the process, kept alive here


@contextlib.contextmanager
def captured_llama_log():
    """Collect llama.cpp's log text (every level) into a list while the block runs; blocks nest."""
    global _collector
    import llama_cpp
    from llama_cpp import _logger

    if _collector is None:
        @llama_cpp.llama_log_callback
        def _collect(level, text, user_data):
            for lines in _log_stack:
                lines.append(text.decode("utf-8", errors="replace"))
        _collector = _collect
    lines: list[str] = []
    if not _log_stack:
        llama_cpp.llama_log_set(_collector, ctypes.c_void_p(0))
    _log_stack.append(lines)
    try:
        yield lines
    finally:
        _log_stack.pop()  # blocks nest, so ours is the innermost
        if not _log_stack:  # back to llama-cpp-python's own callback
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))


def offloaded_layers(log: list[str] | str) -> tuple[int, int] | None:
    """(offloaded, total) from llama.cpp's "offloaded N/M layers to GPU" line, if it logged one."""
    text = log if isinstance(log, str) else "".join(log)
    found = re.findall(r"offloaded (\d+)/(\d+) layers to GPU", text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def weight_buffers(log: list[str] | str) -> dict[str, float]:
    """MiB of model weights per buffer ("Vulkan0", "CUDA0", "CPU_Mapped", ...) from llama.cpp's load log.

    The offload line alone is no proof: a device whose buffers cannot hold a
    tensor gets the layer "offloaded" while its weights stay in host memory.
    """
    text = log if isinstance(log, str) else "".join(log)
    sizes: dict[str, float] = {}
    for name, mib in re.findall(r"(\S+) model buffer size =\s*([\d.]+) MiB", text):
        sizes[name] = sizes.get(name, 0.0) + float(mib)
    return sizes


def device_share(buffers: dict[str, float]) -> float:
    """Fraction of the weight MiB in non-CPU buffers (for the report: the input embeddings stay on the host)."""
    total = sum(buffers.values())
    return sum(v for k, v in buffers.items() if not k.startswith("CPU")) / total if total else 0.0


def host_fallback(log: list[str] | str) -> tuple[int, int]:
    """(tensors llama.cpp moved off their preferred device buffer, tensors in the file), from its debug log.

    Normally only the input embeddings move (1-2 tensors); a device that cannot
    hold the weights moves nearly all of them while still logging "offloaded N/N".
    """
    text = log if isinstance(log, str) else "".join(log)
    moved = re.findall(r"\(and (\d+) others\) cannot be used with preferred buffer type", text)
    total = re.findall(r"loaded meta data with \d+ key-value pairs and (\d+) tensors", text)
    return sum(int(n) + 1 for n in moved), int(total[-1]) if total else 0


def all_on_device(log: list[str] | str) -> bool:
    """Every layer offloaded and at most a tenth of the tensors left on the host."""
    layers, (moved, total) = offloaded_layers(log), host_fallback(log)
    return layers is not None and layers[0] == layers[1] and total > 0 and moved <= total // 10


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def offload_features(model, n_gpu_layers: int, texts=CHECK_TEXTS) -> tuple[np.ndarray, list[str]]:
    """Features of `texts` (one text per batch) through the extraction engine, and llama.cpp's load log."""
    from ..features.capture import LayerEmbedder

    with captured_llama_log() as log:
        emb = LayerEmbedder(model, n_gpu_layers=n_gpu_layers, max_tokens=64)
    try:
        return np.stack([emb.embed_batch([emb.tokenize(t)[0]])[0, 0] for t in texts]), log
    finally:
        emb.close()


# ---------------------------------------------------------------- the report

def doctor_report(model: str = "smollm2-135m", check_features: bool = True, fetch: bool = True) -> list[Check]:
    """All checks, in the order a user reads them."""
    rows: list[Check] = []
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:
        return [("llama-cpp-python", "fail", f"cannot import llama_cpp ({exc}); pip install llama-cpp-python")]
    version = llama_cpp.__version__
    old = tuple(int(p) for p in re.findall(r"\d+", version)[:3]) < MIN_LLAMA_CPP
    rows.append(("llama-cpp-python", "warn" if old else "ok",
                 f"{version}" + (" is older than 0.3.24 (misaligned batched embeddings); pip install -U llama-cpp-python" if old else "")))

    devices = ggml_devices()
    gpus = [d for d in devices if d["type"] in GPU_TYPES]
    rows.append(("ggml devices", "ok" if devices else "warn", "; ".join(
        f"{d['name']} [{d['type']}] {d['description']}, {_gib(d['free'])} free of {_gib(d['total'])}" for d in devices)
        or "none registered"))
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    rows.append(("gpu offload", "ok", f"yes, to {', '.join(d['name'] for d in gpus)}" if offload and gpus
                 else "yes, but no GPU device was found (driver missing?)" if offload else "no: CPU-only build"))

    rows.append(cpu_weight_buffers_row())

    found = machine_gpu()
    if found and not gpus:
        what, flag = found
        rows.append(("unused gpu", "warn", f"this machine has {what} but this llama-cpp-python build cannot use it; "
                     f"reinstall with: {REINSTALL.format(flag=flag)}"))
    else:
        rows.append(("unused gpu", "ok", "none" if not found else f"{found[0]}, used by this build"))

    from ..common.storage import cache_home

    home = cache_home()
    free = shutil.disk_usage(home).free
    rows.append(("cache", "ok" if free >= MIN_FREE_BYTES else "warn", f"{home}, {_gib(free)} free"
                 + ("" if free >= MIN_FREE_BYTES else "; a 7B model needs about 4 GiB: set W2S_GGUF_HOME to a larger disk")))

    if not check_features:
        rows.append(("gpu features", "ok", "skipped: not asked"))
    elif offload and not gpus:
        rows.append(("gpu features", "ok", "skipped: no GPU device"))
    else:
        rows.append(feature_check(model, fetch))
    return rows


def cpu_weight_buffers_row() -> Check:
    """Where the engine keeps the weights on the CPU (engine.weight_buffers)."""
    from ..features.engine import cpu_amx_matmuls

    if not cpu_amx_matmuls():
        return ("cpu weight buffers", "ok", "the plain CPU buffer when texts are decoded alone (the CPU's default), "
                "so a text's features do not depend on how its tokens are split into decodes; llama.cpp's extra "
                "(repacked) buffers with --decode packed")
    return ("cpu weight buffers", "ok", "llama.cpp's AMX weight buffers are off: its AMX matmul crashes on the first "
            "decode (llama.cpp issue #20824), so the weights stay in the plain CPU buffer and the ordinary kernels run")


NO_GPU_BACKEND = ("gpu features", "ok", "skipped: no GPU backend")


def feature_check(model: str, fetch: bool = True) -> Check:
    """The default weak model's features with every layer offloaded vs none (one text per batch).

    A build without a GPU backend would compare the CPU with itself: that is
    no check, so it is skipped and says so.
    """
    import llama_cpp

    from ..errors import W2SError
    from ..models import resolve_model

    if not llama_cpp.llama_supports_gpu_offload():
        return NO_GPU_BACKEND
    try:
        resolved = resolve_model(model, fetch=fetch)
    except W2SError as exc:
        return ("gpu features", "warn", f"not checked: {exc}")
    try:
        cpu, _ = offload_features(resolved, 0)
        gpu, log = offload_features(resolved, -1)
    except W2SError as exc:
        return ("gpu features", "fail", str(exc))
    return compare_features(model, cpu, gpu, log)


def compare_features(model: str, cpu: np.ndarray, gpu: np.ndarray, log: list[str] | str) -> Check:
    """The verdict on GPU features: every layer offloaded, most weights on the device, and every
    text's GPU feature within MIN_COSINE of its CPU feature."""
    worst = float(cosines(cpu, gpu).min())
    layers, share = offloaded_layers(log), device_share(weight_buffers(log))
    where = f"{layers[0]}/{layers[1]} layers offloaded" if layers else "offload count not logged"
    ok = worst >= MIN_COSINE and all_on_device(log)
    return ("gpu features", "ok" if ok else "fail",
            f"{model}: {where}, {share:.0%} of the weight bytes on the GPU; GPU vs CPU features cosine >= {worst:.4f} "
            f"on {len(cpu)} texts" + ("" if ok else f" (expected every layer, most weights on the GPU and "
                                               f"cosine >= {MIN_COSINE}): the GPU backend is not doing the work or computes different features"))


def format_report(rows: list[Check]) -> str:
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{status.upper():4}  {check:<{width}}  {detail}" for check, status, detail in rows)


def exit_code(rows: list[Check]) -> int:
    """0 when nothing failed (warnings included), 1 otherwise."""
    return int(any(status == "fail" for _, status, _ in rows))
