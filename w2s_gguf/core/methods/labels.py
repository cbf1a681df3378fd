"""Methods that change the weak labels before a plain xent head: hard, confident-F, ensemble.

Sources (methods in the weak-to-strong literature): hard labels are
the usual pseudo-labelling baseline; confident-only training keeps the most
confident weak labels; several weak supervisors averaged follows the
weak-ensemble line of work (e.g. Sang et al. 2024, arXiv:2402.00667,
"Improving Weak-to-Strong Generalization with Scalable Oversight and
Ensemble Learning").
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import W2SError
from . import OneHeadMethod, W2SInput, parse_number, register


@register
class Hard(OneHeadMethod):
    name = "hard"
    order = 10
    summary = "xent on the weak labels' argmax (0/1)"
    forms = "hard"
    source = "pseudo-labelling baseline"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        if arg is not None:
            raise self.bad_arg("this method takes no argument")

    def targets(self, data: W2SInput):
        # One-hot rows rather than 0/1 labels: a weak model that labels every doc alike is allowed here.
        return None, np.eye(2, dtype=np.float32)[np.argmax(data.weak, axis=1)], {}

    def teacher_test(self, data: W2SInput):
        return None if data.weak_test is None else np.eye(2, dtype=np.float32)[np.argmax(data.weak_test, axis=1)]


@register
class Confident(OneHeadMethod):
    name = "confident"
    order = 11
    summary = "xent on the most confident fraction F of the weak labels"
    forms = "confident (F = 0.5), confident-F (F in (0, 1])"
    source = "confident-only training (weak-to-strong literature)"

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        self.fraction = 0.5 if arg is None else parse_number(self, float, 0.0, 1.0, low_open=True, what="F")

    @property
    def spec(self) -> str:
        return f"confident-{self.fraction}"

    def targets(self, data: W2SInput):
        n = len(data.weak)
        n_keep = max(1, math.ceil(self.fraction * n - 1e-9))
        confidence = np.abs(data.weak[:, 1] - 0.5)
        # Stable sort: ties keep B's order; the kept docs stay in B's order, so F = 1 is xent exactly.
        keep = np.sort(np.argsort(-confidence, kind="stable")[:n_keep])
        return keep, data.weak[keep], {"n_kept": int(n_keep)}


@register
class Ensemble(OneHeadMethod):
    name = "ensemble"
    order = 30
    summary = "xent on the mean soft label of several weak models"
    forms = "ensemble (needs W2SInput.weak_ensemble from >= 2 weak models)"
    source = "Sang et al. 2024 arXiv:2402.00667"
    min_weak_models = 2

    def __init__(self, arg: str | None = None):
        super().__init__(arg)
        if arg is not None:
            raise self.bad_arg("this method takes no argument")

    def targets(self, data: W2SInput):
        labels = [np.asarray(w, dtype=np.float32) for w in data.weak_ensemble]
        shapes = {w.shape for w in labels}
        if shapes != {data.weak.shape}:
            raise W2SError(f"ensemble: every weak model's labels of B must have shape {data.weak.shape}, "
                           f"got {sorted(shapes)}; pass one (n, 2) array per weak model in weak_ensemble")
        return None, np.mean(labels, axis=0), {"n_weak_models": len(labels)}

    def teacher_test(self, data: W2SInput):
        """The ensemble teacher on the test docs: the mean of every weak model's test predictions."""
        if data.weak_ensemble_test is None:
            return None
        return np.mean([np.asarray(w, dtype=np.float32) for w in data.weak_ensemble_test], axis=0)
