"""Weak-to-strong methods: ways to train the strong student on weak labels.

A method turns the strong model's features of half B, the weak soft labels
of B and the strong features of the test docs into test probabilities (and
the student's probabilities on B, for misfit). Each method is one small
module in this package: a `Method` subclass decorated with `@register`.
Adding a method = adding one file here; nothing else changes.

Spec strings (`--methods`): a method's name, optionally followed by
`-ARG` (`confident-0.3`, `knn-relabel-20`, `window-midweak`,
`logconf-openai`); `all` is every registered method with its defaults.

Methods train heads through the stacked trainer. `run` is a generator: it
yields the head jobs it needs and receives the trained heads, possibly over
several rounds (bootstrap). `run_methods` drives many (method, data) pairs
in lockstep, so the heads of every method and seed of a round train in one
stack.

Several weak models (`ensemble`): the caller puts the soft labels of B from
every weak model into `W2SInput.weak_ensemble` (a list of (n, 2) arrays, one
per weak model, rows in B's order); `weak` stays the pair's own weak model.

Misfit (Charikar et al. 2024) compares the student with the teacher whose
labels it learnt from. A method whose targets are not the weak labels says
what that teacher predicts on the test docs (`MethodResult.teacher_test`:
the ensemble's mean, the kNN-smoothed weak labels, the previous round's
student); None means the pair's weak model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generator

import numpy as np

from ...errors import W2SError
from ...common.plugins import Registry
from ..stacked import HeadJob, TrainedHead, train_heads


@dataclass
class W2SInput:
    """What a method sees for one seed and one weak -> strong pair."""

    x_train: np.ndarray  # strong features of half B (n, d)
    weak: np.ndarray  # weak soft labels of B (n, 2)
    x_test: np.ndarray  # strong features of the test docs (n_test, d)
    seed: int = 0
    weak_ensemble: list[np.ndarray] | None = None  # soft labels of B from every weak model, for `ensemble`
    weak_test: np.ndarray | None = None  # the weak model's test predictions (n_test, 2), for misfit
    weak_ensemble_test: list[np.ndarray] | None = None  # every weak model's test predictions, for `ensemble`

    @property
    def n_weak_models(self) -> int:
        return len(self.weak_ensemble) if self.weak_ensemble is not None else 1


@dataclass
class MethodResult:
    """A method's student: probabilities on the test docs and on B, and what it did."""

    spec: str
    test_proba: np.ndarray  # (n_test, 2)
    train_proba: np.ndarray  # (n_B, 2): the student on B
    info: dict[str, Any] = field(default_factory=dict)
    train_targets: np.ndarray | None = None  # what the student was fit to, rows `train_rows` of B (None: all)
    train_rows: np.ndarray | None = None
    teacher_test: np.ndarray | None = None  # its teacher on the test docs when that is not the weak model

    def disagreement_with_targets(self) -> float | None:
        """Share of the training docs where the student's class is not its target's class."""
        if self.train_targets is None:
            return None
        student = self.train_proba if self.train_rows is None else self.train_proba[self.train_rows]
        return float(np.mean(np.argmax(student, axis=1) != np.argmax(self.train_targets, axis=1)))


# What the caller may set for every head of every method (HeadJob fields).
HEAD_OPTIONS = {"epochs", "lr", "batch_size", "C", "standardize"}

Run = Generator[list[HeadJob], list[TrainedHead], MethodResult]


class Method:
    """Base class. Subclasses set the class attributes, parse their argument and implement `run`."""

    name: ClassVar[str]
    summary: ClassVar[str]  # what it does, a few words
    forms: ClassVar[str]  # the valid spec forms, e.g. "confident, confident-F (F in (0, 1])"
    source: ClassVar[str]  # paper / repository path it follows
    min_weak_models: ClassVar[int] = 1
    order: ClassVar[int] = 100  # place in `methods list` and `all` (baselines first)

    def __init__(self, arg: str | None = None):
        self.arg = arg

    @property
    def spec(self) -> str:
        """The canonical spec string, defaults filled in (e.g. "confident-0.5")."""
        return self.name

    def config(self) -> dict[str, Any]:
        return {"method": self.spec}

    def run(self, data: W2SInput) -> Run:
        raise NotImplementedError

    def check_input(self, data: W2SInput) -> None:
        if data.n_weak_models < self.min_weak_models:
            raise W2SError(f"method {self.spec!r} needs soft labels from at least {self.min_weak_models} weak models "
                           f"(got {data.n_weak_models}); run it with more weak models or leave it out of --methods")

    def bad_arg(self, why: str) -> W2SError:
        return W2SError(f"bad method {self.name}-{self.arg}: {why}; valid forms: {self.forms}")

    def __repr__(self) -> str:
        return f"<method {self.spec}>"


class OneHeadMethod(Method):
    """A method that trains one head on (a subset of) B with targets it derives from the weak labels."""

    loss: str = "xent"
    loss_options: dict = {}

    def targets(self, data: W2SInput) -> tuple[np.ndarray | None, np.ndarray, dict[str, Any]]:
        """(indices of B kept or None for all, targets (n_kept, 2), info)."""
        raise NotImplementedError

    def head_loss(self, data: W2SInput) -> tuple[str, dict[str, Any]]:
        """The head's loss and its options (a method may derive them from the data)."""
        return self.loss, dict(self.loss_options)

    def teacher_test(self, data: W2SInput) -> np.ndarray | None:
        """What the targets' source predicts on the test docs; None: the weak model itself."""
        return None

    def run(self, data: W2SInput) -> Run:
        self.check_input(data)
        keep, targets, info = self.targets(data)
        x = data.x_train if keep is None else data.x_train[keep]
        loss, options = self.head_loss(data)
        (head,) = yield [HeadJob(x, targets, seed=data.seed, loss=loss, loss_options=options)]
        return finish(self, data, head, info, targets, keep, self.teacher_test(data))


