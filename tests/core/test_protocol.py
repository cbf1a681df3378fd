"""The pure protocol core on arrays: no files, no llama.cpp, no tasks."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.errors import SettingError, W2SError
from w2s_gguf.core.intervals import disagreement, misfit
from w2s_gguf.core.protocol import ProtocolSettings, run_protocol


def synthetic(signal: dict[str, float], n_train=300, n_test=200, dim=12, seed=0):
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, 2, n_train), rng.integers(0, 2, n_test)
    features = {}
    for name, strength in signal.items():
        x = rng.standard_normal((n_train + n_test, dim)).astype(np.float32)
        x[:, 0] += strength * (2 * np.r_[y_train, y_test] - 1)
        features[name] = (x[:n_train], x[n_train:])
    return features, y_train, y_test


def test_three_lines_from_arrays_to_pgr():
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=3, n_bootstrap=200))
    xent = out.pairs[0].summary["xent"]
    assert out.pairs[0].strong_acc > out.pairs[0].weak_acc + 0.1
    assert xent.pgr_ci[0] <= xent.pgr <= xent.pgr_ci[1]
    assert {g.model for g in out.ground_truth} == {"weak", "strong"}
    assert out.predictions["transfer|weak|strong|logconf|2"].shape == (200, 2)


def test_same_inputs_same_numbers_and_the_layer_is_stamped():
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    settings = ProtocolSettings(seeds=2, n_bootstrap=200, sklearn_baseline=False)
    a = run_protocol(features, y_train, y_test, settings=settings)
    b = run_protocol(features, y_train, y_test, settings=settings, layer="14")
    assert a.pairs[0].summary == b.pairs[0].summary and a.pairs[0].layer == "last" and b.pairs[0].layer == "14"
    assert "gt|weak|0|14" in b.predictions and a.pairs[0].sklearn_summary is None


def test_groups_never_straddle_the_halves_and_change_the_split():
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    settings = ProtocolSettings(seeds=1, n_bootstrap=200, sklearn_baseline=False)
    by_doc = run_protocol(features, y_train, y_test, settings=settings)
    by_group = run_protocol(features, y_train, y_test, groups=[i // 10 for i in range(300)], settings=settings)
    assert by_doc.ground_truth[0].per_seed != by_group.ground_truth[0].per_seed


@pytest.mark.parametrize("settings, param", [
    (ProtocolSettings(seeds=0), "seeds"), (ProtocolSettings(methods=["nope"]), "methods"),
    (ProtocolSettings(ceiling_half="C"), "ceiling_half"), (ProtocolSettings(min_gap=1.5), "min_gap"),
    (ProtocolSettings(logconf_schedule="cubic"), "logconf_schedule"),
])
def test_bad_settings_name_their_parameter(settings, param):
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    with pytest.raises(SettingError) as info:
        run_protocol(features, y_train, y_test, settings=settings)
    assert info.value.param == param and str(info.value).startswith(param)


def test_bad_arrays_are_caught_at_the_boundary():
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    with pytest.raises(W2SError, match="one row per doc"):
        run_protocol(features, y_train[:-1], y_test)
    with pytest.raises(W2SError, match="0/1 labels"):
        run_protocol(features, y_train + 1, y_test)
    with pytest.raises(W2SError, match="at least two models"):
        run_protocol({"weak": features["weak"]}, y_train, y_test)
    with pytest.raises(W2SError, match="same width"):
        run_protocol({"weak": features["weak"], "strong": (features["strong"][0], features["strong"][1][:, :3])},
                     y_train, y_test)


def test_every_method_side_by_side_with_its_difference_to_xent_and_misfit():
    features, y_train, y_test = synthetic({"weak": 1.0, "strong": 2.0})
    seeds = 2
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=seeds, methods=["all"], n_bootstrap=200,
                                                                            sklearn_baseline=False))
    pair, p = out.pairs[0], out.predictions
    summary = pair.summary
    assert "ensemble" not in summary and {"xent", "logconf", "knn-relabel-50", "bootstrap-1", "confident-0.5"} <= set(summary)
    assert summary["xent"].vs_xent is None

    def correct(method, seed):
        return p[f"transfer|weak|strong|{method}|{seed}"].argmax(1) == y_test

    for method, s in summary.items():
        assert s.auroc_mean > 0.6, method  # every method ranks docs better than chance on an easy task
        # Recomputed from the saved test predictions: disagreement with the weak model, misfit against the
        # student's own teacher (the weak model unless the method saved another), the difference to xent.
        student = [p[f"transfer|weak|strong|{method}|{seed}"] for seed in range(seeds)]
        teacher = [p.get(f"teacher|weak|strong|{method}|{seed}", p[f"gt|weak|{seed}"]) for seed in range(seeds)]
        disagree = [disagreement(st, p[f"gt|weak|{seed}"]) for seed, st in enumerate(student)]
        assert 1 - s.agreement_mean == pytest.approx(np.mean(disagree), abs=1e-12), method
        assert s.misfit_mean == pytest.approx(np.mean([misfit(st, t) for st, t in zip(student, teacher)]), abs=1e-12), method
        if method != "xent":
            d = s.vs_xent
            diff = np.mean([correct(method, seed).mean() - correct("xent", seed).mean() for seed in range(seeds)])
            assert d.diff == pytest.approx(diff, abs=1e-12), method
            assert d.ci[0] <= d.diff <= d.ci[1]
    # kl has xent's gradient: the same student, so no difference at all.
    assert summary["kl"].vs_xent.diff == 0 and summary["kl"].vs_xent.ci == [0.0, 0.0] and not summary["kl"].vs_xent.distinguishable


def test_disagree_train_is_the_students_disagreement_with_its_own_weak_labels():
    """Rebuilt outside the protocol for seed 0: the weak head on A labels B, the student learns B; disagree_train compares those."""
    from w2s_gguf.core.methods import W2SInput, run_method
    from w2s_gguf.core.splits import split_halves
    from w2s_gguf.core.stacked import HeadJob, train_heads

    features, y_train, y_test = synthetic({"weak": 1.0, "strong": 2.0})
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=1, methods=["xent", "hard"],
                                                                            n_bootstrap=200))
    half_a, half_b = split_halves([str(i) for i in range(len(y_train))], 0)
    (xw, _), (xs, xs_test) = features["weak"], features["strong"]
    weak_b = train_heads([HeadJob(xw[half_a], y_train[half_a], seed=0)])[0].predict_proba(xw[half_b])
    for method in ("xent", "hard"):
        student = run_method(method, W2SInput(xs[half_b], weak_b, xs_test, seed=0))
        expected = disagreement(student.train_proba, weak_b)
        got = out.pairs[0].per_seed[0].transfer[method].disagree_train
        assert got == expected and got > 0, (method, got, expected)  # on these noisy labels it departs from some


def test_a_gap_that_cannot_be_told_from_zero_gives_no_pgr():
    # Equally informative weak and strong features: any gap is noise, so no PGR however the seeds fall.
    features, y_train, y_test = synthetic({"weak": 0.8, "strong": 0.8}, n_test=150)
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=3, n_bootstrap=300))
    pair = out.pairs[0]
    assert not pair.gap.distinguishable and pair.gap.ci[0] <= pair.gap.diff <= pair.gap.ci[1]
    for s in pair.summary.values():
        assert s.pgr_median is None and "not clearly above min_gap" in s.pgr_reason


def test_several_weak_models_teach_the_strong_one_and_the_ensemble_averages_them():
    features, y_train, y_test = synthetic({"weak1": 0.5, "weak2": 0.6, "strong": 1.5})
    settings = ProtocolSettings(seeds=2, methods=["xent", "ensemble"], weak_models=2, n_bootstrap=200,
                                sklearn_baseline=False)
    out = run_protocol(features, y_train, y_test, settings=settings)
    # One ensemble student per strong model, in a row of its own after that model's pairs.
    assert [(p.weak, p.strong) for p in out.pairs] == [("weak1", "strong"), ("weak2", "strong"),
                                                       ("ensemble(weak1+weak2)", "strong")]
    assert all(list(p.summary) == ["xent"] for p in out.pairs[:2])
    ensemble = out.pairs[2]
    assert ensemble.teachers == ["weak1", "weak2"] and list(ensemble.summary) == ["ensemble"]
    # Its weak accuracy is the ensemble teacher's: the mean of both teachers' test predictions.
    teacher = [np.mean([out.predictions[f"gt|{m}|{seed}"] for m in ("weak1", "weak2")], axis=0) for seed in (0, 1)]
    assert ensemble.weak_acc == pytest.approx(np.mean([np.mean(t.argmax(1) == y_test) for t in teacher]))
    with pytest.raises(SettingError, match="ensemble"):
        run_protocol({"weak": features["weak1"], "strong": features["strong"]}, y_train, y_test,
                     settings=ProtocolSettings(methods=["ensemble"]))
