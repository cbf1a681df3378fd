"""A linear probe on frozen features, trained like openai/weak-to-strong's heads.

`LinearProbe` is scikit-learn-like: fit(X, y), predict_proba(X), predict(X).

- Head: Linear(d, 2) initialised to zero (OAI), so before training every doc
  gets probabilities 0.5/0.5 and the only randomness is the data order.
- Training: Adam, learning rate cosine-annealed to 0 over all steps, data
  reshuffled every epoch by a torch.Generator seeded with `seed`, no dropout.
  The loop lives in stacked.py (`train_heads`), which trains many heads at
  once; LinearProbe is one head of it.
- Features are standardised with the mean/std of the training features.
- Regularisation: the objective is

      mean loss over the batch + ||W||^2 / (C * n)

  with n the number of training docs and the bias unpenalised. A zero-init
  softmax head keeps W[1] = -W[0] throughout training (their gradients are
  opposite and Adam's update is odd in the gradient), so with v = W[1] - W[0]
  the penalty is ||v||^2 / (2 C n): exactly scikit-learn's binary
  LogisticRegression objective (C * sum loss + ||v||^2 / 2) divided by C n.
  C therefore means what it means in scikit-learn. C = 0.01 was measured best
  on these features (docs/design.md); C=None trains without a penalty.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import W2SError
from .inputs import as_features, as_targets, check_settings
from .losses import make_loss
from .stacked import HeadJob, train_heads

SKLEARN_C = 0.01  # the best L2 strength (the strongest tried) in 10 of 12 model/dataset cells measured here


def _zero_head(d: int) -> torch.nn.Linear:
    """Linear(d, 2) with zero weights and bias (OAI): every doc starts at 0.5/0.5."""
    linear = torch.nn.Linear(d, 2)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    return linear


class LinearProbe:
    """Zero-initialised Linear(d, 2) head on standardised frozen features.

    loss: "xent" (ground truth and the weak-label baseline), "logconf" or
    "product"; loss_options go to losses.make_loss. C: inverse L2 strength,
    as in scikit-learn's LogisticRegression (None: no penalty).

    Defaults: OAI's vision probe is Adam lr 1e-3, batch 100, 10 epochs. At
    450-900 docs that is only 45-90 steps: the head stops early, before the
    penalty matters, so its regularisation depends on n. Batch 100 with
    lr 1e-2 for 20 epochs instead reaches the C = 0.01 optimum, i.e. the head
    *is* the well-regularised probe measured best here. Rotten Tomatoes features,
    600 test docs, mean of 3 subsamples, test accuracy torch vs sklearn C=0.01
    (agreement of test predictions):
      SmolLM2-135M  450 docs 0.784 vs 0.781 (0.987), 900 docs 0.782 vs 0.780 (0.989)
      gemma-3-270m  450 docs 0.804 vs 0.802 (0.992), 900 docs 0.808 vs 0.807 (0.991)
    Train accuracy matches too (e.g. 0.925 vs 0.926), where an unpenalised
    head reaches 0.99-1.00 and loses 2-4 test points.
    """

    def __init__(
        self,
        loss: str = "xent",
        epochs: int = 20,
        lr: float = 1e-2,
        batch_size: int = 100,
        C: float | None = 0.01,
        standardize: bool = True,
        seed: int = 0,
        loss_options: dict | None = None,
    ):
        check_settings(epochs, lr, batch_size, C)
        self.loss = loss
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.C = C
        self.standardize = standardize
        self.seed = seed
        self.loss_options = dict(loss_options or {})
        self._loss = make_loss(loss, **self.loss_options)  # fail early on a bad name
        self.linear_: torch.nn.Linear | None = None

    def get_params(self) -> dict:
        """The constructor arguments (scikit-learn convention)."""
        return {
            "loss": self.loss,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "C": self.C,
            "standardize": self.standardize,
            "seed": self.seed,
            "loss_options": dict(self.loss_options),
        }

    def config(self) -> dict:
        """What was trained, for results.json: parameters, resolved loss options, sizes."""
        cfg = {"head": "linear", **self.get_params(), "loss_options": dict(self._loss.options)}
        if self.linear_ is not None:
            cfg.update(n_train=self.n_train_, n_features=self.n_features_, steps=self.steps_)
        return cfg

    def _standardized(self, X: np.ndarray) -> torch.Tensor:
        # Always a new array: X may be a read-only memmap, which torch would
        # share (and warn about) rather than copy.
        if self.standardize:
            X = (X - self.mean_) / self.std_
        else:
            X = X.copy()
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def fit(self, X, y) -> "LinearProbe":
        # Trained by the stacked trainer with one head (same data order,
        # Adam and schedule as before; no torch.optim, so no torch._dynamo import).
        X = as_features(X)
        job = HeadJob(X, y, seed=self.seed, loss=self.loss, loss_options=self.loss_options, epochs=self.epochs,
                      lr=self.lr, batch_size=self.batch_size, C=self.C, standardize=self.standardize)
        head = train_heads([job])[0]
        self.n_train_, self.n_features_, self.steps_ = head.n_train, head.n_features, head.steps
        if self.standardize:
            self.mean_, self.std_ = head.mean, head.std
        self.linear_ = _zero_head(head.n_features)
        with torch.no_grad():
            self.linear_.weight.copy_(torch.from_numpy(head.weight))
            self.linear_.bias.copy_(torch.from_numpy(head.bias))
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, 2) float32 probabilities; column 1 is P(label 1)."""
        if self.linear_ is None:
            raise RuntimeError("LinearProbe.predict_proba called before fit")
        X = as_features(X)
        if X.shape[1] != self.n_features_:
            raise W2SError(
                f"features have {X.shape[1]} dims but the probe was trained on {self.n_features_}; "
                "use features from the same model for training and prediction"
            )
        with torch.no_grad():
            return torch.softmax(self.linear_(self._standardized(X)), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Hard labels (n,) in {0, 1}: the more probable class (ties go to 0)."""
        return self.predict_proba(X).argmax(axis=1)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"LinearProbe({args})"


class SklearnProbe:
    """scikit-learn's LogisticRegression (C = 0.01) on standardised features: the independent check.

    Soft targets enter as each doc twice, once per class, weighted by its
    target probability, which is exactly soft cross-entropy.
    """

    def __init__(self, seed: int = 0, C: float = SKLEARN_C):
        self.seed, self.C = seed, C

    def fit(self, X, y) -> "SklearnProbe":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        X = as_features(X)
        as_targets(y, len(X))  # validation only: the soft weights keep their own precision
        y = np.asarray(y)
        self.scaler_ = StandardScaler().fit(X)
        xs = self.scaler_.transform(X)
        self.clf_ = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)
        n = len(xs)
        if y.ndim == 1:  # hard labels
            self.clf_.fit(xs, y.astype(int))
        else:
            targets = y
            self.clf_.fit(np.concatenate([xs, xs]), np.r_[np.zeros(n, int), np.ones(n, int)],
                          sample_weight=np.r_[targets[:, 0], targets[:, 1]])
        return self

    def predict_proba(self, X) -> np.ndarray:
        return self.clf_.predict_proba(self.scaler_.transform(as_features(X)))
