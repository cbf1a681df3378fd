"""The stacked trainer: every head equals the same head trained alone by the reference loop.

The reference is LinearProbe's former training loop (autograd through
losses.py, torch.optim.Adam, torch's CosineAnnealingLR rule), kept here as
the independent check of the hand-written gradients and Adam.
"""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from w2s_gguf.errors import W2SError
from w2s_gguf.core.heads import LinearProbe
from w2s_gguf.core.inputs import one_thread
from w2s_gguf.core.losses import make_loss
from w2s_gguf.core.stacked import HeadJob, _targets, train_heads

from real_features import sentiment_features  # noqa: F401  (fixture)


def reference_proba(job: HeadJob, X_eval: np.ndarray) -> np.ndarray:
    """Train one head the pre-stack way and return its probabilities on X_eval."""
    X = np.asarray(job.x, dtype=np.float32)
    n, d = X.shape
    y = np.asarray(job.targets)
    targets = torch.from_numpy(np.eye(2, dtype=np.float32)[y] if y.ndim == 1 else y.astype(np.float32))
    if job.standardize:
        mean, std = X.mean(0, dtype=np.float64), X.std(0, dtype=np.float64)
        std[std == 0] = 1.0
        mean, std = mean.astype(np.float32), std.astype(np.float32)
    else:
        mean, std = np.zeros(d, np.float32), np.ones(d, np.float32)
    Xt = torch.from_numpy((X - mean) / std)
    loss_fn = make_loss(job.loss, **job.loss_options)
    linear = torch.nn.Linear(d, 2)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    opt = torch.optim.Adam(linear.parameters(), lr=job.lr)
    gen = torch.Generator().manual_seed(job.seed)
    total = job.epochs * math.ceil(n / job.batch_size)
    l2 = 0.0 if job.C is None else 1.0 / (job.C * n)
    with one_thread():
        _reference_loop(job, n, Xt, targets, loss_fn, linear, opt, gen, total, l2)
    with torch.no_grad():
        return torch.softmax(linear(torch.from_numpy((X_eval.astype(np.float32) - mean) / std)), dim=1).numpy()


