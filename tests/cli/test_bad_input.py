"""Bad input: one line on stderr starting "error: ", exit code 2, no traceback, nothing damaged.

Most cases call `w2s_gguf.cli.main` in-process (fast); a few run the real
`python -m w2s_gguf.cli` to prove a real process prints no traceback and no
llama.cpp log noise. Every case runs with its own empty W2S_GGUF_HOME; the
real SmolLM2 file (for a truncated copy and the sha256 case) comes from the
shared test cache (conftest.py's `smollm2` fixture).
"""

from __future__ import annotations

from conftest import invoke_cli

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


REPO = Path(__file__).resolve().parents[2]
FAST = ["--n-train", "8", "--n-test", "4", "--seeds", "1", "--no-progress"]


# ---------------------------------------------------------------- helpers

def minimal_gguf(arch: str = "nosucharch") -> bytes:
    """A valid GGUF v3 file: magic, version 3, 0 tensors, one kv general.architecture=arch."""
    def string(s: str) -> bytes:
        raw = s.encode()
        return struct.pack("<Q", len(raw)) + raw

    return b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + string("general.architecture") + struct.pack("<I", 8) + string(arch)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def good_rows(n: int = 40) -> list[dict]:
    """Both labels, alternating; the last 12 rows are the test split."""
    return [{"text": f"Review {i}: the film was {'great' if i % 2 else 'dull'} ({i}).", "label": i % 2,
             "split": "test" if i >= n - 12 else "train"} for i in range(n)]


def one_error_line(code, err: str, strict: bool = True) -> str:
    """The project's rule for bad input; returns the error line.

    strict: stderr is exactly that one line. Otherwise progress lines
    ("[w2s-gguf] ...") may come before it, but the error is still one line.
    """
    assert code == 2, f"exit code {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines, "nothing on stderr"
    if strict:
        assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    else:
        assert all(line.startswith("[w2s-gguf] ") for line in lines[:-1]), err
    assert lines[-1].startswith("error: "), err
    return lines[-1]


def snapshot(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under root (lock files left out: they are empty and expected)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix != ".lock":
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _no_download(package, version, workdir):
    raise AssertionError(f"a bad-input test tried to download {package}=={version}")


def _no_connection(address, *args, **kwargs):
    raise AssertionError(f"a bad-input test opened a connection to {address}")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """An empty W2S_GGUF_HOME, the hub in offline mode (never asked: any connection fails the test),
    and tmp_path as the working folder."""
    import socket

    from w2s_gguf.common.network import hub_reachable

    home = tmp_path / "home"
    monkeypatch.setenv("W2S_GGUF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setattr(socket, "create_connection", _no_connection)
    monkeypatch.setattr("w2s_gguf.common.pypi.download_wheel", _no_download)
    monkeypatch.chdir(tmp_path)
    hub_reachable.cache_clear()
    return home


@pytest.fixture
def cli(env, monkeypatch, capsys):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    return lambda *args: invoke_cli(monkeypatch, capsys, *args)


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "data.jsonl", good_rows())


def run_args(data: Path, out: Path, weak: str = "smollm2-135m", strong: str = "gemma3-270m", *extra) -> list[str]:
    """A `run` that would work; later options in `extra` override earlier ones (click keeps the last)."""
    return ["run", "--weak", weak, "--strong", strong, "--data", data, "--out", out, *FAST, *extra]


def subprocess_cli(args: list, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "W2S_GGUF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "w2s_gguf.cli", *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- models

def test_unknown_model_name(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak="nosuchmodel"))[::2])
    assert "nosuchmodel" in line and "registry name" in line and "smollm2-135m" in line


def test_missing_gguf_path(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak=tmp_path / "missing.gguf"))[::2])
    assert "missing.gguf" in line and "does not exist" in line


def test_directory_as_model(cli, data, tmp_path):
    (tmp_path / "models.gguf").mkdir()
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak=tmp_path / "models.gguf"))[::2])
    assert "is a directory" in line and "model file" in line


