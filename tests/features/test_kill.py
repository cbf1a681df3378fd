"""Kill a real extraction at several points; the resumed result must equal an uninterrupted one exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

N_DOCS = 60
SHARD_DOCS = 6


def embed_cmd(model_path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "w2s_gguf.cli", "embed", "--model", str(model_path), "--task", "sentiment",
            "--split", "train", "--n", str(N_DOCS), "--max-tokens", "128", "--shard-docs", str(SHARD_DOCS),
            "--threads", "1", "--no-progress", "--out", str(out)]


def shards(home: Path) -> dict[str, float]:
    """Finished shards (those with a manifest entry) and their npy modification times."""
    return {p.name: p.with_suffix(".npy").stat().st_mtime_ns for p in (home / "embeddings").glob("*/shard-*.json")}


def start(cmd, home: Path, sigint_ignored: bool = False) -> subprocess.Popen:
    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    # sigint_ignored: start it the way a background job of a non-interactive shell (e.g. CI) is started.
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


def run_until(proc: subprocess.Popen, home: Path, n_shards: int, extra_delay: float = 0.0) -> None:
    """Wait until `n_shards` finished shards exist (then `extra_delay`), and SIGKILL the process."""
    deadline = time.time() + 300
    while len(shards(home)) < n_shards and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(extra_delay)
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def reference(smollm2, sentiment_texts, tmp_path_factory):
    """The uninterrupted run, in its own cache folder."""
    home = tmp_path_factory.mktemp("ref-home")
    out = home / "ref.npy"
    proc = subprocess.run(embed_cmd(smollm2.path, out), env={**os.environ, "W2S_GGUF_HOME": str(home)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return np.load(out)


def test_sigkill_at_several_points_then_resume_gives_identical_features(smollm2, reference, tmp_path):
    home = tmp_path / "home"
    out = tmp_path / "out.npy"
    cmd = embed_cmd(smollm2.path, out)
    # Kill points: before any shard, right after shards 1, 2, 4, 6 are finished, and mid-way between shards.
    kill_points = [(0, 0.0), (1, 0.0), (2, 0.05), (4, 0.0), (6, 0.15)]
    seen: dict[str, float] = {}
    for n_shards, delay in kill_points:
        proc = start(cmd, home)
        run_until(proc, home, n_shards, delay)
        assert proc.returncode == -signal.SIGKILL, f"the run finished before the kill point {n_shards}"
        now = shards(home)
        # Finished shards are never rewritten by a later run.
        assert all(now.get(name) == mtime for name, mtime in seen.items())
        seen = now
    assert not out.exists()
    store = next(p for p in (home / "embeddings").iterdir() if p.is_dir())  # not the extraction lock beside it
    cached = sum(len(json.loads((store / name).read_text())["keys"]) for name in seen)
    assert cached >= 6 * SHARD_DOCS
    proc = start(cmd, home)
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert all(shards(home).get(name) == mtime for name, mtime in seen.items())
    assert f"computed {N_DOCS - cached} docs" in stdout  # only what the finished shards lacked
    np.testing.assert_array_equal(np.load(out), reference)


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["terminal", "inherited-ignored"])
def test_ctrl_c_says_how_to_resume_and_exits_130(smollm2, reference, tmp_path, sigint_ignored):
    # The flaky failure on a fresh clone was a lost signal, not a late one: a process started in the
    # background of a non-interactive shell inherits SIGINT as ignored, and Python keeps it ignored.
    home = tmp_path / "home"
    proc = start(embed_cmd(smollm2.path, tmp_path / "out.npy"), home, sigint_ignored)
    deadline = time.time() + 300
    while len(shards(home)) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    # The resumed run still ends with the uninterrupted result.
    proc = start(embed_cmd(smollm2.path, tmp_path / "out.npy"), home)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), reference)


def test_two_runs_at_once_on_one_cache_agree_and_compute_each_doc_once(smollm2, reference, tmp_path):
    home = tmp_path / "home"
    procs = [start(embed_cmd(smollm2.path, tmp_path / f"out{i}.npy"), home) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    computed = sorted(int(out.split("computed ")[1].split(" ")[0]) for out, _ in outputs)
    assert computed == [0, N_DOCS]  # the second waited on the lock, then read the first one's shards
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), reference)
