"""A GGUF file on disk: header and loadability checks, its sha256, and `ResolvedModel`.

Hashes and checks are remembered per file state (path, size, mtime), so a
4 GB model is hashed once and a warm run skips the checks.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..common.llama_logs import quiet_llama_logs
from .registry import ModelEntry
from ..common.storage import atomic_write_json, cache_home, file_lock, sha256_file


@dataclass(frozen=True)
class ResolvedModel:
    """A GGUF file on disk that has been checked."""

    name: str
    path: Path
    sha256: str
    size: int
    architecture: str
    entry: ModelEntry | None = field(default=None, compare=False)
    n_layer: int | None = None  # transformer blocks ({arch}.block_count in the GGUF header)
    n_embd: int | None = None  # feature width ({arch}.embedding_length)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "architecture": self.architecture,
            "source": self.entry.location() if self.entry else "path",
        }


def resolve_local(path: Path, name: str, expected_sha256: str | None = None, entry: ModelEntry | None = None) -> ResolvedModel:
    if path.is_dir():
        raise W2SError(f"{path} is a directory, not a .gguf file; pass the model file itself")
    size = path.stat().st_size
    if size == 0:
        raise W2SError(f"{path} is empty (0 bytes); re-download the model")
    architecture, n_layer, n_embd = checked_architecture(path)
    sha = cached_sha256(path)
    if expected_sha256 and sha != expected_sha256:
        raise W2SError(f"{path} has sha256 {sha[:16]}..., expected {expected_sha256[:16]}... from models.toml; re-download it or fix the entry")
    return ResolvedModel(name=name, path=path.resolve(), sha256=sha, size=size, architecture=architecture, entry=entry,
                         n_layer=n_layer, n_embd=n_embd)


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


def rehash(path: Path) -> str:
    """sha256 read from disk now, remembered for the file's state: a byte that changed without its
    size or mtime (bit rot, a copy that kept the times) counts from then on, in every later run."""
    path = path.resolve()
    sha = sha256_file(path)
    _index_put("file-hashes.json", _file_key(path), sha, path)
    return sha


def checked_architecture(path: Path) -> tuple[str, int | None, int | None]:
    """Check the GGUF header and that this llama.cpp can load the model; return architecture, blocks, width.

    Remembered like the sha256 (per file state and llama.cpp version): the
    checks cost ~1 s for a large vocabulary, which a warm rerun should not pay.
    """
    import llama_cpp

    path = path.resolve()
    key = f"{_file_key(path)}|{llama_cpp.__version__}"
    known = _index_get("model-checks.json", key)
    if not isinstance(known, dict) or "n_embd" not in known:  # never checked, or by an older version
        architecture, n_layer, n_embd = read_gguf_header(path)
        check_loadable(path, architecture)
        known = {"architecture": architecture, "n_layer": n_layer, "n_embd": n_embd}
        _index_put("model-checks.json", key, known, path)
    return known["architecture"], known["n_layer"], known["n_embd"]


def check_loadable(path: Path, architecture: str) -> None:
    """Let llama.cpp read the model's header and vocabulary only (~0.1-1 s), so an
    architecture this build cannot load fails before any long work starts."""
    import llama_cpp


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
    return read_gguf_header(path)[0]


def read_gguf_header(path: Path) -> tuple[str, int | None, int | None]:
    """Check the GGUF header and tensor table; return general.architecture, {arch}.block_count and .embedding_length.

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
            arch, alignment, shape = "", 32, {}
            for _ in range(n_kv):
                key = value(_GGUF_STRING)
                (vtype,) = struct.unpack("<I", read(4))
                val = value(vtype)
                if key == "general.architecture":
                    arch = val
                elif key == "general.alignment":
                    alignment = int(val)
                elif key.endswith((".block_count", ".embedding_length")) and isinstance(val, int):
                    shape[key] = val
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
    return arch or "unknown", shape.get(f"{arch}.block_count"), shape.get(f"{arch}.embedding_length")
