"""The results schema: one set of dataclasses that the writer and every reader use.

`results.json` is `Results` as JSON. `to_json` and `from_json` convert
between the two generically (dataclass fields, lists, dicts, optionals), so
a field added here is written and read with no other change. Files of
older schema versions are upgraded on load (`_upgrade`).

Schema history:
  1  ground_truth keyed by model name; settings.losses; no layers
  2  ground_truth and pairs are lists, each with its feature layer; settings.methods
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from .errors import W2SError
from .storage import atomic_write_json

SCHEMA_VERSION = 2
KIND = "w2s-gguf results"
RESULTS_NAME = "results.json"


@dataclass
class SeedScore:
    seed: int
    acc: float
    auroc: float | None = None


@dataclass
class SklearnScores:
    per_seed: list[SeedScore]
    acc_mean: float


@dataclass
class GroundTruth:
    """One model's head trained on true labels of half A: its ceiling, and as a teacher its weak accuracy."""

    model: str
    per_seed: list[SeedScore]
    acc_mean: float
    acc_median: float
    auroc_mean: float | None
    layer: str = "last"
    sklearn: SklearnScores | None = None


@dataclass
class TransferScore:
    """One method's student on one seed, scored on the test docs."""

    acc: float
    auroc: float | None
    agreement: float | None  # with the weak teacher's test predictions
    pgr: float | None
    pgr_reason: str | None = None
    misfit_train: float | None = None  # student's disagreement with its weak labels on B (Charikar et al. 2024)
    misfit_test: float | None = None  # ... with the weak teacher on the test docs (1 - agreement)


@dataclass
class Difference:
    """A paired difference of mean accuracies (a - b over the same seeds and test docs) with its bootstrap interval."""

    diff: float
    ci: list[float]
    level: float = 0.95
    threshold: float = 0.0
    distinguishable: bool = False  # the interval's lower end lies above the threshold


@dataclass
class SklearnPairSeed:
    weak_acc: float
    strong_acc: float
    transfer_acc: float
    pgr: float | None


@dataclass
class PairSeed:
    seed: int
    weak_acc: float
    weak_auroc: float | None
    strong_acc: float
    strong_auroc: float | None
    transfer: dict[str, TransferScore]  # method -> score
    sklearn: SklearnPairSeed | None = None


@dataclass
class Summary:
    """A method over all seeds: means, and PGR's median with its bootstrap interval or the reason it is null."""

    transfer_acc_mean: float
    transfer_acc_median: float
    auroc_mean: float | None
    agreement_mean: float | None
    pgr_median: float | None
    pgr_mean: float | None
    pgr_ci: list[float] | None
    pgr_reason: str | None
    n_valid_seeds: int
    misfit_train_mean: float | None = None
    misfit_test_mean: float | None = None
    vs_xent: Difference | None = None  # this method's accuracy minus xent's, paired


@dataclass
class PairResult:
    weak: str
    strong: str
    weak_acc: float | None  # means over seeds
    strong_acc: float | None
    per_seed: list[PairSeed]
    summary: dict[str, Summary]  # method -> summary, in the order the methods were asked for
    layer: str = "last"
    sklearn_summary: dict[str, Summary] | None = None
    gap: Difference | None = None  # strong minus weak accuracy, paired; absent in schema-1 files

    @property
    def mean_gap(self) -> float | None:
        return None if self.weak_acc is None or self.strong_acc is None else self.strong_acc - self.weak_acc


@dataclass
class TaskInfo:
    name: str
    source: str
    n_train: int
    n_test: int
    positive_rate_train: float
    positive_rate_test: float
    prompt_version: str = "1"
    balanced: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    docs_sha256: str | None = None  # every chosen doc in order (tasks.docs_fingerprint); absent in older files


@dataclass
class ModelInfo:
    """A model file and what extracting its features cost in this run."""

    name: str
    path: str
    sha256: str
    size: int
    architecture: str
    source: str
    dim: int
    pooling: str
    max_tokens: int
    gpu_offload: bool
    cache_dir: str
    n_computed: int
    n_tokens: int
    n_truncated: int
    seconds: float | None = None
    tokens_per_second: float | None = None
    model_loaded: bool | None = None
    n_layer: int | None = None  # transformer blocks
    layers: dict[str, str] = field(default_factory=dict)  # layer spec of the run -> "last" or the block index used


@dataclass
class Results:
    """Everything a run produced; `settings` is `ExperimentConfig.to_json()` (plus model specs and the head)."""

    settings: dict[str, Any]
    task: TaskInfo
    models: dict[str, ModelInfo]
    ground_truth: list[GroundTruth]
    pairs: list[PairResult]
    versions: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    created: str = ""
    command: str = ""
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND

    @property
    def methods(self) -> list[str]:
        return list(self.settings.get("methods") or [])

    @property
    def seeds(self) -> list[int]:
        return list(self.settings.get("seeds") or [])

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([g.layer for g in self.ground_truth] + [p.layer for p in self.pairs]))

    def ground_truth_of(self, model: str, layer: str = "last") -> GroundTruth | None:
        return next((g for g in self.ground_truth if g.model == model and g.layer == layer), None)


