"""w2s_gguf.tools.doctor on the real llama.cpp build of this machine (a CPU-only build in CI).

The GPU rows are checked with a faked GPU presence (monkeypatched detectors):
the warning and its reinstall command are the point, and no CI machine has an
unusable NVIDIA card. The feature check runs for real on SmolLM2.
"""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.tools import doctor
from w2s_gguf.features.engine import batch_tokens

llama_cpp = pytest.importorskip("llama_cpp")
CPU_ONLY = not llama_cpp.llama_supports_gpu_offload()
cpu_only = pytest.mark.skipif(not CPU_ONLY, reason="asserts what a CPU-only llama.cpp build reports")


def rows_by_name(rows):
    assert len({r[0] for r in rows}) == len(rows), "check names are unique"
    assert all(status in ("ok", "warn", "fail") for _, status, _ in rows)
    return {check: (status, detail) for check, status, detail in rows}


@pytest.fixture
def no_gpu(monkeypatch):
    for name in ("_has_nvidia", "_is_apple_silicon", "_has_amd"):
        monkeypatch.setattr(doctor, name, lambda: False)
    return monkeypatch


def test_batch_tokens_cpu_is_the_measured_256_within_the_context():
    assert batch_tokens(512) == 256 == batch_tokens(512, gpu_offload=False)
    assert batch_tokens(4096) == 256
    assert batch_tokens(100) == 100  # never more than the context holds


def test_batch_tokens_gpu_starts_from_llama_cpp_defaults():
    assert batch_tokens(512, gpu_offload=True) == 2048
    assert batch_tokens(4096, gpu_offload=True) == 4096  # one text always fits its batch


def test_offloaded_layers_reads_llama_cpp_log_line():
    log = ["load_tensors: offloading 30 repeating layers to GPU\n",
           "load_tensors: offloaded 31/31 layers to GPU\n", "load_tensors: Vulkan0 model buffer size = 98 MiB\n"]
    assert doctor.offloaded_layers(log) == (31, 31)
    assert doctor.offloaded_layers("load_tensors: offloaded 12/31 layers to GPU") == (12, 31)
    assert doctor.offloaded_layers(["print_info: n_layer = 30\n"]) is None


# llama.cpp's load log of SmolLM2 in the Vulkan build (scripts/vulkan_check.sh, 2026-11-24), abridged.
VULKAN_LOG = """llama_model_loader: loaded meta data with 35 key-value pairs and 272 tensors from smollm2.gguf (version GGUF V3 (latest))
done_getting_tensors: tensor 'token_embd.weight' (q8_0) (and 0 others) cannot be used with preferred buffer type Vulkan_Host, using CPU instead
load_tensors: offloaded 31/31 layers to GPU
load_tensors:   CPU_Mapped model buffer size =    28.69 MiB
load_tensors:      Vulkan0 model buffer size =    92.10 MiB
"""
# The same load on a device whose buffers hold at most 1 MiB: "31/31", yet the weights stay on the host.
STARVED_LOG = """llama_model_loader: loaded meta data with 35 key-value pairs and 272 tensors from smollm2.gguf (version GGUF V3 (latest))
done_getting_tensors: tensor 'token_embd.weight' (q8_0) (and 211 others) cannot be used with preferred buffer type Vulkan_Host, using CPU instead
load_tensors: offloaded 31/31 layers to GPU
load_tensors:   CPU_Mapped model buffer size =    92.10 MiB
load_tensors:      Vulkan0 model buffer size =     0.13 MiB
"""


