"""LinearProbe: learns, matches scikit-learn's C, is deterministic, rejects bad data."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from w2s_gguf.errors import W2SError
from w2s_gguf.core.heads import LinearProbe, _zero_head


def make_data(n=400, d=30, seed=0, margin=1.0, noise=1.0):
    """Two Gaussian classes along a random direction, plus a large offset and
    uneven scales per dimension (as in LM features) that standardising removes."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) * noise + np.outer(2 * y - 1, w) * margin
    X = X * rng.uniform(0.1, 10, size=d) + 50
    return X.astype(np.float32), y


def standardized(X, ref):
    return (X - ref.mean(0)) / ref.std(0)


def test_learns_separable_problem():
    # One draw split in two, so train and test share the class direction.
    X, y = make_data(n=800, margin=4.0, noise=0.5)
    probe = LinearProbe().fit(X[:400], y[:400])
    assert (probe.predict(X[:400]) == y[:400]).mean() >= 0.99
    assert (probe.predict(X[400:]) == y[400:]).mean() >= 0.97
    proba = probe.predict_proba(X[400:])
    assert proba.shape == (400, 2)
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-6)


def test_zero_init_predicts_one_half():
    head = _zero_head(7)
    with torch.no_grad():
        p = torch.softmax(head(torch.randn(5, 7)), dim=1)
    assert torch.equal(p, torch.full((5, 2), 0.5))


def test_weights_stay_antisymmetric():
    # The reason C matches scikit-learn's: W[1] = -W[0] throughout training.
    X, y = make_data()
    W = LinearProbe().fit(X, y).linear_.weight.detach()
    assert torch.allclose(W[0], -W[1], atol=1e-7)


def test_converged_head_is_sklearn_logistic_regression():
    # Trained to convergence, the head minimises sklearn's objective (divided by
    # C n), so its weight vector W[1] - W[0] and bias match sklearn's at the same C.
    X, y = make_data(n=300, d=20, margin=0.5)
    Xs = standardized(X, X)
    for C in (0.01, 0.1):
        sk = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(Xs, y)
        probe = LinearProbe(C=C, epochs=200, lr=1e-2, batch_size=300).fit(X, y)
        W = probe.linear_.weight.detach().double().numpy()
        b = probe.linear_.bias.detach().double().numpy()
        assert np.allclose(W[1] - W[0], sk.coef_[0], rtol=0.01, atol=1e-4)
        assert b[1] - b[0] == pytest.approx(sk.intercept_[0], abs=1e-3)


def test_defaults_agree_with_sklearn_c001():
    # Noisy problem, more dims than a C=0.01 probe can use: the default head
    # should predict what sklearn's C=0.01 probe predicts.
    X, y = make_data(n=1000, d=300, margin=0.6, noise=1.0)
    Xtr, ytr, Xte, yte = X[:500], y[:500], X[500:], y[500:]
    sk = LogisticRegression(C=0.01, max_iter=5000).fit(standardized(Xtr, Xtr), ytr)
    sk_pred = sk.predict(standardized(Xte, Xtr))
    probe = LinearProbe().fit(Xtr, ytr)
    pred = probe.predict(Xte)
    assert (pred == sk_pred).mean() >= 0.95
    assert abs((pred == yte).mean() - (sk_pred == yte).mean()) <= 0.02


def test_soft_targets():
    X, y = make_data(n=400, margin=2.0)
    soft = np.where(y[:, None] == 1, [0.2, 0.8], [0.8, 0.2]).astype(np.float32)
    hard = LinearProbe().fit(X, y)
    probe = LinearProbe().fit(X, soft)
    assert (probe.predict(X) == hard.predict(X)).mean() >= 0.97
    # Targets of 0.8 pull probabilities towards 0.8, not 1.
    assert probe.predict_proba(X).max() < hard.predict_proba(X).max()


@pytest.mark.parametrize("loss", ["logconf", "product"])
def test_weak_losses_train(loss):
    X, y = make_data(n=400, margin=2.0)
    soft = np.where(y[:, None] == 1, [0.3, 0.7], [0.7, 0.3]).astype(np.float32)
    probe = LinearProbe(loss=loss).fit(X, soft)
    assert (probe.predict(X) == y).mean() >= 0.9


def test_same_seed_same_probabilities():
    X, y = make_data(n=450)
    a = LinearProbe(seed=3).fit(X, y).predict_proba(X)
    b = LinearProbe(seed=3).fit(X, y).predict_proba(X)
    c = LinearProbe(seed=4).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the data order


