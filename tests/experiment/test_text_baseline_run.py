"""Every run carries the text-only baseline: on the run's own halves and test docs, in results.json,
predictions.npz, the table and report.md, and cached so a warm rerun never imports scikit-learn."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from w2s_gguf.core.splits import split_halves
from w2s_gguf.core.text_baseline import text_baseline_proba
from w2s_gguf.results import load_results
from w2s_gguf.tasks import load_task

RUN = ["run", "--weak", "smollm2-135m", "--strong", "gemma3-270m", "--task", "sentiment", "--n-train", "120",
       "--n-test", "40", "--seeds", "2", "--losses", "xent", "--no-progress"]


def w2s_run(out, home, blocked=()) -> subprocess.CompletedProcess:
    """`w2s-gguf run` in a fresh process where importing any of `blocked` fails."""
    code = ("import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
            + "from w2s_gguf.cli import main\nsys.argv = ['w2s-gguf', *sys.argv[1:]]\nmain()\n")
    env = {**os.environ, "W2S_GGUF_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", code, *RUN, "--out", str(out)], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cold(smollm2, gemma3, test_home, tmp_path_factory):
    from w2s_gguf.experiment.text_baseline import baseline_dir, baseline_key

    out = tmp_path_factory.mktemp("cold")
    cached = baseline_dir(test_home) / f"{baseline_key(load_task('sentiment', 120, 40), [0, 1])}.npy"
    cached.unlink(missing_ok=True)  # this run's recipe is computed here, then read by the warm rerun
    proc = w2s_run(out, test_home)
    assert cached.is_file()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_the_baseline_uses_the_runs_halves_and_test_docs(cold):
    out, proc = cold
    results = load_results(out)
    baseline = results.text_baseline
    assert [s.seed for s in baseline.per_seed] == [0, 1]
    assert baseline.ci[0] <= baseline.acc_mean <= baseline.ci[1]
    # Recomputed here from the docs the run used and the protocol's halves: the same numbers.
    data = load_task("sentiment", 120, 40)
    groups = [d.group for d in data.train]
    proba = text_baseline_proba([d.text for d in data.train], [d.label for d in data.train], [d.text for d in data.test],
                                [split_halves(groups, seed)[0] for seed in (0, 1)])
    labels = np.array([d.label for d in data.test])
    assert [s.acc for s in baseline.per_seed] == [float(np.mean((p > 0.5) == labels)) for p in proba]
    with np.load(out / "predictions.npz", allow_pickle=False) as npz:
        assert np.allclose(npz["text_baseline|1"][:, 1], proba[1]) and npz["text_baseline|0"].shape == (40, 2)
    assert results.timings["text_baseline_seconds"] > 0


def test_the_table_and_report_show_it(cold):
    out, proc = cold
    baseline = load_results(out).text_baseline
    assert f"text-only {baseline.acc_mean:.3f}" in proc.stdout and "smollm2-135m's probe" in proc.stdout
    assert "## Text-only baseline" in (out / "report.md").read_text()
    assert "text-only baseline (word and character n-grams, half A)" in proc.stderr


def test_a_warm_rerun_reads_the_cache_and_never_imports_scikit_learn(cold, test_home, tmp_path):
    out, _ = cold
    warm = w2s_run(tmp_path, test_home, blocked=["sklearn"])
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert load_results(tmp_path).text_baseline == load_results(out).text_baseline
