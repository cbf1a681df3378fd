"""The orchestration around the protocol: task -> features -> protocol -> results folder (synthetic features
stand in for llama.cpp here; tests/cli/test_run_cli.py runs the same code on real models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from w2s_gguf.experiment import run as experiment
from w2s_gguf.errors import W2SError
from w2s_gguf.experiment.run import ExperimentConfig, run_experiment
from w2s_gguf.results import SCHEMA_VERSION, load_results
from w2s_gguf.core.splits import split_halves


def test_split_halves_keeps_groups_whole_and_follows_the_seed():
    groups = [f"g{i // 3}" for i in range(90)] + [f"solo{i}" for i in range(30)]
    a, b = split_halves(groups, seed=0)
    assert sorted(np.r_[a, b].tolist()) == list(range(120))
    assert not {groups[i] for i in a} & {groups[i] for i in b}
    assert abs(len(a) - len(b)) <= 3
    a2, _ = split_halves(groups, seed=0)
    a3, _ = split_halves(groups, seed=1)
    assert np.array_equal(a, a2) and not np.array_equal(a, a3)


def fake_features(monkeypatch, informativeness: dict[str, float]):
    """Replace llama.cpp with features whose first dimension carries the label with the given strength."""
    from w2s_gguf.features.pipeline import EmbeddingResult, StoreSettings

    def fake_embed(model, texts, layers, *args, **kwargs):
        rng = np.random.default_rng(len(model.name))
        labels = np.array([int(t.split("|")[1]) for t in texts])
        x = rng.standard_normal((len(texts), 16)).astype(np.float32)
        x[:, 0] += informativeness[model.name] * (2 * labels - 1)
        settings = StoreSettings(model.sha256, "last", 512, "fake", False)
        return {layer: EmbeddingResult(x, model, settings, model.path.parent, 0, 0, 0, 0.0, False) for layer in layers}

    def fake_resolve(name, registry=None):
        from pathlib import Path

        from w2s_gguf.models import ResolvedModel

        return ResolvedModel(name, Path("/nonexistent") / name, name.ljust(64, "0"), 1, "fake")

    monkeypatch.setattr(experiment, "embed_layers", fake_embed)
    monkeypatch.setattr(experiment, "resolve_model", fake_resolve)


@pytest.fixture
def data_file(tmp_path):
    rows = [{"text": f"doc {i}|{i % 2}", "label": i % 2, "split": "test" if i >= 400 else "train"} for i in range(600)]
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(data_file, models, **kw):
    from w2s_gguf.tasks import TaskOptions

    return ExperimentConfig(models=models, task="custom", task_options=TaskOptions(data=str(data_file)),
                            n_train=400, n_test=200, seeds=3, n_bootstrap=200, **{"sklearn_baseline": True, **kw})


def test_protocol_on_synthetic_features(monkeypatch, data_file, tmp_path):
    fake_features(monkeypatch, {"weak": 0.4, "strong": 1.5})
    results = run_experiment(config(data_file, ["weak", "strong"]), tmp_path, log=lambda m: None)
    pair = results.pairs[0]
    assert pair.strong_acc > pair.weak_acc + 0.1
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["schema_version"] == SCHEMA_VERSION
    with np.load(tmp_path / "predictions.npz", allow_pickle=False) as npz:
        predictions = dict(npz)
    assert predictions["transfer|weak|strong|xent|0"].shape == (200, 2)
    for loss in ("xent", "logconf", "product"):
        s = pair.summary[loss]
        assert s.pgr is not None and s.pgr_ci[0] <= s.pgr <= s.pgr_ci[1]
        # Agreement with the weak model, recomputed from the saved test predictions of every seed.
        agree = [np.mean(predictions[f"transfer|weak|strong|{loss}|{seed}"].argmax(1) == predictions[f"gt|weak|{seed}"].argmax(1))
                 for seed in range(3)]
        assert s.agreement_mean == pytest.approx(np.mean(agree), abs=1e-12)
    assert pair.sklearn_summary["xent"].pgr is not None
    assert load_results(tmp_path) == results  # the reader gives back exactly what the writer wrote


def test_no_pgr_when_the_ceiling_is_not_above_the_weak_model(monkeypatch, data_file, tmp_path):
    fake_features(monkeypatch, {"weak": 1.0, "strong": 1.0, "other": 0.2})
    results = run_experiment(config(data_file, ["weak", "strong", "other"], self_pairs=True), tmp_path,
                             log=lambda m: None)
    pairs = {(p.weak, p.strong): p for p in results.pairs}
    assert len(pairs) == 6  # three self pairs and three cross pairs
    assert "same model" in pairs["weak", "weak"].summary["xent"].pgr_reason
    down = pairs["strong", "other"].summary["xent"]
    assert down.pgr is None and down.pgr_median is None and "min_gap" in down.pgr_reason


def test_results_from_a_newer_schema_are_not_overwritten(monkeypatch, data_file, tmp_path):
    fake_features(monkeypatch, {"weak": 0.4, "strong": 1.5})
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(W2SError, match="newer w2s-gguf"):
        run_experiment(config(data_file, ["weak", "strong"]), tmp_path, log=lambda m: None)
    assert json.loads((tmp_path / "results.json").read_text()) == {"schema_version": 99}
