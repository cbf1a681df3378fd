"""Methods that change only the student's loss: xent, logconf, product, kl, entropy, window.

Sources: xent, logconf, product from Burns et al. 2023 and openai/weak-to-strong
`weak_to_strong/loss.py`; kl, entropy and window from
EleutherAI/w2s `w2s/loss.py` (kl_divergence_loss, log_confidence_loss with
harden=False, confidence_window_loss; "midweak" radius from `w2s/sft.py`).
Formulas: core/losses.py.
"""

from __future__ import annotations

import numpy as np

from . import Method, OneHeadMethod, W2SInput, parse_number, register


class _LossMethod(OneHeadMethod):
    forms = ""

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        if arg is not None:
            raise self.bad_arg("this method takes no argument")
        self.loss = self.name

    def targets(self, data: W2SInput):
        return None, data.weak, {}


@register
class Xent(_LossMethod):
    name = "xent"
    order = 0
    summary = "cross-entropy on the soft weak labels (the baseline)"
    forms = "xent"
    source = "Burns et al. 2023; openai/weak-to-strong weak_to_strong/loss.py"


@register
class Logconf(_LossMethod):
    name = "logconf"
    order = 1
    summary = "auxiliary confidence loss (hardened own predictions mixed in)"
    forms = "logconf (linear warm-up, paper), logconf-openai (OAI code's step schedule)"
    source = "Burns et al. 2023 sec. 4.3.2; openai/weak-to-strong weak_to_strong/loss.py"

    def __init__(self, arg: str | None = None):
        Method.__init__(self, arg)
        if arg not in (None, "linear", "openai"):
            raise self.bad_arg("the schedule must be linear or openai")
        self.loss = "logconf"
        self.schedule = arg or "linear"
        self.loss_options = {"schedule": self.schedule}

    @property
    def spec(self) -> str:
        return "logconf" if self.schedule == "linear" else "logconf-openai"


@register
class Product(_LossMethod):
    name = "product"
    order = 2
    summary = "cross-entropy against the normalised product of weak label and prediction"
    forms = "product"
    source = "openai/weak-to-strong weak_to_strong/loss.py (product_loss_fn)"


@register
class KL(_LossMethod):
    name = "kl"
    order = 3
    summary = "KL(weak || student); same gradient as xent"
    forms = "kl"
    source = "EleutherAI/w2s w2s/loss.py (kl_divergence_loss)"


@register
class Entropy(_LossMethod):
    name = "entropy"
    order = 4
    # With its own prediction detached the gradient is (1 - c)(p - y); Adam is scale invariant, so only the
    # coupled L2 changes (tests/core/test_losses.py, test_stacked.py). Faithful to ELA; said in the table.
    summary = "logconf with the soft own predictions: = xent with C x (1 - c), a stronger L2"
    forms = "entropy"
    source = "EleutherAI/w2s w2s/loss.py (log_confidence_loss, harden=False)"


@register
class Window(OneHeadMethod):
    name = "window"
    order = 5
    summary = "cross-entropy only on docs the student is unsure of (max p < 0.5 + radius)"
    forms = "window (radius 0.15), window-R (R in [0, 0.5]), window-midweak (R = median |weak - 0.5|)"
    source = "EleutherAI/w2s w2s/loss.py (confidence_window_loss), w2s/sft.py (midweak)"
    loss = "window"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        self.radius = "midweak" if arg == "midweak" else (
            0.15 if arg is None else parse_number(self, float, 0.0, 0.5, what="the radius R"))

    @property
    def spec(self) -> str:
        return f"window-{self.radius}"

    def _radius(self, data: W2SInput) -> float:
        if self.radius == "midweak":  # ELA: the median confidence of the weak labels on the training docs
            return float(np.median(np.abs(data.weak[:, 1] - 0.5)))
        return float(self.radius)

    def head_loss(self, data: W2SInput):
        return "window", {"radius": self._radius(data)}

    def targets(self, data: W2SInput):
        return None, data.weak, {"radius": self._radius(data)}
