"""`w2s-gguf sweep` on real models: pairs, reuse of cached embeddings, intervals, report files."""

from __future__ import annotations

import matplotlib.image

from conftest import w2s
from w2s_gguf.results import load_results

# Same docs and settings as tests/cli/test_run_cli.py, so the embeddings come from the cache.
ARGS = ["--models", "smollm2-135m,gemma3-270m", "--task", "sentiment", "--n-train", "300", "--n-test", "200",
        "--seeds", "3", "--self-pairs", "--no-progress"]


def test_sweep_pairs_reuse_intervals_and_report(smollm2, gemma3, test_home, tmp_path):
    first = w2s("sweep", *ARGS, "--out", str(tmp_path), home=test_home)
    assert first.returncode == 0, first.stderr[-3000:]
    second = w2s("sweep", *ARGS, "--out", str(tmp_path), home=test_home)
    assert second.returncode == 0, second.stderr[-3000:]
    results = load_results(tmp_path)

    pairs = [(p.weak, p.strong) for p in results.pairs]
    assert pairs == [("smollm2-135m", "smollm2-135m"), ("smollm2-135m", "gemma3-270m"), ("gemma3-270m", "gemma3-270m")]
    assert [g.model for g in results.ground_truth] == ["smollm2-135m", "gemma3-270m"]
    # The second sweep extracted nothing: every embedding came from the cache.
    assert all(m.n_computed == 0 and not m.model_loaded for m in results.models.values())

    for pair in results.pairs:
        for loss, summary in pair.summary.items():
            if pair.weak == pair.strong:
                assert summary.pgr_median is None and "same model" in summary.pgr_reason
            elif summary.pgr_ci is not None:
                lo, hi = summary.pgr_ci
                assert lo <= summary.pgr <= hi
    cross = results.pairs[1].summary["xent"]
    assert cross.pgr_ci is not None, cross.pgr_reason
    # The weak ceiling of a pair is that model's own ground-truth run, computed once per seed.
    assert results.pairs[1].weak_acc == results.ground_truth_of("smollm2-135m").acc_mean

    for name in ("accuracy.png", "pgr.png"):
        image = matplotlib.image.imread(tmp_path / name)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    report = (tmp_path / "report.md").read_text()
    assert "smollm2-135m" in report and "gemma3-270m" in report and "PGR" in report
