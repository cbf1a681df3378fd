"""Chess puzzle rows: reading a Lichess puzzle CSV (plain, .gz or .zst) and the rating and theme filters."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

import zstandard

from ..errors import W2SError
from ._base import TaskOptions

LICHESS_COLUMNS = ("PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes", "GameUrl", "OpeningTags")
REQUIRED = ("PuzzleId", "FEN", "Moves", "Rating", "Themes")
GET_DATA = "download lichess_db_puzzle.csv.zst from https://database.lichess.org/#puzzles"


def open_text(path: Path) -> io.TextIOBase:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    if suffix == ".zst":
        reader = zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), read_across_frames=True, closefd=True)
        return io.TextIOWrapper(reader, encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def csv_rows(path: Path) -> Iterator[dict[str, str]]:
    """Rows of a Lichess puzzle CSV as dicts; the header is checked before the first row is returned."""
    if not path.is_file():
        raise W2SError(f"chess --data file {path} not found; pass a Lichess puzzle CSV (.csv, .csv.gz or .csv.zst), e.g. {GET_DATA}")
    if path.stat().st_size == 0:
        raise W2SError(f"chess --data file {path} is empty; {GET_DATA}")
    fh = open_text(path)
    try:
        reader = csv.reader(fh)
        header = next(reader, None)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error, zstandard.ZstdError) as exc:
        fh.close()
        raise W2SError(f"cannot read {path} ({exc}); pass a Lichess puzzle CSV, plain or compressed as .gz or .zst") from None
    if not header:
        fh.close()
        raise W2SError(f"chess --data file {path} is empty; {GET_DATA}")
    names, first = column_names(header, path)
    return _rows(fh, reader, names, first, path)


def column_names(header: list[str], path: Path) -> tuple[list[str], list[list[str]]]:
    """The column names, and the first data row when the file has no header line."""
    if "PuzzleId" not in header and len(header) >= 8 and header[1].count("/") == 7:
        return list(LICHESS_COLUMNS), [header]  # older Lichess exports have no header line
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise W2SError(
            f"{path} is not a Lichess puzzle CSV: missing column(s) {', '.join(missing)} "
            f"(found: {', '.join(header[:12])}); {GET_DATA}"
        )
    return header, []


def _rows(fh, reader, names: list[str], first: list[list[str]], path: Path) -> Iterator[dict[str, str]]:
    with fh:
        try:
            for values in itertools.chain(first, reader):
                if values:  # csv gives [] for a blank line
                    yield dict(zip(names, values))
        except (OSError, EOFError, UnicodeDecodeError, csv.Error, zstandard.ZstdError) as exc:
            raise W2SError(f"cannot read {path} past a damaged part ({exc}); download the file again") from None


# ---------------------------------------------------------------- filters


def check_filters(options: TaskOptions) -> None:
    lo, hi = options.min_rating, options.max_rating
    if lo is not None and hi is not None and lo > hi:
        raise W2SError(f"--min-rating {lo} is above --max-rating {hi}; swap them")


def wanted_themes(options: TaskOptions) -> set[str]:
    # Accept "fork,pin" or "fork pin" inside one entry as well as separate entries (or one plain string).
    entries = [options.themes] if isinstance(options.themes, str) else options.themes
    return {t for entry in entries for t in entry.replace(",", " ").split()}


def themes_of(value: Any) -> list[str]:
    """The hub stores Themes as a list, the CSV as one space-separated string."""
    if isinstance(value, str):
        return value.split()
    return [str(t) for t in value or ()]


class Filter:
    """Applies the rating and theme filters and remembers what it saw, for error messages."""

    def __init__(self, options: TaskOptions, skipped: Counter):
        self.lo, self.hi, self.themes = options.min_rating, options.max_rating, wanted_themes(options)
        self.skipped = skipped
        self.rows = self.passed = 0
        self.lowest: int | None = None  # the ratings seen, for the error message
        self.highest: int | None = None
        self.seen_themes: set[str] = set()

    def __call__(self, rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            rating = _int(row.get("Rating"))
            if rating is None:
                self.skipped["rating is not an integer"] += 1
                continue
            self.lowest = rating if self.lowest is None else min(self.lowest, rating)
            self.highest = rating if self.highest is None else max(self.highest, rating)
            themes = themes_of(row.get("Themes")) if self.themes else []
            self.seen_themes.update(themes)  # before the rating filter: a theme may exist only at other ratings
            if self.lo is not None and rating < self.lo:
                self.skipped[f"filtered: rating below {self.lo}"] += 1
                continue
            if self.hi is not None and rating > self.hi:
                self.skipped[f"filtered: rating above {self.hi}"] += 1
                continue
            if self.themes and self.themes.isdisjoint(themes):
                self.skipped[f"filtered: none of the themes {' '.join(sorted(self.themes))}"] += 1
                continue
            self.passed += 1
            yield row


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def nothing_left(where: str, keep: Filter, skipped: Counter) -> str:
    """Say why no puzzle is left and which filter to relax."""
    filtered = sum(n for reason, n in skipped.items() if reason.startswith("filtered: "))
    if keep.themes and keep.seen_themes.isdisjoint(keep.themes):
        known = ", ".join(sorted(keep.seen_themes)[:12])
        return f"no puzzle in {where} has any of the themes {', '.join(sorted(keep.themes))} (names are case-sensitive; seen: {known}, ...); fix --themes"
    if filtered:
        span = f"{keep.lowest}-{keep.highest}" if keep.lowest is not None else "unknown"
        return (
            f"no chess puzzles left in {where} after the filters ({filtered} of {keep.rows} rows filtered out; "
            f"ratings there run {span}); widen --min-rating/--max-rating or drop --themes"
        )
    reasons = ", ".join(f"{n} {r}" for r, n in skipped.most_common(3))
    return f"no usable chess puzzles in {where}: all {keep.rows} rows were skipped ({reasons}); {GET_DATA}"
