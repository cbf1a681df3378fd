"""How a run's numbers are scored and summarised: the ensemble row, misfit against each student's own
teacher, both halves' ceilings, Holm over a pair's methods (w2s_gguf/core/summaries.py, protocol.py)."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.intervals import misfit, sq_gain
from w2s_gguf.core.protocol import ProtocolSettings, run_protocol
from w2s_gguf.core.summaries import Run, pair_result
from w2s_gguf.report.table import diff_text

from test_protocol import synthetic


def accuracy(proba, y) -> float:
    return float(np.mean(np.argmax(proba, axis=1) == y))


def test_the_ensemble_is_one_row_scored_against_the_ensemble_teacher():
    # a < b < c: before, pairs (a, c) and (b, c) trained the same ensemble student and each scored it
    # against its own single weak model, so (a, c) reported a higher PGR for the same student.
    features, y_train, y_test = synthetic({"a": 0.3, "b": 0.5, "c": 2.0}, n_test=400)
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=3, methods=["xent", "ensemble"]))
    assert [(p.weak, p.strong) for p in out.pairs] == [("a", "b"), ("a", "c"), ("b", "c"), ("ensemble(a+b)", "c")]
    assert all("ensemble" not in p.summary for p in out.pairs[:3])
    row = out.pairs[3]
    assert row.teachers == ["a", "b"] and list(row.summary) == ["ensemble"]
    teacher = {seed: np.mean([out.predictions[f"gt|{m}|{seed}"] for m in "ab"], axis=0) for seed in range(3)}
    assert [s.weak_acc for s in row.per_seed] == [accuracy(teacher[seed], y_test) for seed in range(3)]
    assert row.strong_acc == out.pairs[1].strong_acc  # c's ceiling, as in c's other pairs
    # PGR: the student's mean gain over the ensemble teacher, over the mean gap to c's ceiling.
    student = [accuracy(out.predictions[f"transfer|ensemble(a+b)|c|ensemble|{seed}"], y_test) for seed in range(3)]
    s = row.summary["ensemble"]
    assert row.gap.distinguishable and s.pgr == pytest.approx(
        (np.mean(student) - row.weak_acc) / (row.strong_acc - row.weak_acc))
    assert s.pgr_ci[0] < s.pgr < s.pgr_ci[1]


def test_misfit_is_measured_against_the_targets_the_student_learnt_from():
    features, y_train, y_test = synthetic({"weak": 0.6, "strong": 1.5})
    methods = ["xent", "hard", "knn-relabel-20", "bootstrap-1"]
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=2, methods=methods))
    pair, pred = out.pairs[0], out.predictions
    for seed in range(2):
        weak, scores = pred[f"gt|weak|{seed}"], pair.per_seed[seed].transfer
        teachers = {
            "xent": weak,
            "hard": np.eye(2)[weak.argmax(axis=1)],  # hard labels: the weak model's argmax
            "knn-relabel-20": pred[f"teacher|weak|strong|knn-relabel-20|{seed}"],
            # bootstrap-1 learns from the round-0 student, which is xent's student exactly.
            "bootstrap-1": pred[f"transfer|weak|strong|xent|{seed}"],
        }
        assert np.array_equal(pred[f"teacher|weak|strong|bootstrap-1|{seed}"], teachers["bootstrap-1"])
        for method, teacher in teachers.items():
            student = pred[f"transfer|weak|strong|{method}|{seed}"]
            assert scores[method].misfit == pytest.approx(misfit(student, teacher), abs=1e-12), method
            assert scores[method].sq_gain == pytest.approx(sq_gain(student, teacher, y_test), abs=1e-12), method
            assert 0 <= scores[method].disagree_train <= 1
        assert scores["knn-relabel-20"].misfit != pytest.approx(misfit(pred[f"transfer|weak|strong|knn-relabel-20|{seed}"], weak))


def test_the_two_quantities_of_charikar_et_al():
    teacher = np.array([[0.4, 0.6], [0.7, 0.3], [0.5, 0.5]])
    student = np.array([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    labels = np.array([1, 0, 1])
    assert misfit(student, teacher) == pytest.approx((0.2 ** 2 + 0.2 ** 2 + 0) / 3)
    # squared errors of P(1): teacher (0.16 + 0.09 + 0.25) / 3, student (0.04 + 0.01 + 0.25) / 3
    assert sq_gain(student, teacher, labels) == pytest.approx((0.50 - 0.30) / 3)


def test_with_the_ceiling_on_half_b_both_halves_heads_are_saved_and_labelled():
    features, y_train, y_test = synthetic({"weak": 0.4, "strong": 1.5})
    out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=2, ceiling_half="B"))
    assert [(g.model, g.half) for g in out.ground_truth] == [("weak", "A"), ("strong", "A"), ("weak", "B"), ("strong", "B")]
    pair, pred = out.pairs[0], out.predictions
    for seed in range(2):
        # The pair's strong accuracy is the half-B head's, recomputable from predictions.npz.
        assert pair.per_seed[seed].strong_acc == accuracy(pred[f"ceiling|strong|{seed}"], y_test)
        assert pair.per_seed[seed].weak_acc == accuracy(pred[f"gt|weak|{seed}"], y_test)
    half_b = next(g for g in out.ground_truth if g.model == "strong" and g.half == "B")
    assert pair.strong_acc == pytest.approx(half_b.acc_mean)
    assert not any(k.startswith("ceiling|") for k in run_protocol(features, y_train, y_test,
                                                                   settings=ProtocolSettings(seeds=1)).predictions)


def _run(correct: np.ndarray, y: np.ndarray) -> Run:
    """A head whose test predictions are right exactly where `correct` says."""
    return Run(np.eye(2)[np.where(correct, y, 1 - y)])


def _changed(rng, correct: np.ndarray, up: int, down: int) -> np.ndarray:
    """`correct` with, per seed, `up` wrong docs made right and `down` right docs made wrong."""
    out = correct.copy()
    for seed in range(len(out)):
        out[seed, rng.choice(np.flatnonzero(~correct[seed]), up, replace=False)] = True
        out[seed, rng.choice(np.flatnonzero(correct[seed]), down, replace=False)] = False
    return out


def test_a_pairs_methods_against_xent_are_one_family_corrected_by_holm():
    # Twelve methods on 5 seeds x 600 docs, each changing 60 of xent's answers per seed. m0 gains 8 docs
    # per seed: its own interval excludes 0 (p about 0.02), one of the 0.6 false stars a pair of 12
    # methods collects at 95% each. Holm's threshold for the smallest of 12 p-values is 0.05 / 12.
    rng = np.random.default_rng(0)
    seeds, n = list(range(5)), 600
    y = rng.integers(0, 2, n)
    xent = rng.random((5, n)) < 0.75
    methods = {f"m{k}": _changed(rng, xent, *((34, 26) if k == 0 else (31, 29) if k % 2 else (29, 31)))
               for k in range(12)}
    weak, strong = rng.random((5, n)) < 0.6, rng.random((5, n)) < 0.85
    transfer = {("w", "s", name, seed): _run(c[seed], y) for name, c in {"xent": xent, **methods}.items()
                for seed in seeds}
    res = pair_result(ProtocolSettings(), ["xent", *methods], "last", "w", "s", seeds, y,
                      {("w", seed): _run(weak[seed], y) for seed in seeds},
                      {("s", seed): _run(strong[seed], y) for seed in seeds}, transfer, None)
    m0 = res.summary["m0"].vs_xent
    assert m0.ci[0] > 0 and 0.05 / 12 < m0.p_value < 0.05
    assert m0.holm is False and not diff_text(m0).endswith("*")
    assert all(s.vs_xent.holm is False for name, s in res.summary.items() if name != "xent")
    # A real difference survives the correction.
    big = pair_result(ProtocolSettings(), ["xent", "m0"], "last", "w", "s", seeds, y,
                      {("w", seed): _run(weak[seed], y) for seed in seeds},
                      {("s", seed): _run(strong[seed], y) for seed in seeds},
                      {**transfer, **{("w", "s", "m0", seed): _run(_changed(rng, xent, 60, 0)[seed], y) for seed in seeds}},
                      None)
    assert big.summary["m0"].vs_xent.holm and diff_text(big.summary["m0"].vs_xent).endswith("*")


def test_holm_steps_down():
    from w2s_gguf.core.intervals import holm

    assert holm({"a": 0.01, "b": 0.02, "c": 0.04}) == {"a": True, "b": True, "c": True}  # 0.05/3, 0.05/2, 0.05
    assert holm({"a": 0.01, "b": 0.03, "c": 0.04}) == {"a": True, "b": False, "c": False}  # 0.03 > 0.025 stops it
    assert holm({"a": 0.02, "b": 0.001}) == {"a": True, "b": True}
    assert holm({"a": 0.03, "b": 0.04}) == {"a": False, "b": False}
    assert holm({}) == {}