def _reference_loop(job, n, Xt, targets, loss_fn, linear, opt, gen, total, l2):
    step = 0
    for _ in range(job.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, job.batch_size):
            idx = perm[start : start + job.batch_size]
            for group in opt.param_groups:
                group["lr"] = job.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = loss_fn(linear(Xt[idx]), targets[idx], step / total)
            if l2:
                loss = loss + l2 * linear.weight.pow(2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1


LOSS_CASES = [("xent", {}), ("logconf", {}), ("logconf", {"schedule": "openai"}), ("product", {}),
              ("kl", {}), ("entropy", {}), ("window", {"radius": 0.1}), ("window", {"radius": 0.3})]


def mixed_jobs(X, y, soft):
    """Heads that differ in every way a stack must keep apart: n, d, loss, seed, C, batch, epochs, scaling."""
    n = len(X)
    a, b = X[: n // 2 - 7], X[n // 2 - 7 :]  # halves of different sizes
    ya = y[: n // 2 - 7]
    jobs = [HeadJob(b, soft, seed=seed, loss=loss, loss_options=opts) for loss, opts in LOSS_CASES for seed in (0, 1)]
    jobs += [
        HeadJob(a, ya, seed=3),
        HeadJob(a[:, : X.shape[1] // 3], ya, seed=3, C=None),  # narrower features, no penalty
        HeadJob(b, soft, seed=5, batch_size=32, epochs=3, lr=3e-3, C=0.1),
        HeadJob(b[:50], soft[:50], seed=2, loss="logconf"),  # one batch per epoch, far fewer steps
        HeadJob(a, ya, seed=4, standardize=False, C=1.0),
    ]
    return jobs


def check_against_reference(X, y, soft, X_eval, atol):
    jobs = mixed_jobs(X, y, soft)
    heads = train_heads(jobs)
    worst = 0.0
    for job, head in zip(jobs, heads):
        Xe = X_eval[:, : job.x.shape[1]]
        worst = max(worst, float(np.abs(head.predict_proba(Xe) - reference_proba(job, Xe)).max()))
    assert worst < atol
    return heads


def synthetic(n=500, d=40, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d)
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, d)) + np.outer(2 * y - 1, w / np.linalg.norm(w)) * 0.8) * rng.uniform(0.1, 10, d) + 50
    return X.astype(np.float32), y


def weak_soft_labels(X, y, dims):
    """A weak supervisor: a probe on a few dims of the first half, applied to the second half."""
    n = len(X) // 2 - 7
    return LinearProbe(seed=0).fit(X[:n, :dims], y[:n]).predict_proba(X[n:, :dims])


# ---------------------------------------------------------------- synthetic

def test_stack_matches_reference_synthetic():
    X, y = synthetic()
    check_against_reference(X, y, weak_soft_labels(X, y, 5), synthetic(200, seed=1)[0], atol=1e-5)


def test_stack_matches_heads_trained_alone():
    X, y = synthetic()
    jobs = mixed_jobs(X, y, weak_soft_labels(X, y, 5))
    stacked = train_heads(jobs)
    for job, head in zip(jobs, stacked):
        (alone,) = train_heads([job])
        Xe = X[:, : job.x.shape[1]]
        assert np.abs(head.predict_proba(Xe) - alone.predict_proba(Xe)).max() < 1e-5
        assert head.steps == alone.steps == job.epochs * math.ceil(len(job.x) / job.batch_size)


def test_linear_probe_is_a_stack_of_one():
    X, y = synthetic(300)
    probe = LinearProbe(loss="xent", seed=7).fit(X, y)
    (head,) = train_heads([HeadJob(X, y, seed=7)])
    assert np.array_equal(probe.predict_proba(X), head.predict_proba(X))


@pytest.mark.parametrize("name, opts", LOSS_CASES)
def test_batched_gradient_is_autograd_of_the_loss(name, opts):
    # Three heads, two with padded (masked) batches, one of them too small for logconf's quantile:
    # each head's gradient w (p sum(t) - t) / n equals autograd of losses.py on its real rows only.
    torch.manual_seed(0)
    loss = make_loss(name, **opts)
    z = torch.randn(3, 12, 2, dtype=torch.float64) * 2
    y1 = torch.rand(3, 12, dtype=torch.float64)
    y = torch.stack([1 - y1, y1], dim=2)
    mask = torch.tensor([[1.0] * 12, [1.0] * 10 + [0.0] * 2, [1.0] * 3 + [0.0] * 9], dtype=torch.float64)
    count = mask.sum(dim=1)
    progress = np.array([0.05, 0.6, 0.9])
    coefs = ()
    if name in ("logconf", "entropy"):
        from w2s_gguf.core.stacked import _logconf_coefs
        coefs = _logconf_coefs(loss, progress)
    p = torch.softmax(z, dim=2)
    t, w = _targets(loss, p.float(), y.float(), mask.float(), count.float(), coefs)
    gz = (p.float() * t.sum(dim=2, keepdim=True) - t) * (w / count.float()[:, None])[:, :, None]
    for k in range(3):
        rows = int(count[k])
        zk = z[k, :rows].clone().float().requires_grad_()
        loss(zk, y[k, :rows].float(), float(progress[k])).backward()
        assert torch.allclose(gz[k, :rows], zk.grad, atol=1e-7)
        assert torch.all(gz[k, rows:] == 0)


def test_a_one_doc_batch_hardens_to_its_own_argmax():
    # A head whose last batch holds one doc (101 docs, batch 100): that doc's own p0 was the
    # batch's quantile, so it always hardened to class 0. Here p0 = 0.3 (the head says class 1).
    loss = make_loss("logconf")
    p = torch.tensor([[[0.3, 0.7]] + [[0.5, 0.5]] * 3])
    y = torch.tensor([[[0.1, 0.9]] * 4])
    mask = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    t, _ = _targets(loss, p, y, mask, mask.sum(dim=1), (np.array([1.0]), np.array([0.0])))
    assert t[0, 0].tolist() == [0.0, 1.0]


def test_entropy_trains_the_head_xent_trains_with_c_times_one_minus_c():
    # The gradient identity of tests/core/test_losses.py, through Adam: once c has warmed up to 0.5,
    # entropy's head is xent's head with C x 0.5 (a stronger L2), not xent's head with the same C.
    X, _ = synthetic(450, 32)
    X_test, _ = synthetic(300, 32, seed=1)
    z = (X - X.mean(axis=0)) / X.std(axis=0)
    p1 = 1 / (1 + np.exp(-(z[:, 0] + z[:, 1])))
    soft = np.stack([1 - p1, p1], axis=1).astype(np.float32)
    entropy, stronger_l2, same_c = (h.predict_proba(X_test) for h in train_heads(
        [HeadJob(X, soft, loss="entropy"), HeadJob(X, soft, C=0.01 * 0.5), HeadJob(X, soft, C=0.01)]))
    # The warm-up (c from 0 to 0.5 over the first fifth) is the only difference: 0.005 on average here.
    assert np.abs(entropy - stronger_l2).mean() < 0.01
    assert np.abs(entropy - same_c).mean() > 0.04  # 0.062


def test_no_dynamo_import():
    # torch.optim's Adam pulls in torch._dynamo at its first step (1.4 s); the stack must not.
    code = ("import sys, numpy as np; from w2s_gguf.core.stacked import HeadJob, train_heads; "
            "x = np.random.default_rng(0).normal(size=(50, 4)).astype('float32'); "
            "train_heads([HeadJob(x, np.arange(50) % 2, epochs=1)]); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


def test_bad_jobs_raise():
    X, y = synthetic(50)
    with pytest.raises(W2SError, match="epochs"):
        train_heads([HeadJob(X, y, epochs=0)])
    with pytest.raises(W2SError, match="unknown loss"):
        train_heads([HeadJob(X, y, loss="nope")])
    with pytest.raises(W2SError, match="50 docs"):
        train_heads([HeadJob(X, y[:40])])
    with pytest.raises(W2SError, match="trained on 40"):
        train_heads([HeadJob(X, y)])[0].predict_proba(X[:, :10])
    assert train_heads([]) == []


# ---------------------------------------------------------------- real features

@pytest.mark.slow
def test_stack_matches_reference_on_real_features(sentiment_features):
    X, y, X_test, _ = sentiment_features
    soft = weak_soft_labels(X, y, 16)
    check_against_reference(X, y, soft, X_test, atol=1e-5)
