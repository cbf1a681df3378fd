"""`w2s-gguf tasks audit`: it must find a shortcut built into a task, report the shipped chess sample's
text-only baseline, load no model, and serve a warm audit (like a warm run) without scikit-learn."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import invoke_cli
from w2s_gguf.tasks import load_task
from w2s_gguf.tools.audit import audit_task

pytestmark = pytest.mark.usefixtures("offline_hub")  # tests/conftest.py


def reviews_file(path, marker: str):
    """450 train and 151 test rows: real reviews with coin-flip labels, label-1 reviews ending in `marker`
    (with "" no text carries the label); one review appears again in test with a comma dropped, in another group."""
    reviews = [d.text for d in load_task("sentiment", n_train=600, n_test=200).train]
    rng = np.random.default_rng(0)
    rows = []
    for i, text in enumerate(reviews):
        label = int(rng.random() < 0.5)
        rows.append({"text": text + (marker if label else ""), "label": label,
                     "split": "test" if i % 4 == 0 else "train", "group": f"review{i}"})
    copied = next(r for r in rows if r["split"] == "train" and "," in r["text"])
    rows.append({**copied, "text": copied["text"].replace(",", "", 1), "split": "test", "group": "the copy"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def shortcut_file(tmp_path_factory):
    return reviews_file(tmp_path_factory.mktemp("shortcut") / "shortcut.jsonl", " indeed")


def audit_cli(monkeypatch, capsys, *args):
    return invoke_cli(monkeypatch, capsys, "tasks", "audit", *args)


def test_the_audit_finds_a_word_that_gives_the_label_away(shortcut_file, tmp_path):
    from w2s_gguf.tasks import TaskOptions

    audit = audit_task("custom", 450, 151, TaskOptions(data=str(shortcut_file)), seeds=3, cache_root=tmp_path)
    baseline = audit["text_baseline"]
    assert baseline["acc_mean"] > 0.8 and baseline["above_chance"]  # 0.945 measured: one word among ~30000 n-grams
    # The same reviews and labels without the word: nothing to find.
    plain = reviews_file(tmp_path / "plain.jsonl", "")
    without = audit_task("custom", 450, 151, TaskOptions(data=str(plain)), seeds=3, cache_root=tmp_path)["text_baseline"]
    assert not without["above_chance"] and without["acc_mean"] < 0.6  # 0.523 measured
    assert audit["duplicates"]["near_pairs_in_different_groups"]["train-test"] == 1
    assert audit["groups_in_train_and_test"] == {"pools": 0, "chosen": 0}
    assert all(h["groups_in_A_and_B"] == 0 and h["A"] + h["B"] == 450 for h in audit["halves"])
    assert audit["labels"]["test"]["docs"] == 151


def test_the_audit_command_prints_every_part(shortcut_file, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("W2S_GGUF_HOME", str(tmp_path))
    code, out, err = audit_cli(monkeypatch, capsys, "custom", "--data", shortcut_file, "--n-train", "450",
                               "--n-test", "151", "--seeds", "2")
    assert code == 0, err
    for part in ("positive rate", "groups in both train and test: 0", "seed 1: A", "near-duplicates in different groups",
                 "train-test 1", "text-only baseline: ", "above the majority rate"):
        assert part in out, part
    code, out, _ = audit_cli(monkeypatch, capsys, "custom", "--data", shortcut_file, "--n-train", "300",
                             "--n-test", "100", "--seeds", "2", "--json")
    assert code == 0 and json.loads(out)["text_baseline"]["acc_mean"] > 0.8


def test_the_shipped_chess_sample_has_no_text_shortcut_left(tmp_path):
    """The text-only baseline of a default-size chess run (900/600, 5 seeds): 0.539 [0.508, 0.570] when
    measured, against a majority rate of 0.523."""
    audit = audit_task("chess", cache_root=tmp_path)
    baseline = audit["text_baseline"]
    assert baseline["acc_mean"] < 0.57 and not baseline["above_chance"]
    assert audit["skipped"] == {"no other move with the solution's capture status (x would give the label away)": 924}
    assert audit["duplicates"]["exact"]["texts_more_than_once"] == 0


def run_audit_without(blocked: list[str], args: list[str], home) -> subprocess.CompletedProcess:
    """The audit command in a fresh process where importing any of `blocked` fails."""
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
            + "from w2s_gguf.cli import main\nsys.argv = ['w2s-gguf', 'tasks', 'audit', *sys.argv[1:]]\nmain()\n")
    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True)


def test_the_audit_loads_no_model_and_a_warm_one_needs_no_scikit_learn(shortcut_file, tmp_path):
    args = ["custom", "--data", str(shortcut_file), "--n-train", "300", "--n-test", "100", "--seeds", "2"]
    cold = run_audit_without(["llama_cpp"], args, tmp_path)
    assert cold.returncode == 0, cold.stderr[-2000:]
    assert list((tmp_path / "text-baseline").glob("*.npy"))
    warm = run_audit_without(["llama_cpp", "sklearn"], args, tmp_path)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout == cold.stdout
    other_seeds = run_audit_without(["sklearn"], args[:-1] + ["3"], tmp_path)  # a new recipe is computed
    assert other_seeds.returncode == 1 and "sklearn" in other_seeds.stderr


@pytest.mark.parametrize("args, message", [
    (["nope"], "unknown task 'nope'"),
    (["sentiment", "--n-test", "0"], "--n-test must be positive"),
    (["sentiment", "--seeds", "0"], "--seeds must be a positive number"),
    (["custom"], "needs --data FILE"),
])
def test_audit_errors_are_one_line(monkeypatch, capsys, args, message):
    code, out, err = audit_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and not out
