"""The embedding cache: vectors keyed by text sha256, in checksummed shards.

Each shard is a `.npy` file plus a small JSON manifest entry naming the
texts it holds (by sha256) and the sha256 of the `.npy` bytes; both are
written atomically, the manifest entry last. A killed run leaves only
finished shards, which the next run verifies and reuses. A shard whose
checksum does not match is reported, deleted and recomputed.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .engine import BATCH_TOKENS
from ..common.storage import atomic_save_npy, atomic_write_json, cache_home, load_npy, sha256_bytes, sha256_file

STORE_FORMAT = 1
STORE_DTYPES = ("float32", "float16")


def embeddings_root(root: Path | None = None) -> Path:
    return root or cache_home() / "embeddings"


def text_key(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))

@dataclass
class StoreSettings:
    """Everything that changes the vectors; it names the store folder."""

    model_sha256: str
    pooling: str
    max_tokens: int
    llama_cpp_version: str
    gpu_offload: bool
    batch_tokens: int = BATCH_TOKENS  # on a GPU, batch composition moves vectors slightly (cosine >= 0.999)
    layer: str = "last"  # "last" (the pooled final norm, OAI's feature) or a block index "0".."L-1"
    dtype: str = "float32"  # or "float16": half the disk for all-layer captures of large models
    # 1: each text decoded alone (the CPU), its vector a function of the text; None: packed (a GPU,
    # and every store made before), where a vector depends slightly on its batch neighbours.
    texts_per_batch: int | None = None
    # False: llama.cpp's plain CPU kernels (decoding alone); True: its default extra weight buffers
    # (engine.weight_buffers), as every store before 0.3.1.
    extra_buffers: bool = True

    def key(self) -> str:
        fields = dict(self.__dict__)
        # Defaults stay out of the hash, so caches made before layers existed keep their names.
        for name, default in (("layer", "last"), ("dtype", "float32"), ("texts_per_batch", None),
                              ("extra_buffers", True)):
            if fields[name] == default:
                del fields[name]
        payload = json.dumps({**fields, "format": STORE_FORMAT}, sort_keys=True)
        tag = ("" if self.layer == "last" else f"-L{self.layer}") + ("" if self.dtype == "float32" else "-f16")
        return f"{self.model_sha256[:16]}-{self.pooling}-{self.max_tokens}{tag}-{sha256_bytes(payload.encode())[:12]}"


class EmbeddingStore:
    """Vectors keyed by text sha256, in checksummed shards under one folder."""

    def __init__(self, settings: StoreSettings, root: Path | None = None):
        self.settings = settings
        self.dir = embeddings_root(root) / settings.key()
        self.dir.mkdir(parents=True, exist_ok=True)
        info = self.dir / "settings.json"
        if not info.exists():
            atomic_write_json(info, settings.__dict__)
        self._index: dict[str, tuple[str, int]] = {}
        self._shards: dict[str, np.ndarray] = {}
        self.problems: list[str] = []

    def refresh(self) -> None:
        """Read and verify every finished shard; delete (and report) any that fail."""
        self._index.clear()
        self._shards.clear()
        for entry_path in sorted(self.dir.glob("shard-*.json")):
            npy = entry_path.with_suffix(".npy")
            try:
                entry = json.loads(entry_path.read_text())
                ok = npy.is_file() and sha256_file(npy) == entry["sha256"]
                vectors = load_npy(npy) if ok else None
                ok = ok and vectors.shape == (len(entry["keys"]), entry["dim"]) and vectors.dtype == self.settings.dtype
            except (ValueError, KeyError, OSError):
                ok = False
            if not ok:
                self.problems.append(f"cache shard {npy.name} in {self.dir} is damaged (checksum or manifest mismatch); it was deleted and will be recomputed")
                for path in (entry_path, npy):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                continue
            self._shards[npy.name] = vectors
            for row, key in enumerate(entry["keys"]):
                self._index.setdefault(key, (npy.name, row))

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if k not in self._index]

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def add_shard(self, keys: list[str], vectors: np.ndarray, stats: dict) -> None:
        name = f"shard-{time.time_ns()}-{uuid.uuid4().hex[:8]}"  # sorts in the order written
        vectors = np.ascontiguousarray(vectors, dtype=self.settings.dtype)
        sha = atomic_save_npy(self.dir / f"{name}.npy", vectors)
        # The manifest entry is written last: a shard without one does not exist.
        atomic_write_json(self.dir / f"{name}.json",
                          {"keys": keys, "sha256": sha, "dim": int(vectors.shape[1]), **stats})
        self._shards[f"{name}.npy"] = vectors
        for row, key in enumerate(keys):
            self._index.setdefault(key, (f"{name}.npy", row))

    def gather(self, keys: list[str]) -> np.ndarray:
        """Vectors for `keys` in that order, as one float32 array."""
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        first = self._shards[self._index[keys[0]][0]]
        out = np.empty((len(keys), first.shape[1]), dtype=np.float32)
        for i, key in enumerate(keys):
            shard, row = self._index[key]
            out[i] = self._shards[shard][row]
        return out

