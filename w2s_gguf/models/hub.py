"""Fetching one model file from the Hugging Face hub, verified, with one-line errors.

huggingface_hub writes the body to a per-process `*.incomplete` file and
renames it when the size matches, but the bytes are only checked against a
sha256 afterwards. So the file is fetched into a staging folder beside the
destination and moved to its final name only once its size and sha256 match:
a killed or failed download never leaves unverified bytes under that name,
and the staging folder (with any partial file a killed process left) is
emptied before each attempt and removed after it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..errors import W2SError
from ..common.network import hub_endpoint
from ..common.storage import atomic_write_json, sha256_file

STAGING = ".hub-download"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def record_path(dest: Path) -> Path:
    """Where the hub's sha256 for an unpinned file is kept (checked on every later use)."""
    return dest.with_name(dest.name + ".hub-sha256.json")


def fetch_verified(repo: str, filename: str, revision: str, dest: Path, sha256: str | None, size: int | None, where: str) -> None:
    """Download repo/filename@revision to `dest`, checked against `sha256` (else the hub's LFS sha256).

    `where` names the registry file, for error messages. Any failure raises a
    one-line W2SError and leaves nothing at `dest`.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    staging = dest.parent / STAGING
    shutil.rmtree(staging, ignore_errors=True)  # what a killed download left
    what = f"{repo}/{filename}@{revision[:10]}"
    try:
        meta = get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision))
        hub_sha = (meta.etag or "").strip('"').lower()
        expected = sha256 or (hub_sha if _SHA256.fullmatch(hub_sha) else None)
        if expected is None:
            raise W2SError(f"the hub gives no sha256 for {what}; add sha256 to its entry in {where}")
        if size and meta.size and meta.size != size:
            raise W2SError(f"the hub serves {what} with {meta.size} bytes but {where} says size = {size}; fix the entry or its revision")
        got = Path(hf_hub_download(repo, filename, revision=revision, local_dir=staging))
        actual_size = got.stat().st_size
        if (size and actual_size != size) or sha256_file(got) != expected:
            raise W2SError(
                f"downloaded {what} ({actual_size} bytes) does not match its size/sha256 "
                f"(expected sha256 {expected[:16]}...) and was deleted; run the command again"
            )
        if not sha256:  # record first: a file at `dest` without its record would be trusted unchecked
            atomic_write_json(record_path(dest), {"sha256": expected, "revision": revision})
        os.replace(got, dest)
    except W2SError:
        raise
    except Exception as exc:  # huggingface_hub raises many types; each becomes one line
        raise W2SError(describe_hub_error(exc, what, revision, where)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def describe_hub_error(exc: BaseException, what: str, revision: str, where: str) -> str:
    """One line that names the problem and the fix, for an exception from huggingface_hub."""
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = hub_endpoint()
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, RevisionNotFoundError):
        return f"the hub ({endpoint}) has no revision {revision} of {what.split('@')[0]}; fix revision in {where}"
    if isinstance(exc, GatedRepoError):
        return f"{what} is gated on the hub ({endpoint}); accept its terms on the model page and log in (`hf auth login` or HF_TOKEN)"
    if isinstance(exc, RepositoryNotFoundError) or status == 401:
        return f"the hub ({endpoint}) refused {what} ({status or 'not found'}: missing, private or needs a token); fix repo in {where} or log in (`hf auth login` or HF_TOKEN)"
    if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError):
        return f"the hub ({endpoint}) has no file {what}; fix filename in {where}"
    if isinstance(exc, HfHubHTTPError) and status is not None:
        return f"the hub ({endpoint}) answered HTTP {status} for {what}; try again later"
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"could not download {what} from {endpoint} ({text}); check the connection and run the command again"