# ---------------------------------------------------------------- JSON conversion

_FIRST = ("schema_version", "kind", "created", "command", "settings", "task", "models", "versions",
          "ground_truth", "pairs", "timings")


def to_json(obj: Any) -> Any:
    if is_dataclass(obj):
        data = {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}
        if isinstance(obj, Results):  # the file reads top-down: identity, settings, then numbers
            data = {k: data[k] for k in _FIRST}
        return data
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


class _SchemaError(Exception):
    pass


def from_json(cls: type, data: Any, where: str = "") -> Any:
    """Build `cls` (a schema type) from parsed JSON, checking every type on the way."""
    origin = get_origin(cls)
    if cls is Any:
        return data
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(cls) if a is not type(None)]
        if data is None:
            if len(args) < len(get_args(cls)):
                return None
            raise _SchemaError(f"{where} is null")
        return from_json(args[0], data, where)
    if is_dataclass(cls):
        if not isinstance(data, dict):
            raise _SchemaError(f"{where or 'the file'} should be an object")
        hints = get_type_hints(cls)
        kwargs = {}
        for f in fields(cls):
            if f.name in data:  # unknown keys are ignored; missing ones take their defaults
                kwargs[f.name] = from_json(hints[f.name], data[f.name], f"{where}.{f.name}".lstrip("."))
        try:
            return cls(**kwargs)
        except TypeError:
            missing = [f.name for f in fields(cls) if f.name not in data]
            raise _SchemaError(f"{where or 'the file'} is missing key {missing[0]!r}") from None
    if origin is list:
        if not isinstance(data, list):
            raise _SchemaError(f"{where} should be a list")
        (item,) = get_args(cls)
        return [from_json(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise _SchemaError(f"{where} should be an object")
        _, value = get_args(cls)
        return {k: from_json(value, v, f"{where}.{k}") for k, v in data.items()}
    if cls is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise _SchemaError(f"{where} should be a number")
        return float(data)
    if cls in (int, str, bool):
        if not isinstance(data, cls) or (cls is int and isinstance(data, bool)):
            raise _SchemaError(f"{where} should be a {cls.__name__}")
        return data
    raise TypeError(f"unsupported schema type {cls!r}")


def _upgrade(data: dict) -> dict:
    """An older file's JSON, rewritten into the current schema's shape."""
    if data["schema_version"] == 1:
        gt = data.get("ground_truth")
        if isinstance(gt, dict):
            data["ground_truth"] = [{"model": name, **entry} for name, entry in gt.items()]
        settings = data.get("settings")
        if isinstance(settings, dict) and "losses" in settings:
            settings["methods"] = settings.pop("losses")
        data["schema_version"] = 2
    return data


# ---------------------------------------------------------------- files

def results_path(folder: str | Path) -> Path:
    """`folder` may be a results folder or the results.json inside it."""
    path = Path(folder)
    return path if path.is_file() else path / RESULTS_NAME


def write_results(folder: str | Path, results: Results) -> Path:
    path = Path(folder) / RESULTS_NAME
    atomic_write_json(path, to_json(results))
    return path


def load_results(folder: str | Path) -> Results:
    """Read and check folder/results.json (or the json itself), upgrading older schema versions."""
    path = results_path(folder)
    if not path.is_file():
        raise W2SError(f"no {RESULTS_NAME} in {folder}; pass a folder written by `w2s-gguf run`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise W2SError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); re-run `w2s-gguf run` to rewrite it") from None
    except UnicodeDecodeError:
        raise W2SError(f"{path} is not UTF-8 text; pass a folder written by `w2s-gguf run`") from None
    except OSError as exc:
        raise W2SError(f"cannot read {path} ({exc.strerror}); check its permissions") from None
    check_version(data, path)
    try:
        return from_json(Results, _upgrade(data))
    except _SchemaError as exc:
        raise W2SError(f"{path}: {exc}; re-run `w2s-gguf run` to rewrite it") from None


def check_version(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or data.get("kind") != KIND:
        kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise W2SError(f"{path} is not a w2s-gguf results file (kind {kind!r}); pass a folder written by `w2s-gguf run`")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise W2SError(f"{path} has an unknown schema_version {version!r}; re-run `w2s-gguf run` to rewrite it")
    if version > SCHEMA_VERSION:
        raise W2SError(f"{path} was written by a newer w2s-gguf (schema {version} > {SCHEMA_VERSION}); "
                       f"upgrade w2s-gguf or choose another --out folder")


def refuse_newer_results(folder: Path) -> None:
    """Before a run overwrites folder/results.json: never replace a newer tool's file."""
    path = folder / RESULTS_NAME
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text())
    except (ValueError, OSError):
        return  # unreadable old file: it will be replaced atomically
    version = data.get("schema_version") if isinstance(data, dict) else None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise W2SError(f"{path} was written by a newer w2s-gguf (schema {version} > {SCHEMA_VERSION}); "
                       f"upgrade w2s-gguf or choose another --out folder")
