"""Every experiment setting's type and bounds, one row per field, checked before anything is built from it.

A results.json may come from someone else: `reproduce` rebuilds the run from
its `settings` block, so each field there is untrusted input, checked here
the way the CLI checks its flags (one line naming the field, exit 2) and
before any model is loaded. The same table checks an `ExperimentConfig`
made in code. Size settings have upper bounds: an absurd `n_bootstrap` or
`seeds` would otherwise pass and then exhaust memory, or run for hours, after
the features were extracted. The protocol's own checks (method names,
ceiling half, min_gap's range) run afterwards, in `ExperimentConfig.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.protocol import MAX_BOOTSTRAP
from ..errors import SettingError

MAX_TRAIN_DOCS = 1_000_000
MAX_TEST_DOCS = 100_000
MAX_SEEDS = 100
MAX_CONTEXT = 131_072  # tokens: the longest llama.cpp context of current models
MAX_THREADS = 4096
MAX_GPU_LAYERS = 100_000  # llama.cpp clamps any count to the model's layers
MAX_ITEMS = 10_000_000  # rows kept per hub split / chess puzzles (task_options.extra)
MAX_MODELS = 100
MAX_SHOTS = 1000  # demonstrations per prompt; the context check refuses far fewer on real models


@dataclass(frozen=True)
class Rule:
    """A field's JSON type, inclusive bounds for numbers, whether null is allowed, and the type of list items."""

    kind: type
    low: float | None = None
    high: float | None = None
    optional: bool = False
    items: type | None = None


SETTINGS = {
    "models": Rule(list, items=str),
    "task": Rule(str),
    "n_train": Rule(int, 4, MAX_TRAIN_DOCS),  # at least 4: both halves must hold both labels
    "n_test": Rule(int, 1, MAX_TEST_DOCS),
    "seeds": Rule(int, 1, MAX_SEEDS),
    "methods": Rule(list, items=str),
    "pooling": Rule(str),
    "max_tokens": Rule(int, 8, MAX_CONTEXT),
    "n_gpu_layers": Rule(int, -1, MAX_GPU_LAYERS),
    "n_threads": Rule(int, 1, MAX_THREADS, optional=True),
    "ceiling_half": Rule(str),
    "min_gap": Rule(float, 0, 1),
    "balance": Rule(bool),
    "task_options": Rule(dict),
    "logconf_schedule": Rule(str),
    "data_seed": Rule(int, 0, 2**32 - 1),
    "n_bootstrap": Rule(int, 100, MAX_BOOTSTRAP),
    "self_pairs": Rule(bool),
    "sklearn_baseline": Rule(bool),
    "registry": Rule(str, optional=True),
    "weak_models": Rule(int, 1, MAX_MODELS, optional=True),
    "layers": Rule(list, items=str),
    "store_dtype": Rule(str),
    "ray": Rule(str, optional=True),
    "prompting": Rule(bool),
    "shots": Rule(int, 0, MAX_SHOTS),
    "decode": Rule(str),
}
TASK_OPTIONS = {
    "data": Rule(str, optional=True),
    "min_rating": Rule(int, 0, 10_000, optional=True),
    "max_rating": Rule(int, 0, 10_000, optional=True),
    "themes": Rule(list, items=str),
    "extra": Rule(dict),
}
TASK_EXTRA = {"max_items": Rule(int, 1, MAX_ITEMS), "max_puzzles": Rule(int, 1, MAX_ITEMS)}
# Keys a results file's settings block holds besides the config fields (schema 1 and 2).
RECORDED = {"model_specs": Rule(list, items=str), "losses": Rule(list, items=str), "head": Rule(dict)}

_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string", list: "a list", dict: "an object"}


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if kind is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, kind)


def _num(bound: float) -> str:
    return str(int(bound)) if float(bound).is_integer() else str(bound)


def problem(value: Any, rule: Rule) -> str | None:
    """What is wrong with `value` under `rule` (a phrase after the field's name), or None."""
    if value is None:
        return None if rule.optional else f"must be {_NAMES[rule.kind]} (got null)"
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    if not _is(value, rule.kind):
        return f"must be {_NAMES[rule.kind]} (got {type(value).__name__} {shown})"
    if rule.items is not None:
        bad = [v for v in value if not _is(v, rule.items)]
        if bad:
            return f"must be a list of {_NAMES[rule.items].split(' ', 1)[1]}s (got {type(bad[0]).__name__} {bad[0]!r} in it)"
    if rule.low is not None and not rule.low <= value <= rule.high:
        what = "an integer" if rule.kind is int else "a number"
        return f"must be {what} from {_num(rule.low)} to {_num(rule.high)} (got {value})"
    return None


def _say(where: str, text: str) -> str:
    return f"{where} {text}" if where else text


def check(name: str, value: Any, rule: Rule, field: str | None = None, where: str = "") -> None:
    """Raise SettingError(field or name, ...) when `value` breaks `rule`; `where` ("in FILE") follows the name."""
    found = problem(value, rule)
    if found:
        raise SettingError(field or name, _say(where, found))


def check_task_options(options: dict[str, Any], prefix: str = "task_options", where: str = "") -> None:
    unknown = sorted(set(options) - set(TASK_OPTIONS))
    if unknown:
        raise SettingError(prefix, _say(where, f"has an unknown option {unknown[0]!r}; known: {', '.join(TASK_OPTIONS)}"))
    for key, value in options.items():
        check(key, value, TASK_OPTIONS[key], f"{prefix}.{key}", where)
    for key, value in (options.get("extra") or {}).items():
        if key not in TASK_EXTRA:
            raise SettingError(f"{prefix}.extra", _say(where, f"has an unknown option {key!r}; known: {', '.join(TASK_EXTRA)}"))
        check(key, value, TASK_EXTRA[key], f"{prefix}.extra.{key}", where)


def check_recipe(settings: Any, where: str) -> None:
    """A results file's settings block, field by field (names as in the file: settings.n_train)."""
    if not isinstance(settings, dict):
        raise SettingError("settings", _say(where, f"must be an object (got {type(settings).__name__})"))
    if "models" not in settings and "model_specs" not in settings:
        raise SettingError("settings.models", _say(where, "is missing: the file does not say which models ran"))
    for key, value in settings.items():
        field = f"settings.{key}"
        if key == "seeds" and isinstance(value, list):  # the file lists the seeds: 0..k-1
            if value != list(range(len(value))):
                raise SettingError(field, _say(where, f"must list the seeds 0, 1, ..., k-1 (got {str(value)[:60]})"))
            check(key, len(value), SETTINGS["seeds"], field, where)
        elif key == "task_options":
            check(key, value, SETTINGS[key], field, where)
            check_task_options(value, field, where)
        elif key in SETTINGS or key in RECORDED:
            check(key, value, SETTINGS.get(key) or RECORDED[key], field, where)