def test_empty_model_file(cli, data, tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak=tmp_path / "empty.gguf"))[::2])
    assert "empty" in line and "re-download" in line


def test_non_gguf_file(cli, data, tmp_path):
    (tmp_path / "notes.txt").write_text("these are not model weights\n" * 10)
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak=tmp_path / "notes.txt"))[::2])
    assert "not a GGUF file" in line and ".gguf" in line


def test_truncated_gguf(cli, data, tmp_path, smollm2):
    with open(smollm2.path, "rb") as fh:
        (tmp_path / "cut.gguf").write_bytes(fh.read(1 << 20))
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak=tmp_path / "cut.gguf"))[::2])
    assert "truncated" in line and "re-download" in line


def test_architecture_llama_cpp_cannot_load(tmp_path, data, smollm2):
    """Our header check accepts the file; llama.cpp refuses it. A real process, so llama.cpp's own
    C-level log lines would show if they leaked."""
    (tmp_path / "odd.gguf").write_bytes(minimal_gguf("nosucharch"))
    proc = subprocess_cli(run_args(data, tmp_path / "out", tmp_path / "odd.gguf", smollm2.path), tmp_path)
    # llama.cpp reads the vocabulary before any progress line is printed: strict.
    line = one_error_line(proc.returncode, proc.stderr)
    assert "nosucharch" in line and "llama.cpp cannot load" in line and "llama-cpp-python" in line
    assert not (tmp_path / "out" / "results.json").exists()


def _registry(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-models.toml"
    path.write_text(text)
    return path


def test_sha256_mismatch_in_registry_entry(cli, data, tmp_path, smollm2):
    reg = _registry(tmp_path, f'[models.mine]\nsource = "path"\npath = "{smollm2.path}"\nsha256 = "{"0" * 64}"\n')
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "mine", "gemma3-270m", "--registry", reg))[::2])
    assert "sha256" in line and "expected 0000" in line and "fix the entry" in line


def test_registry_toml_syntax_error(cli, data, tmp_path):
    reg = _registry(tmp_path, '[models.mine\nsource = "path"\n')
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "mine", "gemma3-270m", "--registry", reg))[::2])
    assert "not valid TOML" in line and "my-models.toml" in line and "fix the syntax" in line


def test_registry_entry_missing_field(cli, data, tmp_path):
    reg = _registry(tmp_path, '[models.mine]\nsource = "hf"\nrepo = "someone/some-GGUF"\nfilename = "m.gguf"\n')
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "mine", "gemma3-270m", "--registry", reg))[::2])
    assert "'mine'" in line and "missing field" in line and "revision" in line


