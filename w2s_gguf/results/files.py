"""results.json on disk: generic JSON conversion of the schema, upgrades of older files, reading and writing.

`to_json` and `from_json` walk the dataclasses of schema.py (fields, lists,
dicts, optionals), checking every type on the way in, so a results file
written elsewhere is validated field by field. Files of older schema
versions are upgraded on load (`_upgrade`).
"""

from __future__ import annotations

import json
import types
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import numpy as np

from ..common.storage import atomic_write_json
from ..errors import W2SError
from .schema import KIND, RESULTS_NAME, SCHEMA_VERSION, Results

_FIRST = ("schema_version", "kind", "created", "command", "settings", "task", "models", "versions",
          "text_baseline", "ground_truth", "pairs", "prompting", "timings")


def to_json(obj: Any) -> Any:
    if is_dataclass(obj):
        data = {f.name: to_json(getattr(obj, f.name)) for f in fields(obj)}
        if isinstance(obj, Results):  # the file reads top-down: identity, settings, then numbers
            data = {**{k: data[k] for k in _FIRST if k in data}, **data}
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
    # A schema-3 file written before the statistics moved to schema 3 (the text-only baseline came first)
    # still has the schema-2 summaries: reshape it as one.
    if data["schema_version"] == 2 or (data["schema_version"] == 3 and _old_statistics(data)):
        for pair in data.get("pairs") or []:
            if not isinstance(pair, dict):
                continue  # from_json names the problem
            for summaries in (pair.get("summary"), pair.get("sklearn_summary")):
                for s in (summaries or {}).values():
                    if isinstance(s, dict):  # the median's bootstrap interval is not Fieller's interval of pgr
                        s["pgr_median_ci"], s["pgr_ci"] = s.get("pgr_ci"), None
                        _rename(s, "misfit_train_mean", "disagree_train_mean")
            for seed in pair.get("per_seed") or []:
                for score in ((seed.get("transfer") if isinstance(seed, dict) else None) or {}).values():
                    if isinstance(score, dict):
                        _rename(score, "misfit_train", "disagree_train")
        data["schema_version"] = 3
    return data


def _old_statistics(data: dict) -> bool:
    """Whether a file's summaries are schema 2's (pgr_mean, misfit_train_mean) rather than this schema's."""
    return any(isinstance(s, dict) and ("pgr_mean" in s or "misfit_train_mean" in s)
               for pair in data.get("pairs") or [] if isinstance(pair, dict)
               for summaries in (pair.get("summary"), pair.get("sklearn_summary")) for s in (summaries or {}).values())


def _rename(d: dict, old: str, new: str) -> None:
    if old in d:
        d[new] = d.pop(old)


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
