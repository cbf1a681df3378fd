"""`w2s-gguf reproduce`: a results file is a complete recipe; rerun it and compare number by number.

The rerun uses the same model files (checked by sha256), the same task
source and docs (checked by their fingerprint) and every recorded setting.
Features are recomputed in a fresh cache inside the output folder (removed
afterwards), so the check covers extraction too. The verdict is "exact" on
the same build, else the largest difference, where it sits, and what
differs between the two runs' environments (llama.cpp version, backend,
threads, platform) that could explain it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import ExperimentConfig
from ..errors import SettingError, W2SError
from .run import run_experiment
from ..models import load_registry, resolve_model
from ..results import Results, load_results, to_json

# Prompting fields that record what a run cost, not what it found (a rerun scores in a fresh cache).
_COSTS = {"n_computed", "n_tokens", "seconds", "tokens_per_second", "cache_dir", "timings"}
# What can move the numbers without any setting changing.
_ENVIRONMENT = ("versions.llama_cpp_python", "versions.torch", "versions.numpy", "versions.scikit_learn",
                "versions.platform", "settings.n_threads", "settings.n_gpu_layers")
# Files that do not record `decode` come from versions that packed texts into batches (engine.texts_per_batch).
UNRECORDED_DECODE = "packed"


@dataclass
class Comparison:
    n_numbers: int
    mismatches: list[tuple[str, Any, Any]]  # (path, original, rerun)
    environment: list[tuple[str, Any, Any]] = field(default_factory=list)
    decode_assumed: bool = False  # an older file, which does not record decode, rerun as UNRECORDED_DECODE

    @property
    def exact(self) -> bool:
        return not self.mismatches

    def largest(self) -> tuple[str, float] | None:
        diffs = [(p, abs(b - a)) for p, a, b in self.mismatches
                 if isinstance(a, (int, float)) and isinstance(b, (int, float))]
        return max(diffs, key=lambda d: d[1]) if diffs else None

    def verdict(self) -> str:
        if self.exact:
            return f"exact: all {self.n_numbers} numbers match"
        lines = [f"differs: {len(self.mismatches)} of {self.n_numbers} numbers"]
        largest = self.largest()
        if largest:
            lines[0] += f", largest |difference| {largest[1]:.4g} at {largest[0]}"
        if self.environment:
            lines.append("the runs differ in: " + "; ".join(f"{p} {a!r} vs {b!r}" for p, a, b in self.environment))
        else:
            lines.append("same versions, threads and backend: the difference comes from nondeterminism in this build")
        if self.decode_assumed:
            lines.append(f"the file does not record how texts shared a llama.cpp batch, so they were decoded "
                         f"{UNRECORDED_DECODE}, as before w2s-gguf 0.3.1; a file written on the CPU by 0.3.0 from "
                         f"2026-12-01 on decoded each text alone: rerun with --decode alone")
        return "\n".join(lines)


def numbers(results: Results) -> dict[str, Any]:
    """Every result number (and null) by its path, e.g. pairs[0].summary.xent.pgr_median."""
    flat: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not (path.startswith("prompting") and k in _COSTS):
                    walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            flat[path.lstrip(".")] = value

    data = to_json(results)
    walk(data["ground_truth"], "ground_truth")
    walk(data["pairs"], "pairs")
    if data.get("prompting") is not None:
        walk(data["prompting"], "prompting")
    return flat


def compare(original: Results, rerun: Results) -> Comparison:
    a, b = numbers(original), numbers(rerun)
    mismatches = [(p, a.get(p), b.get(p)) for p in list(a) + [p for p in b if p not in a] if a.get(p) != b.get(p)]
    env = []
    for path in _ENVIRONMENT:
        section, key = path.split(".")
        va, vb = getattr(original, section).get(key), getattr(rerun, section).get(key)
        if va != vb:
            env.append((path, va, vb))
    recorded, decode = "decode" in original.settings, rerun.settings.get("decode")
    if original.settings.get("decode", UNRECORDED_DECODE) != decode:
        env.append(("settings.decode", original.settings["decode"] if recorded else
                    f"not recorded ({UNRECORDED_DECODE} before 0.3.1)", decode))
    for name, model in original.models.items():
        other = rerun.models.get(name)
        if other is not None and other.gpu_offload != model.gpu_offload:
            env.append((f"models.{name}.gpu_offload", model.gpu_offload, other.gpu_offload))
    return Comparison(len(set(a) | set(b)), mismatches, env, not recorded and decode == UNRECORDED_DECODE)


def reproduce(source: str | Path, out: str | Path, progress: bool = True, log: Callable[[str], None] | None = None,
              decode: str | None = None) -> tuple[Results, Results, Comparison]:
    """`decode` overrides the file's (or, for a file that does not record it, UNRECORDED_DECODE)."""
    original = load_results(source)
    config = recipe_of(original, Path(source))
    config.ray = None  # a rerun extracts here: the check is that this machine gets the same numbers
    config.decode = decode or original.settings.get("decode", UNRECORDED_DECODE)
    config.validate()
    _check_models(original, config)
    out = Path(out)
    cache = out / ".reproduce-cache"
    try:
        rerun = run_experiment(config, out, progress=progress, command=f"w2s-gguf reproduce {source}", log=log,
                               cache_root=cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if original.task.docs_sha256 and rerun.task.docs_sha256 != original.task.docs_sha256:
        raise W2SError(f"the task gave other docs than the original run ({original.task.source} then, "
                       f"{rerun.task.source} now); pass the same data file or install the same dataset version")
    return original, rerun, compare(original, rerun)


def recipe_of(original: Results, source: Path) -> ExperimentConfig:
    """The run's settings, every field checked before any model is loaded; a bad one is named as in the file."""
    path = source if source.suffix == ".json" else source / "results.json"
    where = f"in {path}"
    try:
        config = ExperimentConfig.from_json(original.settings, where)
        config.validate()
    except SettingError as exc:
        if exc.param.startswith("settings"):
            raise
        raise SettingError(f"settings.{exc.param}", f"{where} {exc.problem}") from None
    return config


def _check_models(original: Results, config: ExperimentConfig) -> None:
    """Each model spec must resolve to the very file the original run used."""
    registry = load_registry(config.registry)
    for spec, (name, info) in zip(config.models, original.models.items()):
        try:
            model = resolve_model(spec, registry)
        except W2SError as exc:
            raise W2SError(f"cannot find model {name} of the original run ({exc}); put the file with sha256 "
                           f"{info.sha256[:16]}... at {info.path}") from None
        if model.sha256 != info.sha256:
            raise W2SError(f"model {spec} is a different file here (sha256 {model.sha256[:16]}...) than in the original "
                           f"run ({info.sha256[:16]}...); use the same file to reproduce")
