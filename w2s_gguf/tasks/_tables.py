"""One reader for every user table (`--data`): JSONL, JSON, CSV or parquet, optionally compressed.

Rows come back as dicts in the file's order. Every problem is one W2SError
naming the file, the place and the fix.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
from pathlib import Path
from typing import Any

from ..errors import W2SError

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_OPENERS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}


def table_format(path: Path) -> str | None:
    """"jsonl", "csv" or "parquet" from a file name ("data.jsonl.gz" counts as jsonl)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (*_OPENERS, ".zst"):
        suffixes = suffixes[:-1]
    return FORMATS.get(suffixes[-1]) if suffixes else None


def read_table(path_text: str | Path, need: str) -> list[dict[str, Any]]:
    """Rows of a user's file; `need` describes the columns the task wants, for messages."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise W2SError(f"--data file {path} not found; pass a JSONL, CSV or parquet file with {need}")
    kind = table_format(path)
    if kind is None:
        raise W2SError(f"--data file {path} has an unknown type {path.suffix or '(none)'}; use .jsonl, .csv or .parquet (optionally .gz/.bz2/.xz/.zst) with {need}")
    if path.stat().st_size == 0:
        raise W2SError(f"--data file {path} is empty; it needs rows with {need}")
    if kind == "parquet":
        rows = _read_parquet(path)
    else:
        content = _text(path)
        if not content.strip():
            raise W2SError(f"--data file {path} is empty; it needs rows with {need}")
        rows = _read_csv(content, path) if kind == "csv" else _read_jsonl(content, path)
    if not rows:
        what = "a header but no rows" if kind == "csv" else "no rows"
        raise W2SError(f"--data file {path} has {what}; add rows with {need}")
    return rows


def _text(path: Path) -> str:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix == ".zst":
            import zstandard

            data = zstandard.ZstdDecompressor().stream_reader(data).read()
        elif suffix in _OPENERS:
            data = _OPENERS[suffix](data)
    except Exception as exc:  # each codec raises its own type for a damaged file
        raise W2SError(f"--data file {path} is not valid {suffix[1:]} data ({exc}); re-create the file") from None
    try:
        return data.decode("utf-8-sig")  # -sig: spreadsheets often write a BOM
    except UnicodeDecodeError as exc:
        raise W2SError(f"--data file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises several types for a file that is not parquet
        raise W2SError(f"--data file {path} is not a readable parquet file ({' '.join(str(exc).split())[:200]}); "
                       f"check the file") from None


def _read_jsonl(content: str, path: Path) -> list[dict[str, Any]]:
    example = 'like {"text": "...", "label": 1}'
    if content.lstrip().startswith("["):  # one JSON array of objects, also accepted
        try:
            rows = json.loads(content)
        except json.JSONDecodeError as exc:
            raise W2SError(f"--data file {path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it or write one object per line") from None
        if not all(isinstance(r, dict) for r in rows):
            raise W2SError(f"--data file {path} is a JSON array of non-objects; write objects {example}")
        return rows
    rows = []
    for number, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise W2SError(f"--data file {path} line {number} is not valid JSON ({exc.msg}); write one object per line, {example}") from None
        if not isinstance(row, dict):
            raise W2SError(f"--data file {path} line {number} is not a JSON object; write one object per line, {example}")
        rows.append(row)
    return rows


def _read_csv(content: str, path: Path) -> list[dict[str, Any]]:
    try:
        return list(csv.DictReader(content.splitlines(keepends=True)))
    except csv.Error as exc:
        raise W2SError(f"--data file {path} is not a valid CSV ({exc}); check its quoting") from None
