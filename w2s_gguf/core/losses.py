"""Losses for training a head on (possibly soft) targets: xent, product, logconf,
and EleutherAI/w2s's kl, entropy and window (w2s/loss.py).

Shapes everywhere: logits z (B, 2), targets y (B, 2) with rows summing to 1,
p = softmax(z). Each loss returns the mean over the batch (a 0-d tensor).
Formulas follow openai/weak-to-strong's weak_to_strong/loss.py, Burns et al. 2023 and EleutherAI/w2s.

`make_loss(name, **options)` builds one loss with its options fixed and a
uniform call `loss(logits, targets, progress)`, where progress is the fraction
of training steps done; only logconf and entropy use it.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import W2SError

# Rows of targets must sum to 1 within this; soft labels come from float32
# softmax outputs, which sum to 1 only to ~1e-7.
ROW_SUM_ATOL = 1e-4

# logconf hardens a batch at its q-quantile only when the batch has at least this many docs. The
# rule puts the largest p0 of a batch in class 0 whatever q is, so on one doc it always hardens to
# class 0 (a one-doc last batch), and on a few docs it moves in steps of 1/n. Smaller batches
# harden at 0.5, the head's own argmax (ELA's prior of 0.5; OAI drops the partial last batch).
MIN_QUANTILE_BATCH = 10

# Per schedule, the warmup fraction used when warmup_frac is None.
WARMUP_DEFAULTS = {"linear": 0.2, "openai": 0.1}


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """Programmer errors (ValueError): the training loop, not the user, builds these."""
    if logits.ndim != 2 or logits.shape[1] != 2 or logits.shape[0] == 0:
        raise ValueError(f"logits must have shape (B, 2) with B >= 1, got {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the shape of logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
    if not torch.is_floating_point(logits) or not torch.is_floating_point(targets):
        raise ValueError("logits and targets must be floating point tensors")
    with torch.no_grad():
        if (targets < 0).any() or (targets > 1).any():
            raise ValueError("targets must lie in [0, 1]")
        worst = (targets.sum(dim=1) - 1).abs().max().item()
        if not worst <= ROW_SUM_ATOL:  # also catches NaN
            raise ValueError(f"target rows must sum to 1 (within {ROW_SUM_ATOL}); worst row is off by {worst:.3g}")


def _xent(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # log_softmax rather than log(softmax): stays finite for confident logits.
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def xent_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c y_c log p_c (soft-target cross-entropy)."""
    _check(logits, targets)
    return _xent(logits, targets)


def product_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """xent against t = p^beta * y^alpha, rows renormalised, no gradient through t."""
    _check(logits, targets)
    with torch.no_grad():
        t = F.softmax(logits, dim=1) ** beta * targets**alpha
        # A row sums to 0 only if p underflowed to 0 exactly where y is 1;
        # the clamp makes that row's target 0 (no loss) instead of NaN.
        t = t / t.sum(dim=1, keepdim=True).clamp_min(torch.finfo(t.dtype).tiny)
    return _xent(logits, t)


def _resolve_warmup(schedule: str, warmup_frac: float | None) -> float:
    if schedule not in WARMUP_DEFAULTS:
        raise ValueError(f"unknown logconf schedule {schedule!r}; choose from {', '.join(WARMUP_DEFAULTS)}")
    if warmup_frac is None:
        return WARMUP_DEFAULTS[schedule]
    if not 0 < warmup_frac <= 1:
        raise ValueError(f"warmup_frac must be in (0, 1], got {warmup_frac}")
    return float(warmup_frac)


def _logconf_coef(progress: float, aux_coef: float, warmup_frac: float, schedule: str) -> float:
    """Weight c of the hardened targets after a fraction `progress` of training."""
    if schedule == "linear":  # paper, ELA, OAI's open fix: ramp to a over the warmup
        return aux_coef * min(1.0, progress / warmup_frac)
    # OAI's code: c = a*s during warmup (so at most a*warmup_frac), then jumps to a.
    return aux_coef * (progress if progress <= warmup_frac else 1.0)


def logconf_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    progress: float,
    aux_coef: float = 0.5,
    warmup_frac: float | None = None,
    schedule: str = "linear",
) -> torch.Tensor:
    """Auxiliary-confidence loss: xent against (1-c) y + c h.

    h hardens the head's own predictions so that about a fraction
    q = mean(y[:, 1]) of the batch is class 1: t is the q-quantile (linear
    interpolation) of p[:, 0] over the batch and h_b = [p_b0 >= t, p_b0 < t];
    a batch of fewer than MIN_QUANTILE_BATCH docs uses t = 0.5 instead.
    c follows `schedule` ("linear" or "openai", see _logconf_coef);
    warmup_frac=None takes the schedule's default (0.2 linear, 0.1 openai).
    """
    _check(logits, targets)
    warmup_frac = _resolve_warmup(schedule, warmup_frac)
    if not 0 <= progress <= 1:
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    if not 0 <= aux_coef <= 1:
        raise ValueError(f"aux_coef must be in [0, 1], got {aux_coef}")
    c = _logconf_coef(progress, aux_coef, warmup_frac, schedule)
    with torch.no_grad():  # the threshold and the hardened targets are constants
        p0 = F.softmax(logits, dim=1)[:, 0]
        q = targets[:, 1].mean()
        t = torch.quantile(p0, q) if len(p0) >= MIN_QUANTILE_BATCH else torch.tensor(0.5, dtype=p0.dtype)
        h = torch.stack([(p0 >= t), (p0 < t)], dim=1).to(logits.dtype)
    return _xent(logits, (1 - c) * targets + c * h)


