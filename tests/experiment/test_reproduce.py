"""`w2s-gguf reproduce`: the comparison logic on fixtures (the real rerun is in tests/test_run_cli.py)."""

from __future__ import annotations

import copy
from pathlib import Path

from w2s_gguf.experiment.config import ExperimentConfig
from w2s_gguf.experiment.reproduce import compare, numbers
from w2s_gguf.results import load_results

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_v1"


def test_identical_results_are_exact():
    a = load_results(FIXTURE)
    comparison = compare(a, copy.deepcopy(a))
    assert comparison.exact and comparison.verdict() == f"exact: all {len(numbers(a))} numbers match"
    assert len(numbers(a)) > 200  # every per-seed and summary number is compared


def test_a_difference_is_located_and_the_environment_named():
    a = load_results(FIXTURE)
    b = copy.deepcopy(a)
    b.pairs[0].summary["logconf"].pgr_median += 0.25
    b.pairs[0].per_seed[1].transfer["xent"].acc -= 0.001
    b.versions["llama_cpp_python"] = "0.3.99"
    b.settings["n_threads"] = 16
    comparison = compare(a, b)
    assert not comparison.exact and len(comparison.mismatches) == 2
    where, difference = comparison.largest()
    assert where == "pairs[0].summary.logconf.pgr_median" and abs(difference - 0.25) < 1e-12
    verdict = comparison.verdict()
    assert "differs: 2 of" in verdict and "pairs[0].summary.logconf.pgr_median" in verdict
    assert "versions.llama_cpp_python '0.3.36' vs '0.3.99'" in verdict and "settings.n_threads 2 vs 16" in verdict


def test_the_settings_block_is_a_complete_recipe():
    results = load_results(FIXTURE)
    config = ExperimentConfig.from_json(results.settings)
    assert config.models == ["smollm2-135m", "gemma3-270m"] and config.seeds == 5
    assert config.methods == ["xent", "logconf", "product"] and config.n_train == 900
    again = ExperimentConfig.from_json(config.to_json())
    assert again == config