def test_weight_buffers_and_host_fallback_read_the_load_log():
    assert doctor.weight_buffers(VULKAN_LOG) == {"CPU_Mapped": 28.69, "Vulkan0": 92.10}
    assert doctor.device_share(doctor.weight_buffers(VULKAN_LOG)) == pytest.approx(92.10 / 120.79)
    assert doctor.host_fallback(VULKAN_LOG) == (1, 272)
    assert doctor.all_on_device(VULKAN_LOG)
    assert doctor.weight_buffers(STARVED_LOG) == {"CPU_Mapped": 92.10, "Vulkan0": 0.13}
    assert doctor.host_fallback(STARVED_LOG) == (212, 272)
    assert doctor.offloaded_layers(STARVED_LOG) == (31, 31) and not doctor.all_on_device(STARVED_LOG)
    assert not doctor.all_on_device("load_tensors: offloaded 12/31 layers to GPU\n")
    assert doctor.device_share({}) == 0.0


def test_format_report_and_exit_code():
    rows = [("cache", "ok", "/tmp/x, 9.0 GiB free"), ("unused gpu", "warn", "reinstall"), ("gpu features", "fail", "bad")]
    text = doctor.format_report(rows).splitlines()
    assert text[0].split() == ["OK", "cache", "/tmp/x,", "9.0", "GiB", "free"]
    assert text[1].startswith("WARN  unused gpu")
    assert text[2].startswith("FAIL  gpu features")
    assert doctor.exit_code(rows) == 1
    assert doctor.exit_code(rows[:2]) == 0  # a warning is not a failure


def test_ggml_devices_lists_the_cpu_device_with_its_memory():
    devices = doctor.ggml_devices()
    cpu = [d for d in devices if d["type"] == "CPU"]
    assert cpu, devices
    assert cpu[0]["name"] == "CPU" and cpu[0]["description"]
    assert 0 < cpu[0]["free"] <= cpu[0]["total"]


@cpu_only
def test_report_on_a_cpu_only_build(no_gpu, test_home):
    rows = rows_by_name(doctor.doctor_report())
    assert list(rows) == ["llama-cpp-python", "ggml devices", "gpu offload", "cpu weight buffers", "unused gpu", "cache",
                          "gpu features"]
    assert rows["llama-cpp-python"] == ("ok", llama_cpp.__version__)
    assert rows["ggml devices"][0] == "ok" and "CPU [CPU]" in rows["ggml devices"][1]
    assert rows["gpu offload"] == ("ok", "no: CPU-only build")
    assert rows["unused gpu"] == ("ok", "none")
    assert rows["cache"][1].startswith(f"{test_home},") and rows["cache"][1].endswith(" GiB free")
    assert rows["gpu features"] == ("ok", "skipped: CPU-only build")


@pytest.mark.parametrize("amx", [True, False])
def test_the_cpu_weight_buffers_row_says_why_amx_buffers_are_off(monkeypatch, amx):
    from w2s_gguf.features import engine

    monkeypatch.setattr(engine, "cpu_amx_matmuls", lambda: amx)
    check, status, detail = doctor.cpu_weight_buffers_row()
    assert (check, status) == ("cpu weight buffers", "ok")
    if amx:
        assert "AMX weight buffers are off" in detail and "crashes on the first decode" in detail and "20824" in detail
    else:
        assert detail == "llama.cpp's defaults (this build has no AMX matmuls)"


def test_the_engine_loads_the_weights_where_the_row_says(smollm2):
    """On an AMX build llama.cpp would put the weights in an "AMX" buffer and crash on the first decode; the
    engine keeps them in the plain CPU buffer, and decodes."""
    from w2s_gguf.features.engine import Embedder, cpu_amx_matmuls

    detail = doctor.cpu_weight_buffers_row()[2]
    assert ("AMX weight buffers are off" in detail) == cpu_amx_matmuls()
    with doctor.captured_llama_log() as log:
        emb = Embedder(smollm2, max_tokens=64, n_gpu_layers=0)
    try:
        buffers = doctor.weight_buffers(log)
        assert "AMX" not in buffers and buffers.get("CPU_Mapped", 0) > 50  # SmolLM2 Q4_1: 92 MiB
        vector = emb.embed_batch([emb.tokenize("The film was a delight.")[0]])  # checked first: this would crash
    finally:
        emb.close()
    assert np.isfinite(vector).all()


