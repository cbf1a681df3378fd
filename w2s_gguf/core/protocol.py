"""The weak-to-strong protocol on arrays (openai/weak-to-strong's sweep): no files, no models, no tasks.

For each seed: split the training docs into halves A and B by group; train a
ground-truth head per model on A (its test accuracy is the model's ceiling,
its predictions on B are its weak labels); for every pair weak -> strong and
every method (w2s_gguf.core.methods), train the strong student on the strong
model's features of B from the weak labels. A method that averages several
weak models (ensemble) gets a row of its own per strong model, its weak side
the mean of its teachers' test predictions. A scikit-learn logistic
regression repeats the xent runs as an independent check.

Heads train in stacks (w2s_gguf.core.stacked): every model and seed's
ground-truth head at once, then every method, pair and seed's student.

    from w2s_gguf.core.protocol import run_protocol
    out = run_protocol({"weak": (xw_train, xw_test), "strong": (xs_train, xs_test)}, y_train, y_test)
    print(out.pairs[0].summary["xent"].pgr, out.pairs[0].summary["xent"].pgr_ci)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import SettingError, W2SError
from .heads import SklearnProbe
from .methods import HEAD_OPTIONS, W2SInput, parse_methods, run_methods
from ..results import GroundTruth, PairResult
from .splits import split_halves
from .stacked import HeadJob, train_heads
from .summaries import Run, ground_truth_entry, pair_result

CEILING_HALVES = ("A", "B")  # OAI's sweep trains the strong ceiling on A; its older script on B
LOGCONF_SCHEDULES = ("linear", "openai")
MAX_BOOTSTRAP = 10_000  # 1000 is the default; percentile intervals settle long before, and memory grows with it


@dataclass
class ProtocolSettings:
    """How heads are trained and PGR is summarised; every field goes into results.json."""

    seeds: int = 5  # seeds 0..seeds-1: the split, head init and data order follow each
    methods: list[str] = field(default_factory=lambda: ["xent", "logconf", "product"])
    ceiling_half: str = "A"
    min_gap: float = 0.01
    logconf_schedule: str = "linear"  # "openai" turns a plain `logconf` into `logconf-openai`
    # Deprecated, unused: the intervals are analytic now (core/intervals.py, stats.pgr_ci), none resamples.
    # Still accepted and recorded, so older configs and results.json files rebuild and reproduce.
    n_bootstrap: int = 1000
    self_pairs: bool = False  # also train strong-on-own-labels (W = S) runs, as OAI's sweep does
    sklearn_baseline: bool = False  # repeat the xent runs with scikit-learn, an independent check
    weak_models: int | None = None  # the first k models are weak, the rest strong; None: every earlier model is weak

    def validate(self, n_models: int | None = None) -> None:
        if not isinstance(self.seeds, int) or self.seeds <= 0:
            raise SettingError("seeds", f"must be a positive number (got {self.seeds})")
        if self.ceiling_half not in CEILING_HALVES:
            raise SettingError("ceiling_half", f"must be A or B (got {self.ceiling_half!r})")
        if self.logconf_schedule not in LOGCONF_SCHEDULES:
            raise SettingError("logconf_schedule", f"must be linear or openai (got {self.logconf_schedule!r})")
        if not 0 <= self.min_gap < 1:
            raise SettingError("min_gap", f"must be in [0, 1) (got {self.min_gap})")
        if not isinstance(self.n_bootstrap, int) or not 100 <= self.n_bootstrap <= MAX_BOOTSTRAP:
            raise SettingError("n_bootstrap", f"must be an integer from 100 to {MAX_BOOTSTRAP} (got {self.n_bootstrap!r})")
        if not self.methods:
            raise SettingError("methods", "is empty; give at least one method (see `w2s-gguf methods list`)")
        self.method_specs(n_models)

    def method_specs(self, n_models: int | None = None) -> list[str]:
        """Canonical method specs in the order asked, `all` expanded (methods.parse_methods)."""
        n_weak = self.weak_models if self.weak_models is not None else (None if n_models is None else n_models - 1)
        try:
            specs = [m.spec for m in parse_methods(self.methods, n_weak)]
        except W2SError as exc:
            raise SettingError("methods", f"has a problem: {exc}") from None
        if self.logconf_schedule == "openai":
            specs = list(dict.fromkeys("logconf-openai" if s == "logconf" else s for s in specs))
        return specs

    def pairs(self, names: list[str]) -> list[tuple[str, str]]:
        if self.weak_models is not None:
            weak, strong = names[: self.weak_models], names[self.weak_models:]
            return [(w, s) for w in weak for s in strong] + ([(s, s) for s in strong] if self.self_pairs else [])
        return [(w, s) for i, w in enumerate(names) for s in names[i + (0 if self.self_pairs else 1):]]


@dataclass
class ProtocolResult:
    ground_truth: list[GroundTruth]
    pairs: list[PairResult]
    head: dict[str, Any]  # the heads' hyperparameters and every method's resolved options
    predictions: dict[str, np.ndarray]  # every head's test probabilities, by "kind|models|method|seed"
    # What later stages build on (prompting baselines): each seed's halves A and B (training-doc indices),
    # and each (model, seed)'s weak labels, its ground-truth head's probabilities on half B.
    halves: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    weak_labels: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


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
    names, y_train, y_test, groups = _checked(features, y_train, y_test, groups)
    settings.validate(len(names))
    methods = parse_methods(settings.method_specs(len(names)))
    x_train = {m: features[m][0] for m in names}
    x_test = {m: features[m][1] for m in names}
    seeds = list(range(settings.seeds))
    suffix = "" if layer == "last" else f"|{layer}"
    pairs = settings.pairs(names)
    halves = {seed: split_halves(groups, seed) for seed in seeds}

    # Ground truth: every model's head on A with true labels, all seeds in one stack.
    jobs = [HeadJob(x_train[m][halves[seed][0]], y_train[halves[seed][0]], seed=seed) for seed in seeds for m in names]
    if settings.ceiling_half == "B":
        jobs += [HeadJob(x_train[m][halves[seed][1]], y_train[halves[seed][1]], seed=seed) for seed in seeds for m in names]
    heads = iter(train_heads(jobs))
    gt_heads = {(m, seed): next(heads) for seed in seeds for m in names}
    gt = {key: Run(head.predict_proba(x_test[key[0]])) for key, head in gt_heads.items()}
    ceiling = gt if settings.ceiling_half == "A" else {
        (m, seed): Run(next(heads).predict_proba(x_test[m])) for seed in seeds for m in names}
    weak_labels = {(m, seed): head.predict_proba(x_train[m][halves[seed][1]]) for (m, seed), head in gt_heads.items()}

    # Students: every method, pair and seed in lockstep (one stack per round of the methods). A method
    # that averages several teachers (ensemble) learns the same thing in every pair with that strong
    # model: it trains once per strong model and is scored against its own teacher, the teachers' mean.
    runs, keys, ensembles, seen = [], [], {}, set()
    for seed in seeds:
        for w, s in pairs:
            teachers = names[: names.index(s)] if settings.weak_models is None else names[: settings.weak_models]
            several = len(teachers) > 1
            data = W2SInput(x_train[s][halves[seed][1]], weak_labels[w, seed], x_test[s], seed,
                            [weak_labels[t, seed] for t in teachers] if several else None, weak_test=gt[w, seed].proba,
                            weak_ensemble_test=[gt[t, seed].proba for t in teachers] if several else None)
            for method in methods:
                if method.min_weak_models > data.n_weak_models:
                    continue
                key = (w, s, method.spec, seed)
                if method.min_weak_models > 1:
                    name = f"ensemble({'+'.join(teachers)})"
                    ensembles[name, s] = teachers
                    key = (name, s, method.spec, seed)
                if key not in seen:
                    seen.add(key)
                    runs.append((method, data))
                    keys.append(key)
    transfer = {key: Run(result.test_proba, result.teacher_test, result.disagreement_with_targets())
                for key, result in zip(keys, run_methods(runs))}
    for (name, _), teachers in ensembles.items():
        for seed in seeds:
            gt[name, seed] = Run(np.mean([gt[t, seed].proba for t in teachers], axis=0))
    predictions = {f"gt|{m}|{seed}{suffix}": gt[m, seed].proba for seed in seeds for m in names}
    if settings.ceiling_half == "B":  # the pairs' strong accuracies come from these heads
        predictions.update({f"ceiling|{m}|{seed}{suffix}": run.proba for (m, seed), run in ceiling.items()})
    for (w, s, spec, seed), run in transfer.items():
        predictions[f"transfer|{w}|{s}|{spec}|{seed}{suffix}"] = run.proba
        if run.teacher is not None:  # misfit's other side, where it is not a gt head (or their mean)
            predictions[f"teacher|{w}|{s}|{spec}|{seed}{suffix}"] = run.teacher

    sk = _sklearn_check(settings, names, pairs, seeds, halves, x_train, x_test, y_train) if settings.sklearn_baseline else None
    if log:
        for seed in seeds:
            log(f"seed {seed}{' layer ' + layer if suffix else ''}: "
                + ", ".join(f"{m} {gt[m, seed].metrics(y_test)['acc']:.3f}" for m in names))
    sk_runs = (lambda kind: {(m, seed): sk[kind, m, seed] for m in names for seed in seeds}) if sk else (lambda kind: None)
    ground_truth = [ground_truth_entry(m, layer, seeds, y_test, gt, sk_runs("gt")) for m in names]
    if settings.ceiling_half == "B":
        ground_truth += [ground_truth_entry(m, layer, seeds, y_test, ceiling, sk_runs("ceiling"), half="B") for m in names]
    specs = [m.spec for m in methods]
    pair_results = []
    for i, (w, s) in enumerate(pairs):
        pair_results.append(pair_result(settings, specs, layer, w, s, seeds, y_test, gt, ceiling, transfer, sk))
        if all(s != later for _, later in pairs[i + 1:]):  # the ensemble row follows its strong model's last pair
            pair_results += [pair_result(settings, specs, layer, name, s, seeds, y_test, gt, ceiling, transfer, None,
                                         teachers) for (name, strong), teachers in ensembles.items() if strong == s]
    head = {**{f.name: f.default for f in fields(HeadJob) if f.name in HEAD_OPTIONS},
            "methods": {m.spec: m.config() for m in methods}}
    return ProtocolResult(ground_truth, pair_results, head, predictions, halves, weak_labels)


def _sklearn_check(settings, names, pairs, seeds, halves, x_train, x_test, y_train) -> dict[tuple, Any]:
    """The xent runs again with scikit-learn's LogisticRegression: an independent check of the torch heads."""
    sk: dict[tuple, Any] = {}
    for seed in seeds:
        half_a, half_b = halves[seed]
        ceiling_half = half_a if settings.ceiling_half == "A" else half_b
        for m in names:
            probe = SklearnProbe(seed).fit(x_train[m][half_a], y_train[half_a])
            sk["gt", m, seed] = Run(probe.predict_proba(x_test[m]))
            sk["weak_labels", m, seed] = probe.predict_proba(x_train[m][half_b])
            sk["ceiling", m, seed] = sk["gt", m, seed] if settings.ceiling_half == "A" else Run(
                SklearnProbe(seed).fit(x_train[m][ceiling_half], y_train[ceiling_half]).predict_proba(x_test[m]))
        for w, s in pairs:
            sk["transfer", w, s, seed] = Run(SklearnProbe(seed).fit(
                x_train[s][half_b], sk["weak_labels", w, seed]).predict_proba(x_test[s]))
    return sk


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
