"""`--prompting` end to end on real models and real docs, through the Python API: results, report, reproduce."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.experiment import ExperimentConfig, run_experiment
from w2s_gguf.results import load_results


def config(shots: int = 2) -> ExperimentConfig:
    return ExperimentConfig(models=["smollm2-135m", "gemma3-270m"], task="sentiment", n_train=40, n_test=16, seeds=2,
                            methods=["xent"], max_tokens=128, n_threads=2, n_bootstrap=200, prompting=True, shots=shots)


@pytest.fixture(scope="module")
def run(smollm2, gemma3, offline_hub, tmp_path_factory):
    out = tmp_path_factory.mktemp("prompting")
    cache = tmp_path_factory.mktemp("cache")
    return run_experiment(config(), out, progress=False, cache_root=cache, log=lambda m: None), out, cache


def test_every_model_and_pair_gets_its_prompting_numbers(run):
    results, out, _ = run
    p = results.prompting
    assert p.shots == 2 and p.label_words == [" no", " yes"] and p.prompt_version == "1"
    assert [m.model for m in p.models] == ["smollm2-135m", "gemma3-270m"]
    for m in p.models:
        assert 0 <= m.zero_shot.acc.value <= 1 and m.zero_shot.auroc.ci[0] <= m.zero_shot.auroc.value
        assert [s.seed for s in m.few_shot.per_seed] == [0, 1]
        # Prompts: zero-shot, and 2-shot per seed; the strong model also 2-shot with weak labels per seed.
        assert m.n_prompts == 16 * (1 + 2 + (2 if m.model == "gemma3-270m" else 0)) == m.n_computed
        assert m.curve.points[-1].full and m.curve.points[0].n_labels == 8
        # The curve's last point is the protocol's own ground-truth head.
        gt = results.ground_truth_of(m.model)
        assert m.curve.points[-1].acc_mean == pytest.approx(gt.acc_mean)
    (pair,) = p.pairs
    assert (pair.weak, pair.strong) == ("smollm2-135m", "gemma3-270m")
    assert pair.floor_acc == pytest.approx(results.pairs[0].weak_acc)  # the weak probe, as in the W2S run
    assert pair.ceiling_acc == pytest.approx(p.models[1].few_shot.acc.value)
    assert all(s.demo_label_acc is not None for s in pair.per_seed)
    assert pair.pgr is not None or pair.pgr_reason
    predictions = np.load(out / "predictions.npz")
    assert {"prompt|smollm2-135m|zero", "prompt|gemma3-270m|true|1", "prompt|smollm2-135m|gemma3-270m|weak|0"} <= set(predictions)
    assert load_results(out) == results  # typed fields, written and read back
    text = (out / "report.md").read_text() if (out / "report.md").exists() else ""
    assert text == "" or "How much does each model already know?" in text


def test_reproduce_covers_the_prompting_numbers(run, tmp_path):
    from w2s_gguf.experiment.reproduce import numbers, reproduce

    results, out, _ = run
    original, rerun, comparison = reproduce(out, tmp_path / "again", progress=False, log=lambda m: None)
    paths = [p for p in numbers(original) if p.startswith("prompting")]
    assert any(p.endswith("zero_shot.auroc.value") for p in paths) and any("labels_to_90" in p for p in paths)
    assert not any(p.endswith(".n_computed") or p.endswith(".seconds") for p in paths)  # costs are not results
    assert comparison.exact, comparison.verdict()
    assert rerun.prompting.models[0].n_computed == original.prompting.models[0].n_prompts  # scored again, fresh cache


def test_zero_shots_is_zero_shot_only_and_reuses_the_cached_scores(run, tmp_path):
    results, _, cache = run
    zero = run_experiment(config(shots=0), tmp_path / "zero", progress=False, cache_root=cache, log=lambda m: None)
    p = zero.prompting
    assert p.shots == 0 and p.pairs == [] and all(m.few_shot is None for m in p.models)
    for a, b in zip(p.models, results.prompting.models):
        assert a.n_computed == 0 and a.zero_shot == b.zero_shot  # the same prompts, from the cache