def finish(method: Method, data: W2SInput, head: TrainedHead, info: dict[str, Any], targets=None, rows=None,
           teacher_test=None) -> MethodResult:
    return MethodResult(method.spec, head.predict_proba(data.x_test), head.predict_proba(data.x_train),
                        {**method.config(), **info}, train_targets=None if targets is None else np.asarray(targets),
                        train_rows=rows, teacher_test=teacher_test)


def parse_number(method: Method, kind=float, low=None, high=None, low_open=False, what="the argument"):
    """method.arg as a number in [low, high] ((low, high] with low_open), else a one-line W2SError."""
    try:
        value = kind(method.arg)
    except (TypeError, ValueError):
        raise method.bad_arg(f"{what} must be a{'n integer' if kind is int else ' number'}") from None
    if (low is not None and (value <= low if low_open else value < low)) or (high is not None and value > high) \
            or value != value:
        span = f"in {'(' if low_open else '['}{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        raise method.bad_arg(f"{what} must be {span}")
    return value


# ---------------------------------------------------------------- registry

_REGISTRY = Registry("method", __name__)
register = _REGISTRY.register


def _classes() -> list[type[Method]]:
    _REGISTRY.discover()
    return sorted(_REGISTRY.values(), key=lambda cls: (cls.order, cls.name))


def method_names() -> list[str]:
    return [cls.name for cls in _classes()]


def valid_forms() -> str:
    return "; ".join(cls.forms for cls in _classes()) + "; all"


def parse_method(spec: str) -> Method:
    """One spec string -> a Method. The longest registered name that `spec` equals or starts with + "-" wins."""
    _REGISTRY.discover()
    spec = spec.strip().lower()
    matches = [n for n in _REGISTRY if spec == n or spec.startswith(n + "-")]
    if not matches:
        raise W2SError(f"unknown method {spec!r}; valid forms: {valid_forms()} (see `w2s-gguf methods list`)")
    name = max(matches, key=len)
    arg = spec[len(name) + 1 :] if spec != name else None
    if arg == "":
        raise W2SError(f"bad method {spec!r}: nothing after the '-'; valid forms: {_REGISTRY[name].forms}")
    return _REGISTRY[name](arg)


def parse_methods(specs: str | list[str], n_weak_models: int | None = None) -> list[Method]:
    """Comma-separated specs (or a list) -> Methods, `all` expanded, duplicates dropped.

    With n_weak_models, `all` leaves out methods that need more weak models
    and naming such a method is an error now rather than after the long work.
    """
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    items = [s.strip() for s in items if s.strip()]
    if not items:
        raise W2SError(f"no method given; valid forms: {valid_forms()}")
    methods: list[Method] = []
    for item in items:
        if item.lower() == "all":
            new = [cls() for cls in _classes()
                   if n_weak_models is None or cls.min_weak_models <= n_weak_models]
        else:
            new = [parse_method(item)]
            if n_weak_models is not None and new[0].min_weak_models > n_weak_models:
                raise W2SError(f"method {new[0].spec!r} needs at least {new[0].min_weak_models} weak models "
                               f"(this run has {n_weak_models}); add weak models or leave it out of --methods")
        methods.extend(m for m in new if m.spec not in {x.spec for x in methods})
    return methods


def describe() -> list[str]:
    """One line per method: name, default form, source (for `w2s-gguf methods list`)."""
    rows = [(cls.name, cls().spec, cls.summary, cls.source) for cls in _classes()]
    w0, w1 = (max(len(r[i]) for r in rows) for i in (0, 1))
    return [f"{name:<{w0}}  {default:<{w1}}  {summary}; source: {source}" for name, default, summary, source in rows]


# ---------------------------------------------------------------- running

def run_methods(runs: list[tuple[Method, W2SInput]], head_options: dict[str, Any] | None = None,
                stacked: bool = True) -> list[MethodResult]:
    """Run every (method, data) pair; each round's heads of all pairs train in one stack.

    head_options (epochs, lr, batch_size, C, standardize) apply to every head;
    stacked=False trains the heads one at a time (same results, for timing).
    """
    options = dict(head_options or {})
    unknown = sorted(set(options) - HEAD_OPTIONS)
    if unknown:
        raise W2SError(f"unknown head option(s) {', '.join(unknown)}; valid: {', '.join(sorted(HEAD_OPTIONS))}")
    results: list[MethodResult | None] = [None] * len(runs)
    pending: dict[int, tuple[Run, list[HeadJob]]] = {}
    for i, (method, data) in enumerate(runs):
        gen = method.run(data)
        try:
            pending[i] = (gen, next(gen))
        except StopIteration as stop:
            results[i] = stop.value
    while pending:
        jobs = [dataclasses.replace(job, **options) for _, js in pending.values() for job in js]
        heads = train_heads(jobs) if stacked else [h for job in jobs for h in train_heads([job])]
        start, still = 0, {}
        for i, (gen, js) in pending.items():
            mine, start = heads[start : start + len(js)], start + len(js)
            try:
                still[i] = (gen, gen.send(mine))
            except StopIteration as stop:
                results[i] = stop.value
        pending = still
    return results  # type: ignore[return-value]


def run_method(method: Method | str, data: W2SInput, head_options: dict[str, Any] | None = None) -> MethodResult:
    """One method on one input."""
    method = parse_method(method) if isinstance(method, str) else method
    return run_methods([(method, data)], head_options)[0]
