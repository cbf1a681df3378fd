"""w2s_gguf.tools.doctor on the real llama.cpp build of this machine (a CPU-only build in CI).

The GPU rows are checked with a faked GPU presence (monkeypatched detectors):
the warning and its reinstall command are the point, and no CI machine has an
unusable NVIDIA card. Without a GPU backend the feature check is skipped
(comparing the CPU with itself proves nothing); its verdict is tested where
it can fail: SmolLM2's real CPU features against perturbed copies and
against load logs of a device that did not do the work. scripts/vulkan_check.sh
runs the whole check on a real GPU backend (Vulkan on the CPU).
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
def test_report_on_a_cpu_only_build(no_gpu, test_home, monkeypatch):
    monkeypatch.setattr(doctor, "offload_features", never_loaded)
    rows = rows_by_name(doctor.doctor_report())
    assert list(rows) == ["llama-cpp-python", "ggml devices", "gpu offload", "cpu weight buffers", "unused gpu", "cache",
                          "gpu features"]
    assert rows["llama-cpp-python"] == ("ok", llama_cpp.__version__)
    assert rows["ggml devices"][0] == "ok" and "CPU [CPU]" in rows["ggml devices"][1]
    assert rows["gpu offload"] == ("ok", "no: CPU-only build")
    assert rows["unused gpu"] == ("ok", "none")
    assert rows["cache"][1].startswith(f"{test_home},") and rows["cache"][1].endswith(" GiB free")
    assert rows["gpu features"] == ("ok", "skipped: no GPU backend")


def never_loaded(*args, **kwargs):
    raise AssertionError("the model was loaded: without a GPU backend both runs would be the CPU")


def test_without_a_gpu_backend_the_feature_check_compares_nothing(monkeypatch):
    # On any build: where llama.cpp cannot offload, there is no second device to compare with.
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: False)
    monkeypatch.setattr(doctor, "offload_features", never_loaded)
    assert doctor.feature_check("smollm2-135m") == ("gpu features", "ok", "skipped: no GPU backend")


@pytest.mark.parametrize("amx", [True, False])
def test_the_cpu_weight_buffers_row_says_why_amx_buffers_are_off(monkeypatch, amx):
    from w2s_gguf.features import engine

    monkeypatch.setattr(engine, "cpu_amx_matmuls", lambda: amx)
    check, status, detail = doctor.cpu_weight_buffers_row()
    assert (check, status) == ("cpu weight buffers", "ok")
    if amx:
        assert "AMX weight buffers are off" in detail and "crashes on the first decode" in detail and "20824" in detail
    else:
        assert detail.startswith("the plain CPU buffer when texts are decoded alone") and "--decode packed" in detail


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


def test_feature_check_names_an_unknown_model(test_home, monkeypatch):
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
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


# ---------------------------------------------------------------- the GPU-vs-CPU verdict, where it can fail

@pytest.fixture(scope="module")
def cpu_features(smollm2):
    """SmolLM2's real features of doctor's check texts, computed on the CPU."""
    features, _ = doctor.offload_features(smollm2, 0)
    assert features.shape == (len(doctor.CHECK_TEXTS), 576)
    return features


def at_cosine(x: np.ndarray, cosine: float, rows=None, seed: int = 0) -> np.ndarray:
    """x with noise orthogonal to each chosen row, sized so that row's cosine to x is exactly `cosine`."""
    rng = np.random.default_rng(seed)
    out = np.array(x, dtype=np.float64)
    for i in range(len(x)) if rows is None else rows:
        noise = rng.standard_normal(x.shape[1])
        noise -= noise @ out[i] / (out[i] @ out[i]) * out[i]
        out[i] += noise / np.linalg.norm(noise) * np.linalg.norm(out[i]) * np.tan(np.arccos(cosine))
    return out.astype(np.float32)


@pytest.mark.slow
def test_matching_features_on_the_device_pass(cpu_features):
    check, status, detail = doctor.compare_features("smollm2-135m", cpu_features, cpu_features.copy(), VULKAN_LOG)
    assert status == "ok", detail
    assert detail == "smollm2-135m: 31/31 layers offloaded, 76% of the weight bytes on the GPU; GPU vs CPU features cosine >= 1.0000 on 3 texts"
    # The Vulkan build's measured distance (0.9988-0.9994 on SmolLM2, docs/gpu-and-hub.md) passes too.
    assert doctor.compare_features("smollm2-135m", cpu_features, at_cosine(cpu_features, 0.9990), VULKAN_LOG)[1] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("cosine, rows", [(0.9975, None), (0.99, None), (0.5, [1]), (-1.0, [2])],
                         ids=["all-0.9975", "all-0.99", "one-0.5", "one-flipped"])
def test_different_features_fail_even_in_one_text(cpu_features, cosine, rows):
    gpu = at_cosine(cpu_features, cosine, rows) if cosine > -1 else cpu_features * np.r_[1, 1, -1][:, None]
    check, status, detail = doctor.compare_features("smollm2-135m", cpu_features, gpu, VULKAN_LOG)
    assert (check, status) == ("gpu features", "fail"), detail
    assert f"cosine >= {cosine:.4f} on 3 texts" in detail and "computes different features" in detail


@pytest.mark.slow
@pytest.mark.parametrize("log, where", [
    (STARVED_LOG, "31/31 layers offloaded, 0% of the weight bytes on the GPU"),  # "offloaded", weights on the host
    ("load_tensors: offloaded 12/31 layers to GPU\nload_tensors: CUDA0 model buffer size = 40.00 MiB\n", "12/31 layers offloaded"),
    ("load_tensors:   CPU_Mapped model buffer size =    92.10 MiB\n", "offload count not logged, 0% of the weight bytes"),
], ids=["weights-on-host", "some-layers", "no-offload-line"])
def test_identical_features_fail_when_the_device_did_not_do_the_work(cpu_features, log, where):
    check, status, detail = doctor.compare_features("smollm2-135m", cpu_features, cpu_features.copy(), log)
    assert status == "fail" and where in detail and "not doing the work" in detail, detail


@pytest.mark.slow
def test_feature_check_wires_both_loads_into_the_verdict(smollm2, monkeypatch):
    # A GPU build whose device computes slightly wrong features: the real CPU run against a perturbed "GPU" run.
    real = doctor.offload_features
    calls = []

    def fake_gpu(model, n_gpu_layers, texts=doctor.CHECK_TEXTS):
        calls.append(n_gpu_layers)
        features, log = real(model, 0, texts)
        return (features, log) if n_gpu_layers == 0 else (at_cosine(features, 0.99, [0]), [VULKAN_LOG])

    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    monkeypatch.setattr(doctor, "offload_features", fake_gpu)
    check, status, detail = doctor.feature_check("smollm2-135m")
    assert calls == [0, -1] and status == "fail" and "cosine >= 0.9900" in detail, detail


def test_doctor_command_prints_every_check_and_exits_0_on_this_cpu_build(monkeypatch, capsys):
    from conftest import invoke_cli

    code, out, err = invoke_cli(monkeypatch, capsys, "doctor", "--no-features")
    assert code == 0, err
    for check in ("llama-cpp-python", "ggml devices", "gpu offload", "cpu weight buffers", "unused gpu", "cache",
                  "gpu features"):
        assert check in out, check
