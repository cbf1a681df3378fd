"""Files on disk: the cache folder, atomic writes, checksums and locks.

Every write goes to a temporary file in the same folder and is renamed into
place, so a killed process leaves either the old file or the new one, never
half of one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import W2SError

HOME_ENV = "W2S_GGUF_HOME"
_UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it)
os.umask(_UMASK)


def cache_home() -> Path:
    """The one folder for models and embeddings: $W2S_GGUF_HOME, else the user cache."""
    env = os.environ.get(HOME_ENV)
    if env:
        home = Path(env).expanduser()
    else:
        import platformdirs

        home = Path(platformdirs.user_cache_dir("w2s-gguf"))
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise W2SError(f"cannot create cache folder {home} ({exc.strerror}); set {HOME_ENV} to a writable folder") from None
    return home


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temp file + fsync + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would (0666 & ~umask).
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> str:
    """Save `array` as .npy atomically; return the sha256 of the bytes written."""
    data = npy_bytes(array)
    atomic_write_bytes(path, data)
    return sha256_bytes(data)


def load_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    # allow_pickle=False: a cache or results folder may come from someone else.
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, waiting: str | None = None) -> Iterator[None]:
    """Exclusive advisory lock held for the `with` block (released if the process dies).

    `waiting`: said on stderr when another process holds the lock, so a run
    that waits does not look hung.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(f"[w2s-gguf] {waiting}", file=sys.stderr, flush=True)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def check_writable_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create `path` if needed and prove we can write there, before any long work."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise W2SError(f"{what} {path} is not writable ({exc.strerror}); choose another with --out") from None
    return path
