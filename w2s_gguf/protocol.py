"""The weak-to-strong protocol on arrays (SPEC.md section 1): no files, no models, no tasks.

For each seed: split the training docs into halves A and B by group; train a
ground-truth head per model on A (its test accuracy is the model's ceiling,
its predictions on B are its weak labels); for every pair weak -> strong and
every method, train a head on the strong model's features of B against the
weak model's soft labels. A scikit-learn logistic regression repeats the
xent runs on the same features and splits as an independent check.

    from w2s_gguf.protocol import run_protocol
    out = run_protocol({"weak": (xw_train, xw_test), "strong": (xs_train, xs_test)}, y_train, y_test)
    print(out.pairs[0].summary["xent"].pgr_median, out.pairs[0].summary["xent"].pgr_ci)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from .errors import SettingError, W2SError
from .heads import LinearProbe, SklearnProbe
from .losses import LOSSES, make_loss
from .results import GroundTruth, PairResult
from .splits import split_halves
from .summaries import Run, ground_truth_entry, pair_result

CEILING_HALVES = ("A", "B")  # OAI's sweep trains the strong ceiling on A; its older script on B
LOGCONF_SCHEDULES = ("linear", "openai")


@dataclass
class ProtocolSettings:
    """How heads are trained and PGR is summarised; every field goes into results.json."""

    seeds: int = 5  # seeds 0..seeds-1: the split, head init and data order follow each
    methods: list[str] = field(default_factory=lambda: ["xent", "logconf", "product"])
    ceiling_half: str = "A"
    min_gap: float = 0.01
    logconf_schedule: str = "linear"
    n_bootstrap: int = 1000
    self_pairs: bool = False  # also train strong-on-own-labels (W = S) runs, as OAI's sweep does
    sklearn_baseline: bool = True

    def validate(self) -> None:
        if not isinstance(self.seeds, int) or self.seeds <= 0:
            raise SettingError("seeds", f"must be a positive number (got {self.seeds})")
        unknown = [m for m in self.methods if m not in LOSSES]
        if unknown or not self.methods:
            raise SettingError("methods", f"has an unknown method {', '.join(unknown) or '(none given)'}; choose from {', '.join(LOSSES)}")
        if self.ceiling_half not in CEILING_HALVES:
            raise SettingError("ceiling_half", f"must be A or B (got {self.ceiling_half!r})")
        if self.logconf_schedule not in LOGCONF_SCHEDULES:
            raise SettingError("logconf_schedule", f"must be linear or openai (got {self.logconf_schedule!r})")
        if not 0 <= self.min_gap < 1:
            raise SettingError("min_gap", f"must be in [0, 1) (got {self.min_gap})")
        if self.n_bootstrap < 100:
            raise SettingError("n_bootstrap", f"must be at least 100 (got {self.n_bootstrap})")

    def method_options(self) -> dict[str, dict]:
        return {"logconf": {"schedule": self.logconf_schedule}}


@dataclass
class ProtocolResult:
    ground_truth: list[GroundTruth]
    pairs: list[PairResult]
    head: dict[str, Any]  # the head's hyperparameters and every method's resolved options
    predictions: dict[str, np.ndarray]  # every head's test probabilities, by "kind|models|method|seed"


def run_protocol(
    features: Mapping[str, tuple[np.ndarray, np.ndarray]],
    y_train,
    y_test,
    groups: list[str] | None = None,
    settings: ProtocolSettings | None = None,
    layer: str = "last",
    log: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Run the protocol on each model's (train, test) features, models ordered weak to strong."""
    settings = settings or ProtocolSettings()
    settings.validate()
    names, y_train, y_test, groups = _checked(features, y_train, y_test, groups)
    x_train = {m: features[m][0] for m in names}
    x_test = {m: features[m][1] for m in names}
    seeds = list(range(settings.seeds))
    options = settings.method_options()
    suffix = "" if layer == "last" else f"|{layer}"

    pairs = [(w, s) for i, w in enumerate(names) for s in names[i + (0 if settings.self_pairs else 1):]]
    gt: dict[tuple[str, int], Run] = {}
    ceiling: dict[tuple[str, int], Run] = {}
    transfer: dict[tuple[str, str, str, int], Run] = {}
    sk: dict[tuple, Any] = {}
    predictions: dict[str, np.ndarray] = {}
    head_params: dict[str, Any] = {}

    for seed in seeds:
        half_a, half_b = split_halves(groups, seed)
        ceiling_half = half_a if settings.ceiling_half == "A" else half_b
        weak_labels: dict[str, np.ndarray] = {}
        for m in names:
            head = LinearProbe(loss="xent", seed=seed).fit(x_train[m][half_a], y_train[half_a])
            head_params = {k: v for k, v in head.get_params().items() if k not in ("loss", "seed", "loss_options")}
            gt[m, seed] = Run(head.predict_proba(x_test[m]))
            weak_labels[m] = head.predict_proba(x_train[m][half_b]).astype(np.float32)
            ceiling[m, seed] = gt[m, seed] if settings.ceiling_half == "A" else Run(LinearProbe(loss="xent", seed=seed).fit(
                x_train[m][ceiling_half], y_train[ceiling_half]).predict_proba(x_test[m]))
            if settings.sklearn_baseline:
                probe = SklearnProbe(seed).fit(x_train[m][half_a], y_train[half_a])
                sk["gt", m, seed] = Run(probe.predict_proba(x_test[m]))
                sk["weak_labels", m, seed] = probe.predict_proba(x_train[m][half_b])
                sk["ceiling", m, seed] = sk["gt", m, seed] if settings.ceiling_half == "A" else Run(
                    SklearnProbe(seed).fit(x_train[m][ceiling_half], y_train[ceiling_half]).predict_proba(x_test[m]))
            predictions[f"gt|{m}|{seed}{suffix}"] = gt[m, seed].proba
        for w, s in pairs:
            for method in settings.methods:
                head = LinearProbe(loss=method, seed=seed, loss_options=options.get(method))
                head.fit(x_train[s][half_b], weak_labels[w])
                transfer[w, s, method, seed] = Run(head.predict_proba(x_test[s]))
                predictions[f"transfer|{w}|{s}|{method}|{seed}{suffix}"] = transfer[w, s, method, seed].proba
            if settings.sklearn_baseline:
                sk["transfer", w, s, seed] = Run(SklearnProbe(seed).fit(
                    x_train[s][half_b], sk["weak_labels", w, seed]).predict_proba(x_test[s]))
        if log:
            log(f"seed {seed}{' layer ' + layer if suffix else ''}: "
                + ", ".join(f"{m} {gt[m, seed].metrics(y_test)['acc']:.3f}" for m in names))

    ground_truth = [ground_truth_entry(m, layer, seeds, y_test, gt, sk if settings.sklearn_baseline else None)
                    for m in names]
    pair_results = [pair_result(settings, layer, w, s, seeds, y_test, gt, ceiling, transfer,
                                sk if settings.sklearn_baseline else None) for w, s in pairs]
    # Every option each method ran with, defaults filled in (e.g. logconf's warm-up for its schedule).
    head = {**head_params, "losses": {m: make_loss(m, **options.get(m, {})).config() for m in settings.methods}}
    return ProtocolResult(ground_truth, pair_results, head, predictions)