def test_registry_file_missing(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--registry", tmp_path / "nope.toml"))[::2])
    assert "nope.toml" in line and "does not exist" in line


def test_registry_name_with_gguf_suffix_needs_hub_fails_at_once(tmp_path, data):
    """`llama1-7b.gguf` is no file here but names a registry entry; the hub is in offline mode.
    A real process: one line, no traceback (the fixture `env` proves no connection is tried)."""
    proc = subprocess_cli(run_args(data, tmp_path / "out", weak="llama1-7b.gguf"), tmp_path)
    line = one_error_line(proc.returncode, proc.stderr)
    assert "Hugging Face hub" in line and "'llama1-7b'" in line and "pass its path" in line and "PATH.gguf" in line
    assert "offline mode (HF_HUB_OFFLINE" in line
    assert not list((tmp_path / "home").rglob("*.gguf*")), "nothing may be left under the model's name"


def test_models_pull_in_offline_mode_opens_no_connection(cli, data, tmp_path):
    # `env` makes any connection attempt fail the test: the answer comes without asking the network.
    line = one_error_line(*cli("models", "pull", "llama2-7b")[::2])
    assert line.startswith("error: cannot reach the Hugging Face hub (https://huggingface.co: offline mode"), line
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", weak="llama1-7b.gguf"))[::2])
    assert "offline mode" in line and "'llama1-7b'" in line


def test_models_pull_unknown_name(cli):
    line = one_error_line(*cli("models", "pull", "nosuchmodel")[::2])
    assert "unknown model 'nosuchmodel'" in line and "smollm2-135m" in line


# ---------------------------------------------------------------- tasks and data

def test_unknown_task(cli, tmp_path):
    line = one_error_line(*cli("run", "--task", "nosuchtask", "--out", tmp_path / "out", *FAST)[::2])
    assert "unknown task 'nosuchtask'" in line and "sentiment" in line and "tasks list" in line


def test_data_file_missing(cli, tmp_path):
    line = one_error_line(*cli(*run_args(tmp_path / "missing.jsonl", tmp_path / "out"))[::2])
    assert "missing.jsonl" in line and "not found" in line


@pytest.mark.parametrize("name, rows, expect", [
    ("columns", [{"review": "good film", "sentiment": 1}, {"review": "bad film", "sentiment": 0}],
     ["no text or label column", "review, sentiment", "rename"]),
    ("labels", [{"text": "good", "label": 1}, {"text": "meh", "label": 2}, {"text": "bad", "label": 0}],
     ["labels other than 0/1", "2 (row 2)", "use 1 for positive"]),
    ("empty_text", [{"text": "good", "label": 1}, {"text": "   ", "label": 0}], ["row 2", "empty text"]),
    ("one_class", [{"text": f"good {i}", "label": 1} for i in range(30)], ["only label 1", "both 0 and 1"]),
])
def test_bad_data_file(cli, tmp_path, name, rows, expect):
    data = write_jsonl(tmp_path / f"{name}.jsonl", rows)
    line = one_error_line(*cli(*run_args(data, tmp_path / "out"))[::2])
    for part in expect:
        assert part in line, line
    assert f"{name}.jsonl" in line


def test_n_train_larger_than_data(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--n-train", "100"))[::2])
    assert "--n-train is 100 but task 'custom' has 28 train docs; lower it to at most 28" in line


@pytest.mark.parametrize("option, value", [
    ("--n-train", "0"), ("--n-train", "-5"), ("--n-test", "0"), ("--n-test", "-3"),
    ("--seeds", "0"), ("--seeds", "-1"), ("--max-tokens", "0"), ("--max-tokens", "-8"),
])
def test_zero_and_negative_sizes(cli, data, tmp_path, option, value):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", option, value))[::2])
    assert option in line and f"(got {value})" in line
    assert not (tmp_path / "home" / "embeddings").exists(), "bad settings must fail before touching the cache"


def test_unknown_loss(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--losses", "xent,nosuch"))[::2])
    assert "--methods has a problem: unknown method 'nosuch'" in line and "xent" in line and "logconf" in line


def test_bad_pooling(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--pooling", "max"))[::2])
    assert "--pooling must be last or mean (got 'max')" in line


def test_bad_decode(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--decode", "fast"))[::2])
    assert "--decode must be one of auto, alone, packed (got 'fast')" in line
    assert not (tmp_path / "home" / "embeddings").exists(), "bad settings must fail before touching the cache"


# ---------------------------------------------------------------- output folder

def test_output_folder_under_a_regular_file(cli, data, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    line = one_error_line(*cli(*run_args(data, blocker / "out"))[::2])
    assert "blocker/out" in line and "not writable" in line and "--out" in line
    assert blocker.read_text() == "a file, not a folder\n"


def test_results_folder_from_a_newer_schema(cli, data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    newer = json.dumps({"schema_version": 99, "kind": "w2s-gguf results", "note": "from the future"}).encode()
    (out / "results.json").write_bytes(newer)
    line = one_error_line(*cli(*run_args(data, out))[::2])
    assert "newer w2s-gguf" in line and "schema 99" in line and "upgrade" in line and "--out" in line
    assert (out / "results.json").read_bytes() == newer
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


# ---------------------------------------------------------------- nothing is damaged

def test_bad_runs_damage_nothing(cli, tmp_path, env, smollm2):
    """Earlier results (in --out itself and in another folder) and every cache file survive
    bad runs that fail at each stage: settings, data, registry, model files, llama.cpp."""
    from w2s_gguf.features.pipeline import EmbeddingStore, StoreSettings, text_key
    from w2s_gguf.models import load_registry, model_cache_path
    from w2s_gguf.common.storage import atomic_write_json

    # A cache as earlier runs leave it: the model, its hash index, an embedding shard.
    cached_model = model_cache_path(load_registry()["smollm2-135m"])
    cached_model.parent.mkdir(parents=True)
    shutil.copyfile(smollm2.path, cached_model)
    store = EmbeddingStore(StoreSettings(smollm2.sha256, "last", 512, "0.0.0", False))
    store.add_shard([text_key("a"), text_key("b")], np.arange(8, dtype=np.float32).reshape(2, 4), {"n_tokens": 4})
    from w2s_gguf.models import cached_sha256
    assert cached_sha256(cached_model) == smollm2.sha256
    hashes_before = json.loads((env / "file-hashes.json").read_text())

    # Two earlier results folders: `done` (reused as --out by the bad runs) and `other`.
    results = {"schema_version": 1, "kind": "w2s-gguf results", "pairs": [], "ground_truth": {}}
    for name in ("done", "other"):
        atomic_write_json(tmp_path / name / "results.json", results)
        (tmp_path / name / "predictions.npz").write_bytes(b"npz bytes from an earlier run")
        (tmp_path / name / "report.md").write_text("# an earlier report\n")

    data = write_jsonl(tmp_path / "data.jsonl", good_rows())
    write_jsonl(tmp_path / "oneclass.jsonl", [{"text": f"t{i}", "label": 0} for i in range(20)])
    (tmp_path / "odd.gguf").write_bytes(minimal_gguf("nosucharch"))
    with open(smollm2.path, "rb") as fh:
        (tmp_path / "cut.gguf").write_bytes(fh.read(1 << 20))
    (tmp_path / "bad.toml").write_text(f'[models.smollm2-135m]\nsource = "path"\npath = "{cached_model}"\nsha256 = "{"1" * 64}"\n')

    before = {name: snapshot(tmp_path / name) for name in ("done", "other")}
    before_home = {k: v for k, v in snapshot(env).items() if k != "file-hashes.json"}

    out = tmp_path / "done"
    bad_runs = [
        run_args(data, out, "smollm2-135m", "gemma3-270m", "--losses", "nosuch"),
        run_args(data, out, "smollm2-135m", "gemma3-270m", "--n-train", "0"),
        run_args(tmp_path / "oneclass.jsonl", out),
        run_args(data, out, "smollm2-135m", "gemma3-270m", "--n-train", "1000"),
        run_args(data, out, "smollm2-135m", "gemma3-270m", "--registry", tmp_path / "bad.toml"),
        run_args(data, out, tmp_path / "cut.gguf", "smollm2-135m"),
        run_args(data, out, "nosuchmodel", "smollm2-135m"),
        run_args(data, out, "llama1-7b.gguf", "smollm2-135m"),
    ]
    for args in bad_runs:
        code, _, err = cli(*args)
        one_error_line(code, err)
    code, _, err = cli(*run_args(data, out, tmp_path / "odd.gguf", "smollm2-135m"))  # reaches llama.cpp
    one_error_line(code, err)

    for name in ("done", "other"):
        assert snapshot(tmp_path / name) == before[name], f"{name}/ changed"
    after_home = snapshot(env)
    for path, sha in before_home.items():
        assert after_home.get(path) == sha, f"cache file {path} changed or vanished"
    hashes_after = json.loads((env / "file-hashes.json").read_text())
    assert hashes_before.items() <= hashes_after.items()
    assert not [p for p in env.rglob("*") if p.name.endswith((".part", ".tmp")) or p.name.startswith(".write-test-")]
    assert not (env / "models" / "llama1-7b" / "llama-7b.Q4_K_M.gguf").exists()