@cpu_only
def test_unused_nvidia_gpu_warns_with_the_cuda_reinstall_command(no_gpu):
    no_gpu.setattr(doctor, "_has_nvidia", lambda: True)
    rows = rows_by_name(doctor.doctor_report(check_features=False))
    status, detail = rows["unused gpu"]
    assert status == "warn"
    assert "an NVIDIA GPU" in detail
    assert detail.endswith('CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-cache-dir llama-cpp-python')
    assert doctor.exit_code(list(doctor.doctor_report(check_features=False))) == 0  # slower, not broken


@cpu_only
def test_apple_silicon_with_a_cpu_build_warns_with_metal(no_gpu):
    no_gpu.setattr(doctor, "_is_apple_silicon", lambda: True)
    status, detail = rows_by_name(doctor.doctor_report(check_features=False))["unused gpu"]
    assert status == "warn" and "Apple Silicon" in detail and 'CMAKE_ARGS="-DGGML_METAL=on"' in detail


def test_detectors_find_no_gpu_on_a_machine_without_one():
    # The CI machines have none; a developer's GPU box legitimately answers otherwise.
    if doctor._has_nvidia() or doctor._is_apple_silicon() or doctor._has_amd():
        pytest.skip("this machine has a GPU")
    assert doctor.machine_gpu() is None


def test_low_disk_warns(no_gpu, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 9 << 30, 1 << 30))
    status, detail = rows_by_name(doctor.doctor_report(check_features=False))["cache"]
    assert status == "warn" and "1.0 GiB free" in detail and "W2S_GGUF_HOME" in detail


def test_feature_check_names_an_unknown_model(test_home):
    check, status, detail = doctor.feature_check("no-such-model")
    assert (check, status) == ("gpu features", "warn")
    assert "unknown model 'no-such-model'" in detail


@pytest.mark.slow
def test_captured_llama_log_sees_the_load_and_restores_the_callback(smollm2):
    from llama_cpp import _logger

    features, load_log = doctor.offload_features(smollm2, 0, texts=["A fine film."])
    assert features.shape == (1, 576) and np.isfinite(features).all()
    assert doctor.weight_buffers(load_log).get("CPU_Mapped", 0) > 50  # the 98 MB file, memory-mapped
    if CPU_ONLY:
        assert doctor.offloaded_layers(load_log) is None  # a CPU-only build logs no offload line
    with doctor.captured_llama_log() as log:
        doctor.offload_features(smollm2, 0, texts=["A fine film."])
    text = "".join(log)
    assert "llama_model_loader" in text and "n_embd" in text  # llama.cpp's own load log, every level
    # Afterwards llama-cpp-python's callback is back: nothing more is collected.
    n = len(log)
    doctor.offload_features(smollm2, 0, texts=["Another."])
    assert len(log) == n
    assert _logger.llama_log_callback is not None


@pytest.mark.slow
def test_feature_check_runs_the_real_model_both_ways(smollm2):
    # On a CPU-only build both ways run on the CPU: the check must pass with (near) identical features.
    check, status, detail = doctor.feature_check("smollm2-135m")
    assert status == "ok", detail
    assert detail.startswith("smollm2-135m: ")
    assert ("0% of the weight bytes on the GPU" in detail) == CPU_ONLY
    assert ("offload count not logged" in detail) == CPU_ONLY
    worst = float(detail.split("cosine >= ")[1].split()[0])
    assert doctor.MIN_COSINE <= worst <= 1.0 + 1e-6


def test_doctor_command_prints_every_check_and_exits_0_on_this_cpu_build(monkeypatch, capsys):
    from conftest import invoke_cli

    code, out, err = invoke_cli(monkeypatch, capsys, "doctor", "--no-features")
    assert code == 0, err
    for check in ("llama-cpp-python", "ggml devices", "gpu offload", "cpu weight buffers", "unused gpu", "cache",
                  "gpu features"):
        assert check in out, check