def _checked(features, y_train, y_test, groups):
    """Validate the arrays once, here at the boundary: names, shapes, labels, groups."""
    names = list(features)
    if len(names) < 2:
        raise W2SError("give features of at least two models (a weak and a strong one)")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    for split, y in (("y_train", y_train), ("y_test", y_test)):
        if y.ndim != 1 or not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
            raise W2SError(f"{split} must be 0/1 labels of shape (n,) holding both classes")
    for m in names:
        pair = features[m]
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise W2SError(f"features[{m!r}] must be a (train, test) pair of arrays")
        train, test = (np.asarray(a) for a in pair)
        if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
            raise W2SError(f"features[{m!r}] must be 2-D arrays with the same width (got {train.shape} and {test.shape})")
        if len(train) != len(y_train) or len(test) != len(y_test):
            raise W2SError(f"features[{m!r}] have {len(train)}/{len(test)} rows but there are "
                           f"{len(y_train)}/{len(y_test)} labels; pass one row per doc")
    groups = [str(i) for i in range(len(y_train))] if groups is None else [str(g) for g in groups]
    if len(groups) != len(y_train):
        raise W2SError(f"groups has {len(groups)} entries for {len(y_train)} training docs; pass one per doc")
    if len(set(groups)) < 4:
        raise W2SError(f"the training docs form {len(set(groups))} groups; halves A and B need at least 4")
    return names, y_train.astype(np.int64), y_test.astype(np.int64), groups
