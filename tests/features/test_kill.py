"""Kill a real extraction at exact points; the resumed result must equal an uninterrupted one exactly.

Every kill, Ctrl-C and lock hand-over lands where the test says, on any
machine speed: the pipeline's test hook (w2s_gguf/common/testhooks.py,
W2S_GGUF_TEST_STOP) SIGKILLs the process after a given shard or batch, or
holds it there on a named pipe until the test lets it go.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import wait_for_line

N_DOCS = 60
# More than any llama.cpp batch holds here (at most 12 of these docs fit max_tokens=128), so a
# shard always takes at least two batches: a run killed after its first batch dies mid-shard.
SHARD_DOCS = 13


def embed_cmd(model_path: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "w2s_gguf.cli", "embed", "--model", str(model_path), "--task", "sentiment",
            "--split", "train", "--n", str(N_DOCS), "--max-tokens", "128", "--shard-docs", str(SHARD_DOCS),
            "--threads", "1", "--no-progress", "--out", str(out)]


def shards(home: Path) -> dict[str, int]:
    """Finished shards (those with a manifest entry) and their npy modification times."""
    return {p.name: p.with_suffix(".npy").stat().st_mtime_ns for p in (home / "embeddings").glob("*/shard-*.json")}


def start(cmd, home: Path, stop: str | None = None, sigint_ignored: bool = False) -> subprocess.Popen:
    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    env.pop("W2S_GGUF_TEST_STOP", None)
    if stop:
        env["W2S_GGUF_TEST_STOP"] = stop
    # sigint_ignored: start it the way a background job of a non-interactive shell (e.g. CI) is started.
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=preexec)


def release(fifo: Path) -> None:
    """Let a process held on `fifo` go on (open blocks until it has opened its end)."""
    os.close(os.open(fifo, os.O_WRONLY))


@pytest.fixture(scope="module")
def reference(smollm2, sentiment_texts, tmp_path_factory):
    """The uninterrupted run, in its own cache folder."""
    home = tmp_path_factory.mktemp("ref-home")
    out = home / "ref.npy"
    proc = subprocess.run(embed_cmd(smollm2.path, out), env={**os.environ, "W2S_GGUF_HOME": str(home)},
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return np.load(out)


def test_sigkill_at_exact_points_then_resume_gives_identical_features(smollm2, reference, tmp_path):
    home = tmp_path / "home"
    out = tmp_path / "out.npy"
    cmd = embed_cmd(smollm2.path, out)
    # Each run resumes the previous one and is killed at a point counted in that run: after the model
    # loaded (nothing computed), mid-way through its first shard, right after its first shard (twice),
    # and mid-way again once two shards are on disk.
    kill_points = [("shard:0", 0), ("batch:1", 0), ("shard:1", 1), ("shard:1", 2), ("batch:1", 2)]
    seen: dict[str, int] = {}
    for stop, n_shards in kill_points:
        proc = start(cmd, home, f"{stop}:kill")
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, f"{stop}: exit {proc.returncode}\n{stderr[-2000:]}"
        hook = [line for line in stderr.splitlines() if "test hook: kill after" in line]
        assert len(hook) == 1 and hook[0].startswith(f"[w2s-gguf] test hook: kill after {stop.replace(':', ' ')}"), stderr
        if stop.startswith("batch"):  # computed docs that no shard holds yet: lost, and computed again
            assert int(hook[0].split("(")[1].split()[0]) > 0, hook
        now = shards(home)
        assert len(now) == n_shards, (stop, sorted(now))
        # Finished shards are never rewritten by a later run.
        assert all(now.get(name) == mtime for name, mtime in seen.items())
        seen = now
    assert not out.exists()
    store = next(p for p in (home / "embeddings").iterdir() if p.is_dir())  # not the extraction lock beside it
    cached = sum(len(json.loads((store / name).read_text())["keys"]) for name in seen)
    assert 2 * SHARD_DOCS <= cached < N_DOCS
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
    home, fifo = tmp_path / "home", tmp_path / "hold"
    os.mkfifo(fifo)
    proc = start(embed_cmd(smollm2.path, tmp_path / "out.npy"), home, f"shard:1:hold:{fifo}", sigint_ignored)
    try:
        wait_for_line(proc, "test hook: hold after shard 1")  # one shard on disk, the run is mid-extraction
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:  # a lost Ctrl-C must not leave the run held on the pipe
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    assert f"interrupted while embedding with {smollm2.path.stem}: " in stderr
    first = shards(home)
    assert len(first) == 1
    # The resumed run still ends with the uninterrupted result, and keeps the finished shard.
    proc = start(embed_cmd(smollm2.path, tmp_path / "out.npy"), home)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert first.items() <= shards(home).items()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), reference)


def test_two_runs_at_once_on_one_cache_agree_and_compute_each_doc_once(smollm2, reference, tmp_path):
    home, fifo = tmp_path / "home", tmp_path / "hold"
    os.mkfifo(fifo)
    # The first run takes the extraction lock and is held after its first shard, lock still in hand.
    first = start(embed_cmd(smollm2.path, tmp_path / "out0.npy"), home, f"shard:1:hold:{fifo}")
    second = None
    try:
        wait_for_line(first, "test hook: hold after shard 1")
        # The second starts while the first holds the lock: it must say it waits, and wait.
        second = start(embed_cmd(smollm2.path, tmp_path / "out1.npy"), home)
        line = wait_for_line(second, "waiting for another run")
        assert line.strip() == f"[w2s-gguf] waiting for another run that is embedding with {smollm2.path.stem} on this cache"
        assert second.poll() is None and len(shards(home)) == 1  # still waiting; nothing beyond the first's shard
        release(fifo)
        outputs = [p.communicate(timeout=600) for p in (first, second)]
    finally:  # a failed check must not leave a run held on the pipe
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [p.returncode for p in (first, second)] == [0, 0], [err for _, err in outputs]
    computed = [int(out.split("computed ")[1].split(" ")[0]) for out, _ in outputs]
    assert computed == [N_DOCS, 0]  # the second read every doc from the first one's shards
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"out{i}.npy"), reference)