@pytest.mark.parametrize("standardize", [True, False])
def test_readonly_memmap_input(tmp_path, standardize):
    X, y = make_data()
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert not Xm.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "non-writable array" warning
        probe = LinearProbe(standardize=standardize).fit(Xm, y)
        proba = probe.predict_proba(Xm)
    assert np.array_equal(proba, LinearProbe(standardize=standardize).fit(X, y).predict_proba(X))
    assert np.array_equal(np.load(tmp_path / "X.npy"), X)  # the file is untouched


def test_constant_feature_and_no_standardize():
    X, y = make_data(margin=3.0)
    X[:, 0] = 7.0  # zero std: must not produce NaN
    assert np.isfinite(LinearProbe().fit(X, y).predict_proba(X)).all()
    Xs = standardized(X[:, 1:], X[:, 1:])
    assert (LinearProbe(standardize=False).fit(Xs, y).predict(Xs) == y).mean() >= 0.95


def test_bad_labels_raise():
    X, y = make_data(n=10)
    with pytest.raises(W2SError, match=r"labels must be 0/1, got \{2, 3\}"):
        LinearProbe().fit(X, np.array([0, 1, 2, 3, 0, 1, 0, 1, 0, 1]))
    with pytest.raises(W2SError, match="both classes"):
        LinearProbe().fit(X, np.zeros(10, dtype=int))
    with pytest.raises(W2SError, match="10 docs"):
        LinearProbe().fit(X, y[:9])
    with pytest.raises(W2SError, match="sum to 1"):
        LinearProbe().fit(X, np.full((10, 2), 0.6, dtype=np.float32))
    with pytest.raises(W2SError, match="logits"):
        LinearProbe().fit(X, np.tile(np.array([[-1.0, 2.0]], dtype=np.float32), (10, 1)))


def test_nan_features_raise():
    X, y = make_data(n=20)
    X[3, 5] = np.nan
    with pytest.raises(W2SError, match="features contain NaN in 1 of 20 docs"):
        LinearProbe().fit(X, y)
    X[3, 5] = np.inf
    with pytest.raises(W2SError, match="infinite"):
        LinearProbe().fit(X, y)


def test_predict_checks_dims():
    X, y = make_data(d=30)
    probe = LinearProbe().fit(X, y)
    with pytest.raises(W2SError, match="30"):
        probe.predict(X[:, :20])
    with pytest.raises(RuntimeError, match="before fit"):
        LinearProbe().predict(X)


def test_bad_hyperparameters_raise():
    with pytest.raises(W2SError, match="unknown loss 'foo'"):
        LinearProbe(loss="foo")
    with pytest.raises(W2SError, match="epochs"):
        LinearProbe(epochs=0)
    with pytest.raises(W2SError, match="C must be positive"):
        LinearProbe(C=0)
    with pytest.raises(W2SError, match="unknown option"):
        LinearProbe(loss="xent", loss_options={"aux_coef": 0.5})


def test_config_records_what_was_trained():
    X, y = make_data(n=250, d=12)
    probe = LinearProbe(loss="logconf", loss_options={"schedule": "openai"}, seed=2)
    soft = np.eye(2, dtype=np.float32)[y]
    cfg = probe.fit(X, soft).config()
    assert cfg["loss"] == "logconf"
    assert cfg["loss_options"] == {"aux_coef": 0.5, "warmup_frac": 0.1, "schedule": "openai"}
    assert cfg["seed"] == 2 and cfg["C"] == probe.C
    assert (cfg["n_train"], cfg["n_features"]) == (250, 12)
    assert cfg["steps"] == probe.epochs * -(-250 // probe.batch_size)
    assert probe.get_params()["loss_options"] == {"schedule": "openai"}


def test_soft_targets_just_outside_the_losses_tolerance_fail_at_the_boundary():
    """Rows off by 5e-4 once passed the head's check (1e-3) and died inside the loss (1e-4) with a traceback."""
    from w2s_gguf.core.losses import ROW_SUM_ATOL

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, 40)
    y = np.stack([p, 1 - p + 5 * ROW_SUM_ATOL], axis=1)
    with pytest.raises(W2SError, match=r"sum to 1 \(within 0.0001\).*divide each row by its sum"):
        LinearProbe(epochs=1).fit(X, y)
    LinearProbe(epochs=1).fit(X, y / y.sum(axis=1, keepdims=True))  # the fix the message names works