def kl_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of KL(y || p) = sum_c y_c (log y_c - log p_c) (ELA's kl, "batchmean").

    It differs from xent by the targets' entropy, a constant: the gradient,
    and so the trained head, is xent's.
    """
    _check(logits, targets)
    return (torch.xlogy(targets, targets) - targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def entropy_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    progress: float,
    aux_coef: float = 0.5,
    warmup_frac: float | None = None,
    schedule: str = "linear",
) -> torch.Tensor:
    """logconf without hardening (ELA's "entropy"): xent against (1-c) y + c p, no gradient through p.

    c follows logconf's schedules (default linear warm-up over 0.2 of training).
    """
    _check(logits, targets)
    warmup_frac = _resolve_warmup(schedule, warmup_frac)
    if not 0 <= progress <= 1:
        raise ValueError(f"progress must be in [0, 1], got {progress}")
    c = _logconf_coef(progress, aux_coef, warmup_frac, schedule)
    with torch.no_grad():
        p = F.softmax(logits, dim=1)
    return _xent(logits, (1 - c) * targets + c * p)


def window_loss(logits: torch.Tensor, targets: torch.Tensor, radius: float = 0.15) -> torch.Tensor:
    """Confidence window (ELA): xent only on docs the head is unsure of, max_c p_c < 0.5 + radius.

    The sum over those docs is divided by the whole batch size, as ELA does.
    ("midweak", the median |weak - 0.5|, is resolved to a number by the method.)
    """
    _check(logits, targets)
    with torch.no_grad():
        unsure = (F.softmax(logits, dim=1).max(dim=1).values < 0.5 + radius).to(logits.dtype)
    return (-(targets * F.log_softmax(logits, dim=1)).sum(dim=1) * unsure).sum() / logits.shape[0]


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "xent": xent_loss,
    "logconf": logconf_loss,
    "product": product_loss,
    "kl": kl_loss,
    "entropy": entropy_loss,
    "window": window_loss,
}

# Losses whose function takes the fraction of training done.
PROGRESS_LOSSES = ("logconf", "entropy")


class Loss:
    """One loss with its options fixed: `loss(logits, targets, progress)`.

    `options` holds every option with defaults filled in (logconf's
    warmup_frac resolved for its schedule), so `config()` says exactly
    what a run used.
    """

    def __init__(self, name: str, options: dict):
        self.name = name
        self.options = options
        self._fn = LOSSES[name]

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, progress: float = 0.0) -> torch.Tensor:
        if self.name in PROGRESS_LOSSES:
            return self._fn(logits, targets, progress, **self.options)
        return self._fn(logits, targets, **self.options)

    def config(self) -> dict:
        return {"name": self.name, **self.options}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"Loss({self.name!r}{', ' if args else ''}{args})"


def make_loss(name: str, **options) -> Loss:
    """Build a loss by name; options are the keyword arguments of its function.

    Unknown names and options are the user's choice (CLI flags), so they
    raise W2SError naming what is allowed.
    """
    if name not in LOSSES:
        raise W2SError(f"unknown loss {name!r}; choose from {', '.join(LOSSES)}")
    params = inspect.signature(LOSSES[name]).parameters
    allowed = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) or "none"
        raise W2SError(f"unknown option(s) {', '.join(unknown)} for loss {name!r}; valid options: {valid}")
    resolved = {**allowed, **options}
    if name in PROGRESS_LOSSES:
        schedule = resolved["schedule"]
        if schedule not in WARMUP_DEFAULTS:
            raise W2SError(f"unknown {name} schedule {schedule!r}; choose from {', '.join(WARMUP_DEFAULTS)}")
        try:
            resolved["warmup_frac"] = _resolve_warmup(schedule, resolved["warmup_frac"])
        except ValueError as exc:
            raise W2SError(f"{exc}; fix the {name} warmup_frac option") from None
        if not 0 <= resolved["aux_coef"] <= 1:
            raise W2SError(f"{name} aux_coef must be in [0, 1], got {resolved['aux_coef']}")
    if name == "window" and not 0 <= resolved["radius"] <= 0.5:
        raise W2SError(f"window radius must be in [0, 0.5], got {resolved['radius']}")
    return Loss(name, resolved)
