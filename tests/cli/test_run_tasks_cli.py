"""`w2s-gguf run` on the chess task and on a user's own data file, with real models (small sizes)."""

from __future__ import annotations

import json

from conftest import w2s

from w2s_gguf.results import load_results


def test_run_chess_end_to_end_balanced(smollm2, gemma3, test_home, tmp_path):
    proc = w2s("run", "--task", "chess", "--n-train", "40", "--n-test", "24", "--seeds", "2", "--losses", "xent",
               "--balance", "--min-rating", "1000", "--max-rating", "2000", "--max-tokens", "256", "--no-progress",
               "--out", str(tmp_path), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = load_results(tmp_path)
    task = results.task
    assert task.name == "chess" and "sample" in task.source
    assert task.positive_rate_train == 0.5 and task.positive_rate_test == 0.5
    assert results.settings["task_options"] == {"min_rating": 1000, "max_rating": 2000}
    pair = results.pairs[0]
    # Scored on exactly the 24 test docs, each seed.
    for seed in pair.per_seed:
        for acc in (seed.weak_acc, seed.strong_acc, seed.transfer["xent"].acc):
            assert abs(acc * 24 - round(acc * 24)) < 1e-9, acc
    # The gap rule on the shipped puzzles and models: 24 test docs cannot put the gap's interval above
    # min_gap (its half-width alone is several points), so no PGR, and the table says why.
    summary = pair.summary["xent"]
    assert pair.gap.ci[0] < pair.mean_gap < pair.gap.ci[1] and pair.gap.ci[1] - pair.gap.ci[0] > 0.05
    assert not pair.gap.distinguishable
    assert summary.pgr is None and summary.pgr_median is None and summary.pgr_ci is None
    assert summary.pgr_reason.startswith(f"gap {pair.gap.diff:+.3f} [") and "not clearly above min_gap 0.01" in summary.pgr_reason
    assert "not clearly above min_gap" in " ".join(proc.stdout.split())
    assert "chess" in proc.stdout


def test_run_on_a_users_own_file(smollm2, gemma3, test_home, tmp_path):
    from w2s_gguf.tasks import load_task

    docs = load_task("sentiment", n_train=120, n_test=40).train  # real reviews, already embedded by other tests
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"text": d.text, "label": d.label}) + "\n" for d in docs))
    proc = w2s("run", "--data", str(data), "--n-train", "70", "--n-test", "20", "--seeds", "2",
               "--losses", "xent,logconf", "--no-progress", "--out", str(tmp_path / "out"),
               home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = load_results(tmp_path / "out")
    assert results.task.name == "custom" and str(data) in results.task.source
    assert set(results.pairs[0].summary) == {"xent", "logconf"}
    assert results.task.n_train == 70 and results.task.n_test == 20
    for r in results.ground_truth_of("gemma3-270m").per_seed:  # scored on exactly the file's 20 test rows
        assert abs(r.acc * 20 - round(r.acc * 20)) < 1e-9, r.acc
