"""`w2s-gguf bench` on the real SmolLM2: its figures are ratios measured in one process, never timed assertions."""

from __future__ import annotations

import json

from conftest import invoke_cli


def test_bench_reports_pipeline_and_layer_capture_ratios(smollm2, monkeypatch, capsys):
    code, out, err = invoke_cli(monkeypatch, capsys, "bench", "--model", "smollm2-135m", "--n-docs", "24",
                                "--layers", "middle,-1", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["model"] == "smollm2-135m" and r["n_docs"] == 24 and r["n_tokens"] > 24
    assert r["tokens_per_second"] > 0 and r["engine_tokens_per_second"] > 0
    assert abs(r["ratio"] - r["tokens_per_second"] / r["engine_tokens_per_second"]) < 0.01
    c = r["layer_capture"]
    assert c["layers"] == ["14", "29"] and c["pooling"] == "last" and c["batches"] >= 1
    assert abs(c["capture_ratio"] - c["capture_tokens_per_second"] / c["plain_tokens_per_second"]) < 0.01
    assert c["median_batch_ratio"] > 0


def test_bench_refuses_a_layer_beyond_the_depth_in_one_line(smollm2, monkeypatch, capsys):
    code, out, err = invoke_cli(monkeypatch, capsys, "bench", "--model", "smollm2-135m", "--n-docs", "24",
                                "--layers", "40")
    assert code == 2 and "smollm2-135m has 30 blocks (0..29)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_warm_run_times_a_cached_rerun_in_fresh_processes(smollm2, gemma3):
    from w2s_gguf.tools.bench import format_warm_runs, warm_run_seconds

    small = ["--n-train", "60", "--n-test", "40", "--seeds", "2", "--max-tokens", "64"]
    times = warm_run_seconds(extra=small, repeats=2)
    assert len(times) == 2 and all(0 < t < 120 for t in times)
    text = format_warm_runs({"default run": {"seconds": times, "median": 1.5}})
    assert text.startswith("default run") and "median 1.50 s" in text and "imports included" in text
