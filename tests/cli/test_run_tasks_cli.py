"""`w2s-gguf run` on the chess task and on a user's own data file, with real models (small sizes)."""

from __future__ import annotations

import json
import math

from test_run_cli import w2s

from w2s_gguf.results import load_results


def test_run_chess_end_to_end_balanced(smollm2, gemma3, test_home, tmp_path):
    proc = w2s("run", "--task", "chess", "--n-train", "60", "--n-test", "40", "--seeds", "2", "--losses", "xent",
               "--balance", "--min-rating", "1000", "--max-rating", "2000", "--max-tokens", "256", "--no-progress",
               "--out", str(tmp_path), home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = load_results(tmp_path)
    task = results.task
    assert task.name == "chess" and "sample" in task.source
    assert task.positive_rate_train == 0.5 and task.positive_rate_test == 0.5
    assert results.settings["task_options"] == {"min_rating": 1000, "max_rating": 2000}
    pair = results.pairs[0]
    assert 0 <= pair.weak_acc <= 1 and 0 <= pair.strong_acc <= 1
    # The gap rule decides, whichever way these small models land on chess: a PGR only when the gap's
    # interval lies above min_gap (40 test docs: it cannot, so no PGR may be printed).
    summary = pair.summary["xent"]
    assert pair.gap.ci[0] < pair.mean_gap < pair.gap.ci[1]
    if not pair.gap.distinguishable:
        assert summary.pgr_median is None and "not clearly above min_gap" in summary.pgr_reason
    else:
        assert math.isfinite(summary.pgr_median) and summary.n_valid_seeds >= 1
    assert "chess" in proc.stdout


def test_run_on_a_users_own_file(smollm2, gemma3, test_home, tmp_path):
    from w2s_gguf.tasks import load_task

    docs = load_task("sentiment", n_train=120, n_test=40).train  # real reviews, already embedded by other tests
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps({"text": d.text, "label": d.label}) + "\n" for d in docs))
    proc = w2s("run", "--data", str(data), "--n-train", "70", "--n-test", "20", "--seeds", "2",
               "--losses", "xent,logconf", "--max-tokens", "256", "--no-progress", "--out", str(tmp_path / "out"),
               home=test_home)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = load_results(tmp_path / "out")
    assert results.task.name == "custom" and str(data) in results.task.source
    assert set(results.pairs[0].summary) == {"xent", "logconf"}
    assert all(math.isfinite(r.acc) for r in results.ground_truth_of("gemma3-270m").per_seed)
