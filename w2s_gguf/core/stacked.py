"""Train many independent linear heads at once.

`train_heads(jobs)` trains K heads as one (K, 2, d) weight tensor (the
layout of torch's Linear weight) with batched matmuls. Each head keeps everything LinearProbe gives it alone
(heads.py): its own standardisation, data, targets,
seed-driven data order (torch.randperm on a Generator seeded with the
head's seed, one permutation per epoch), loss, L2 = 1/(C n), and a cosine
learning rate over its own number of steps. So a head trained in a stack
equals the same head trained alone, up to float rounding.

How heads of different sizes stay exact: at global step s head k takes the
s-th batch of its own schedule. Its rows are padded to the largest batch
with an index of an all-zero row and weight 0, and every mean divides by the
head's real batch size. A head whose steps are done gets learning rate 0,
so its weights no longer move. Features of different widths are padded
with zero columns, which keep zero weights (their gradient is 0).

Gradients are written out, not taken by autograd: every loss here is a
(weighted) cross-entropy against a target t with no gradient through t, so
d loss / d logits = w (p * sum(t) - t) / n_batch, the same expression
autograd evaluates for LinearProbe. Adam is written out as torch's
single-tensor Adam (betas 0.9/0.999, eps 1e-8), without torch.optim, whose
import pulls in torch._dynamo (1.4 s).

Memory: one float32 copy of each distinct features array (jobs that pass
the same object share it), padded to the largest n and d of the stack, plus
(steps x heads x batch) int64 row indices. Stack per seed or per model
group when the features are large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import W2SError
from .inputs import as_features, as_targets, check_settings, one_thread
from .losses import MIN_QUANTILE_BATCH, Loss, make_loss

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


@dataclass
class HeadJob:
    """One head to train: features (n, d), labels (n,) or soft targets (n, 2), and its settings.

    Jobs given the same `x` object share one standardised copy of it.
    """

    x: np.ndarray
    targets: np.ndarray
    seed: int = 0
    loss: str = "xent"
    loss_options: dict = field(default_factory=dict)
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 100
    C: float | None = 0.01
    standardize: bool = True


@dataclass
class TrainedHead:
    """A trained head: logits = standardise(X) @ weight.T + bias."""

    weight: np.ndarray  # (2, d) float32
    bias: np.ndarray  # (2,) float32
    mean: np.ndarray | None  # standardisation, None when the job did not standardise
    std: np.ndarray | None
    n_train: int
    steps: int
    loss: Loss

    @property
    def n_features(self) -> int:
        return self.weight.shape[1]

    def standardized(self, X) -> np.ndarray:
        X = as_features(X)
        if X.shape[1] != self.n_features:
            raise W2SError(
                f"features have {X.shape[1]} dims but the probe was trained on {self.n_features}; "
                "use features from the same model for training and prediction"
            )
        # Always a new array: X may be a read-only memmap.
        X = (X - self.mean) / self.std if self.mean is not None else X.copy()
        return np.ascontiguousarray(X, dtype=np.float32)

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) float32 probabilities; column 1 is P(label 1)."""
        with one_thread():  # tiny matmul: a second thread only adds a sync (inputs.one_thread)
            logits = torch.nn.functional.linear(torch.from_numpy(self.standardized(X)),
                                                torch.from_numpy(self.weight), torch.from_numpy(self.bias))
            return torch.softmax(logits, dim=1).numpy()


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0  # a constant dimension carries no signal; dividing by 1 keeps it at 0
    mean, std = mean.astype(np.float32), std.astype(np.float32)
    return (X - mean) / std, mean, std


def _schedule(n: int, epochs: int, batch_size: int, seed: int) -> list[np.ndarray]:
    """The head's batches in order: LinearProbe's per-epoch torch.randperm on a seeded Generator."""
    gen = torch.Generator().manual_seed(int(seed))
    batches = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).numpy()
        batches.extend(perm[start : start + batch_size] for start in range(0, n, batch_size))
    return batches


# ---------------------------------------------------------------- batched targets
# Each takes (G heads of one loss): p, y (G, B, 2), mask (G, B), count (G,),
# the step's schedule values, and returns the target t (G, B, 2) and row
# weights w (G, B). Formulas: losses.py (the single-head reference).

