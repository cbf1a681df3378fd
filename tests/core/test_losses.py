"""Losses against values worked out by hand (formulas: w2s_gguf/core/losses.py)."""

import math

import pytest
import torch

from w2s_gguf.errors import W2SError
from w2s_gguf.core.losses import (LOSSES, MIN_QUANTILE_BATCH, entropy_loss, kl_loss, logconf_loss, make_loss, product_loss, window_loss,
                             xent_loss)

LN3 = math.log(3)


def t(rows):
    return torch.tensor(rows, dtype=torch.float64)


# ---- xent -------------------------------------------------------------------


def test_xent_soft_target():
    # logits [0, ln 3] -> p = [1/4, 3/4]. Target [1/4, 3/4] equals p, so the
    # loss is its entropy: -(1/4 ln 1/4 + 3/4 ln 3/4) = 1/4 ln 4 + 3/4 ln 4/3 = 0.5623.
    loss = xent_loss(t([[0.0, LN3]]), t([[0.25, 0.75]]))
    assert loss.item() == pytest.approx(0.25 * math.log(4) + 0.75 * math.log(4 / 3))
    assert loss.item() == pytest.approx(0.5623, abs=1e-4)


def test_xent_is_batch_mean():
    # Row 1: p = [1/4, 3/4], target [0, 1] -> -ln 3/4 = ln 4/3.
    # Row 2: logits [0, 0] -> p = [1/2, 1/2], target [1, 0] -> ln 2.
    # Mean: (ln 4/3 + ln 2) / 2.
    loss = xent_loss(t([[0.0, LN3], [0.0, 0.0]]), t([[0.0, 1.0], [1.0, 0.0]]))
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(2)) / 2)