def _logconf_coefs(loss: Loss, progress: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """c and 1 - c per head, in float64 as the single head computes them, then float32."""
    a, frac = loss.options["aux_coef"], loss.options["warmup_frac"]
    if loss.options["schedule"] == "linear":
        c = a * np.minimum(1.0, progress / frac)
    else:
        c = a * np.where(progress <= frac, progress, 1.0)
    return c, 1.0 - c


def _targets(loss: Loss, p, y, mask, count, coefs):
    name, opts = loss.name, loss.options
    w = mask
    if name in ("xent", "kl"):  # kl = xent + the targets' entropy, a constant: same gradient
        t = y
    elif name == "product":
        t = p ** opts["beta"] * y ** opts["alpha"]
        t = t / t.sum(dim=2, keepdim=True).clamp_min(torch.finfo(t.dtype).tiny)
    elif name == "window":
        w = mask * (p.max(dim=2).values < 0.5 + opts["radius"]).to(p.dtype)
        t = y
    elif name in ("logconf", "entropy"):
        c, one_minus_c = (torch.from_numpy(a.astype(np.float32))[:, None, None] for a in coefs)
        if name == "entropy":
            aux = p
        else:
            # The q-quantile of p0 over the head's real rows (torch.quantile's linear rule);
            # padded rows sort last as +inf and are never reached.
            p0 = p[:, :, 0].masked_fill(mask == 0, math.inf)
            q = (y[:, :, 1] * mask).sum(dim=1) / count
            ranks = q * (count - 1)
            below = ranks.long()
            above = ranks.ceil().long()
            ordered = p0.sort(dim=1).values
            lo = ordered.gather(1, below[:, None])
            hi = ordered.gather(1, above[:, None])
            thr = lo.lerp(hi, (ranks - below)[:, None])
            # Too few docs for a quantile (losses.MIN_QUANTILE_BATCH): harden at 0.5, the own argmax.
            thr = torch.where(count[:, None] < MIN_QUANTILE_BATCH, torch.full_like(thr, 0.5), thr)
            aux = torch.stack([p[:, :, 0] >= thr, p[:, :, 0] < thr], dim=2).to(p.dtype)
        t = one_minus_c * y + c * aux
    else:
        raise ValueError(f"stacked training has no batched form of loss {name!r}")
    return t, w


# ---------------------------------------------------------------- training

def train_heads(jobs: list[HeadJob]) -> list[TrainedHead]:
    """Train every job's head at once; heads come back in the order of the jobs."""
    if not jobs:
        return []
    losses = []
    for job in jobs:
        check_settings(job.epochs, job.lr, job.batch_size, job.C)
        losses.append(make_loss(job.loss, **(job.loss_options or {})))

    # One standardised copy per distinct features object (and standardize flag).
    data_index: dict[tuple[int, bool], int] = {}
    datasets, stats, data_of = [], [], []
    for job in jobs:
        key = (id(job.x), bool(job.standardize))
        if key not in data_index:
            X = as_features(job.x)
            if job.standardize:
                Xs, mean, std = _standardize(X)
            else:  # a copy: X may be a read-only memmap, which torch would share (and warn about)
                Xs, mean, std = np.array(X, dtype=np.float32), None, None
            data_index[key] = len(datasets)
            datasets.append(Xs)
            stats.append((mean, std))
        data_of.append(data_index[key])
    ns = [len(datasets[i]) for i in data_of]
    targets = [as_targets(job.targets, n) for job, n in zip(jobs, ns)]

    K, n_max = len(jobs), max(ns)
    d_max = max(X.shape[1] for X in datasets)
    pad = n_max  # index of an all-zero row (features and targets)
    X_all = torch.zeros(len(datasets), n_max + 1, d_max)
    for i, X in enumerate(datasets):
        X_all[i, : len(X), : X.shape[1]] = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    Y_all = torch.zeros(K, n_max + 1, 2)
    for k, y in enumerate(targets):
        Y_all[k, : len(y)] = torch.from_numpy(y)

    # Every head's batch plan, padded to the widest batch and the longest schedule.
    plans = [_schedule(n, job.epochs, job.batch_size, job.seed) for job, n in zip(jobs, ns)]
    totals = np.array([len(p) for p in plans])
    S, B = int(totals.max()), max(job.batch_size for job in jobs)
    idx_np = np.full((S, K, B), pad, dtype=np.int64)
    count = np.zeros((S, K), dtype=np.float32)
    for k, plan in enumerate(plans):
        for s, batch in enumerate(plan):
            idx_np[s, k, : len(batch)] = batch
            count[s, k] = len(batch)
    idx = torch.from_numpy(idx_np)
    count_t = torch.from_numpy(np.maximum(count, 1.0))  # finished heads: all-pad batch, gradient 0
    mask_all = idx != pad

    steps = np.arange(S)[:, None]
    progress = steps / totals[None, :]
    base_lr = np.array([job.lr for job in jobs])
    lr = np.where(steps < totals, base_lr * 0.5 * (1 + np.cos(math.pi * progress)), 0.0)
    # Adam's bias corrections: every head starts at step 0, so step s is its (s+1)-th.
    step_size = torch.from_numpy((lr / (1 - BETA1 ** (steps + 1.0))).astype(np.float32))
    bc2_sqrt = np.sqrt(1 - BETA2 ** (np.arange(S) + 1.0))
    l2 = torch.tensor([0.0 if job.C is None else 1.0 / (job.C * n) for job, n in zip(jobs, ns)],
                      dtype=torch.float32)[:, None, None]
    # Flat row numbers into X_all viewed as (D * (n_max + 1), d): index_select is ~5x faster than 2-D fancy indexing.
    flat_rows = torch.tensor(data_of)[None, :, None] * (n_max + 1) + idx  # (S, K, B)
    X_flat = X_all.reshape(-1, d_max)

    groups: dict[str, list[int]] = {}
    for k, loss in enumerate(losses):
        groups.setdefault(repr(loss), []).append(k)
    group_list = [(losses[ks[0]], torch.tensor(ks)) for ks in groups.values()]
    coefs = {key: _logconf_coefs(losses[ks[0]], progress[:, ks])
             for key, ks in groups.items() if losses[ks[0]].name in ("logconf", "entropy")}

    W = torch.zeros(K, 2, d_max)
    b = torch.zeros(K, 2)
    mW, vW, mb, vb = (torch.zeros_like(a) for a in (W, W, b, b))
    with one_thread(), torch.no_grad():
        for s in range(S):
            rows = idx[s]
            xb = X_flat.index_select(0, flat_rows[s].reshape(-1)).reshape(K, B, d_max)
            yb = Y_all.gather(1, rows[:, :, None].expand(K, B, 2))
            mask = mask_all[s].to(torch.float32)
            n_b = count_t[s]
            # (K, B, d) @ (K, d, 2) as a transposed view of (K, 2, d): several times faster than a
            # contiguous (K, d, 2) operand for this thin output (measured, one thread).
            p = torch.softmax(torch.bmm(xb, W.transpose(1, 2)) + b[:, None, :], dim=2)
            if len(group_list) == 1:
                loss = group_list[0][0]
                t, w = _targets(loss, p, yb, mask, n_b, tuple(c[s] for c in coefs.get(repr(loss), ())))
            else:
                t, w = torch.empty_like(p), torch.empty_like(mask)
                for loss, kt in group_list:
                    c = tuple(c[s] for c in coefs.get(repr(loss), ()))
                    t[kt], w[kt] = _targets(loss, p[kt], yb[kt], mask[kt], n_b[kt], c)
            gz = (p * t.sum(dim=2, keepdim=True) - t) * (w / n_b[:, None])[:, :, None]
            gW = torch.bmm(gz.transpose(1, 2), xb) + 2 * l2 * W
            gb = gz.sum(dim=1)
            ss = step_size[s]
            for param, grad, m, v, scale in ((W, gW, mW, vW, ss[:, None, None]), (b, gb, mb, vb, ss[:, None])):
                m.lerp_(grad, 1 - BETA1)
                v.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
                denom = (v.sqrt() / bc2_sqrt[s]).add_(EPS)
                param.sub_(scale * m / denom)

    heads = []
    for k, job in enumerate(jobs):
        X = datasets[data_of[k]]
        mean, std = stats[data_of[k]]
        d = X.shape[1]
        heads.append(TrainedHead(weight=W[k, :, :d].clone().numpy(), bias=b[k].clone().numpy(),
                                 mean=mean, std=std, n_train=ns[k], steps=int(totals[k]), loss=losses[k]))
    return heads