def test_xent_stays_finite_for_confident_wrong_logits():
    # log_softmax, not log(softmax): p_1 = e^-200 underflows in float32 but
    # -log p_1 = 200 is exact.
    loss = xent_loss(torch.tensor([[200.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
    assert loss.item() == pytest.approx(200.0)


# ---- product ----------------------------------------------------------------


def test_product_default_alpha_beta():
    # p = [1/4, 3/4], y = [1/4, 3/4]: t ∝ p*y = [1/16, 9/16] -> [0.1, 0.9].
    # loss = -(0.1 ln 1/4 + 0.9 ln 3/4) = 0.1 ln 4 + 0.9 ln 4/3 = 0.3975.
    loss = product_loss(t([[0.0, LN3]]), t([[0.25, 0.75]]))
    assert loss.item() == pytest.approx(0.1 * math.log(4) + 0.9 * math.log(4 / 3))


def test_product_uniform_target_becomes_prediction():
    # y = [1/2, 1/2]: t ∝ p * 1/2 -> t = p = [1/4, 3/4]; loss = entropy of p = 0.5623.
    loss = product_loss(t([[0.0, LN3]]), t([[0.5, 0.5]]))
    assert loss.item() == pytest.approx(0.25 * math.log(4) + 0.75 * math.log(4 / 3))


def test_product_alpha_beta():
    # alpha=2, beta=0: t ∝ y^2 = [1/16, 9/16] -> [0.1, 0.9], whatever p is.
    # With logits [0, 0] (p = [1/2, 1/2]) the loss is -(0.1 + 0.9) ln 1/2 = ln 2.
    loss = product_loss(t([[0.0, 0.0]]), t([[0.25, 0.75]]), alpha=2.0, beta=0.0)
    assert loss.item() == pytest.approx(math.log(2))


def test_product_no_gradient_through_target():
    # With t a constant, d loss / d z = p - t = [1/4 - 0.1, 3/4 - 0.9] = [0.15, -0.15].
    # (If gradient flowed through p inside t, it would differ.)
    z = t([[0.0, LN3]]).requires_grad_()
    product_loss(z, t([[0.25, 0.75]])).backward()
    assert z.grad.tolist()[0] == pytest.approx([0.15, -0.15])


# ---- logconf ----------------------------------------------------------------

# Four docs with p0 = 0.2, 0.4, 0.6, 0.8 (logits [ln(p0/(1-p0)), 0]) and soft
# targets y[:,1] = 0.4, 0.3, 0.2, 0.1, so q = mean y[:,1] = 0.25, three times
# over (a batch of 12: batches under MIN_QUANTILE_BATCH = 10 harden at 0.5).
# The 0.25-quantile of p0 with linear interpolation sits at position
# 0.25 * (12-1) = 2.75 of the sorted p0, between 0.2 and 0.4: threshold = 0.2 + 0.75*0.2 = 0.35.
# Hardened: p0 >= 0.35 -> class 0 for docs 2-4; doc 1 (p0 = 0.2) -> class 1,
# i.e. a fraction 1/4 = q of the batch is class 1. Means over the batch are those of the four docs.
P0 = [0.2, 0.4, 0.6, 0.8] * 3
Y1 = [0.4, 0.3, 0.2, 0.1] * 3
Z = t([[math.log(p / (1 - p)), 0.0] for p in P0])
Y = t([[1 - y, y] for y in Y1])
H = t([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]] * 3)
# xent against y: mean over docs of -(y0 ln p0 + y1 ln p1).
L_Y = sum(-((1 - y) * math.log(p) + y * math.log(1 - p)) for p, y in zip(P0, Y1)) / 12
# xent against h: -ln p1 = -ln 0.8 for doc 1, -ln p0 for the others.
L_H = (-math.log(0.8) - math.log(0.4) - math.log(0.6) - math.log(0.8)) / 4


def expected(c):
    # xent is linear in the target: xent(z, (1-c) y + c h) = (1-c) L_y + c L_h.
    return (1 - c) * L_Y + c * L_H


@pytest.mark.parametrize(
    "progress, c",
    [
        # linear, a = 0.5, warmup 0.2: c = 0.5 * min(1, s / 0.2)
        (0.0, 0.0),
        (0.05, 0.125),
        (0.1, 0.25),  # halfway up the ramp
        (0.2, 0.5),
        (0.7, 0.5),
        (1.0, 0.5),
    ],
)
def test_logconf_linear_schedule(progress, c):
    assert logconf_loss(Z, Y, progress).item() == pytest.approx(expected(c))


@pytest.mark.parametrize(
    "progress, c",
    [
        # openai, a = 0.5, warmup 0.1: c = 0.5 * s while s <= 0.1, then 0.5
        (0.0, 0.0),
        (0.05, 0.025),
        (0.1, 0.05),  # last step of warmup: c is only a * 0.1 ...
        (0.1001, 0.5),  # ... and jumps tenfold right after it
        (0.7, 0.5),
    ],
)
def test_logconf_openai_schedule(progress, c):
    assert logconf_loss(Z, Y, progress, schedule="openai").item() == pytest.approx(expected(c))


def test_logconf_schedules_differ_during_warmup():
    # At s = 0.15: linear ramp c = 0.5 * 0.15/0.2 = 0.375; openai already jumped to 0.5.
    lin = logconf_loss(Z, Y, 0.15).item()
    oai = logconf_loss(Z, Y, 0.15, schedule="openai").item()
    assert lin == pytest.approx(expected(0.375))
    assert oai == pytest.approx(expected(0.5))


def test_logconf_custom_coef_and_warmup():
    # a = 0.8, warmup 0.5, linear: at s = 0.25, c = 0.8 * 0.25/0.5 = 0.4.
    loss = logconf_loss(Z, Y, 0.25, aux_coef=0.8, warmup_frac=0.5)
    assert loss.item() == pytest.approx(expected(0.4))


def test_logconf_gradient_treats_hardened_targets_as_constants():
    # With target m = (1-c) y + c h fixed, d loss / d z = (p - m) / B.
    c = 0.5
    z = Z.clone().requires_grad_()
    logconf_loss(z, Y, 1.0).backward()
    p = torch.softmax(Z, dim=1)
    assert torch.allclose(z.grad, (p - ((1 - c) * Y + c * H)) / 12)


def test_logconf_hardens_about_fraction_q_to_class_1():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(1000, 2, generator=gen, dtype=torch.float64)
    y1 = torch.full((1000,), 0.3, dtype=torch.float64)
    y = torch.stack([1 - y1, y1], dim=1)
    # At c = a = 1 the target is h itself, so the gradient is (p - h)/B and
    # h = p - B * grad recovers the hardened targets.
    z.requires_grad_()
    logconf_loss(z, y, 1.0, aux_coef=1.0).backward()
    h = torch.softmax(z.detach(), dim=1) - 1000 * z.grad
    assert torch.allclose(h, h.round(), atol=1e-9)
    assert h[:, 1].mean().item() == pytest.approx(0.3, abs=0.002)


def test_logconf_never_lets_a_tiny_batch_decide_the_hardened_target():
    # Docs the head calls class 1 (p0 = 0.3) whose weak labels say class 1 too. On one doc (a one-doc
    # last batch) the batch's q-quantile is that doc's own p0, so p0 >= t hardened it to class 0
    # whatever it was; a few identical docs, likewise. Below MIN_QUANTILE_BATCH the head's argmax decides.
    for n in (1, 2, MIN_QUANTILE_BATCH - 1):
        z = t([[math.log(0.3 / 0.7), 0.0]] * n).requires_grad_()
        logconf_loss(z, t([[0.1, 0.9]] * n), 1.0, aux_coef=1.0).backward()
        h = torch.softmax(z.detach(), dim=1) - n * z.grad  # at c = 1 the gradient is (p - h) / n
        assert torch.allclose(h, t([[0.0, 1.0]] * n), atol=1e-9), n


# ---- validation -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_wrong_shapes_raise(name):
    fn = LOSSES[name]
    args = (0.5,) if name in ("logconf", "entropy") else ()
    with pytest.raises(ValueError, match=r"shape \(B, 2\)"):
        fn(t([[0.0, 0.0, 0.0]]), t([[0.2, 0.3, 0.5]]), *args)
    with pytest.raises(ValueError, match="shape of logits"):
        fn(t([[0.0, 0.0]]), t([[0.5, 0.5], [0.5, 0.5]]), *args)
    with pytest.raises(ValueError, match="sum to 1"):
        fn(t([[0.0, 0.0]]), t([[0.5, 0.6]]), *args)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        fn(t([[0.0, 0.0]]), t([[-0.5, 1.5]]), *args)


def test_logconf_bad_options_raise():
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        logconf_loss(Z, Y, 0.5, schedule="cosine")
    with pytest.raises(ValueError, match="progress"):
        logconf_loss(Z, Y, 1.5)
    with pytest.raises(ValueError, match="warmup_frac"):
        logconf_loss(Z, Y, 0.5, warmup_frac=0.0)


# ---- make_loss --------------------------------------------------------------


def test_make_loss_unknown_name_is_a_user_error():
    with pytest.raises(W2SError, match=r"^unknown loss 'foo'; choose from xent, logconf, product, kl, entropy, window$"):
        make_loss("foo")


def test_make_loss_unknown_option_is_a_user_error():
    with pytest.raises(W2SError, match="aux_coef.*valid options: alpha, beta"):
        make_loss("product", aux_coef=0.5)
    with pytest.raises(W2SError, match="schedule 'cosine'"):
        make_loss("logconf", schedule="cosine")
    with pytest.raises(W2SError, match="warmup_frac"):
        make_loss("logconf", warmup_frac=2.0)


def test_make_loss_records_resolved_options():
    assert make_loss("xent").config() == {"name": "xent"}
    assert make_loss("product").config() == {"name": "product", "alpha": 1.0, "beta": 1.0}
    oai = make_loss("logconf", schedule="openai")
    assert oai.config() == {"name": "logconf", "aux_coef": 0.5, "warmup_frac": 0.1, "schedule": "openai"}
    assert make_loss("logconf").options["warmup_frac"] == 0.2


def test_make_loss_calls_match_functions():
    assert make_loss("xent")(Z, Y, 0.3).item() == pytest.approx(L_Y)
    assert make_loss("logconf", schedule="openai")(Z, Y, 0.05).item() == pytest.approx(expected(0.025))
    assert make_loss("product", beta=0.0)(Z, Y).item() == pytest.approx(L_Y)


# ---- kl, entropy, window (EleutherAI/w2s w2s/loss.py) ------------------------


def test_kl_is_xent_minus_target_entropy():
    # p = [1/4, 3/4], y = [1/2, 1/2]: KL = 1/2 ln(1/2 / 1/4) + 1/2 ln(1/2 / 3/4) = 1/2 ln 2 + 1/2 ln 2/3 = 1/2 ln 4/3.
    loss = kl_loss(t([[0.0, LN3]]), t([[0.5, 0.5]]))
    assert loss.item() == pytest.approx(0.5 * math.log(4 / 3))
    # A one-hot target has zero entropy (0 ln 0 = 0): KL equals xent, -ln 3/4.
    assert kl_loss(t([[0.0, LN3]]), t([[0.0, 1.0]])).item() == pytest.approx(math.log(4 / 3))
    # KL(y || y) = 0.
    assert kl_loss(t([[0.0, LN3]]), t([[0.25, 0.75]])).item() == pytest.approx(0.0, abs=1e-12)


def test_kl_gradient_is_xents():
    z1, z2 = t([[0.3, -0.2], [1.0, 0.5]]).requires_grad_(), t([[0.3, -0.2], [1.0, 0.5]]).requires_grad_()
    y = t([[0.3, 0.7], [0.9, 0.1]])
    kl_loss(z1, y).backward()
    xent_loss(z2, y).backward()
    assert torch.allclose(z1.grad, z2.grad)


@pytest.mark.parametrize("progress, c", [(0.0, 0.0), (0.1, 0.25), (0.5, 0.5)])
def test_entropy_mixes_soft_predictions(progress, c):
    # Target (1-c) y + c p with p the model's own soft prediction. xent is linear in the
    # target: (1-c) L_y + c H(p), with H(p) the per-doc entropy of p, averaged.
    h_p = sum(-(p * math.log(p) + (1 - p) * math.log(1 - p)) for p in P0) / 12
    assert entropy_loss(Z, Y, progress).item() == pytest.approx((1 - c) * L_Y + c * h_p)


def test_entropy_no_gradient_through_own_prediction():
    # c = 0.5 at the end of training: d/dz = p - (0.5 y + 0.5 p) = 0.5 (p - y).
    # p = [1/4, 3/4], y = [1, 0]: 0.5 * [-3/4, 3/4] = [-0.375, 0.375].
    z = t([[0.0, LN3]]).requires_grad_()
    entropy_loss(z, t([[1.0, 0.0]]), 1.0).backward()
    assert z.grad.tolist()[0] == pytest.approx([-0.375, 0.375])


@pytest.mark.parametrize("progress", [0.0, 0.05, 0.1, 0.5, 1.0])
def test_entropy_is_xent_scaled_by_one_minus_c(progress):
    # d/dz of xent against (1-c) y + c p, p detached: p - (1-c) y - c p = (1-c)(p - y), xent's gradient
    # times (1 - c). Adam is scale invariant, so only the L2 term changes: entropy is xent with C (1 - c).
    gen = torch.Generator().manual_seed(1)
    z1 = torch.randn(20, 2, generator=gen, dtype=torch.float64)
    z2 = z1.clone().requires_grad_()
    z1.requires_grad_()
    y1 = torch.rand(20, generator=gen, dtype=torch.float64)
    y = torch.stack([1 - y1, y1], dim=1)
    entropy_loss(z1, y, progress).backward()
    xent_loss(z2, y).backward()
    c = 0.5 * min(1.0, progress / 0.2)
    assert torch.allclose(z1.grad, (1 - c) * z2.grad, atol=1e-12)


def test_the_methods_table_says_entropy_is_xent_with_a_stronger_l2():
    from w2s_gguf.core.methods import describe

    rows = {line.split()[0]: line for line in describe()}
    assert "= xent with C x (1 - c)" in rows["entropy"] and "same gradient as xent" in rows["kl"]


def test_window_counts_only_unsure_docs_but_divides_by_batch():
    # Docs with max p = 0.8, 0.6, 0.6, 0.8 (P0 above). Radius 0.15: unsure iff max p < 0.65,
    # docs 2 and 3 only; their xent against Y summed, divided by all 4 docs.
    per_doc = [-((1 - y) * math.log(p) + y * math.log(1 - p)) for p, y in zip(P0, Y1)]
    assert window_loss(Z, Y).item() == pytest.approx((per_doc[1] + per_doc[2]) / 4)
    # Radius 0.5: every doc is unsure (max p < 1): plain xent.
    assert window_loss(Z, Y, radius=0.5).item() == pytest.approx(L_Y)
    # Radius 0: no doc has max p < 0.5: no loss.
    assert window_loss(Z, Y, radius=0.0).item() == 0.0


def test_make_loss_new_losses():
    assert make_loss("kl").config() == {"name": "kl"}
    assert make_loss("window").config() == {"name": "window", "radius": 0.15}
    ent = make_loss("entropy", schedule="openai")
    assert ent.config() == {"name": "entropy", "aux_coef": 0.5, "warmup_frac": 0.1, "schedule": "openai"}
    assert ent(Z, Y, 0.5).item() == pytest.approx(entropy_loss(Z, Y, 0.5, schedule="openai").item())
    with pytest.raises(W2SError, match="window radius"):
        make_loss("window", radius=0.7)
    with pytest.raises(W2SError, match="entropy schedule 'cosine'"):
        make_loss("entropy", schedule="cosine")
