"""Custom: a user's own binary task from a JSONL, CSV or parquet file (`--data`).

Columns: `text` (the doc, used as is) and `label` (0 or 1; also true/false),
optionally `group` (docs sharing a group stay on one side of every split)
and `split` (`train` or `test`). The columns are those of every row, not
just the first. Without `group`, a doc's group is the hash of its text.
Without `split`, groups go to test in the order of their hash until test
holds --n-test docs.

A text that occurs twice is kept once, with or without a group column: the
later copies are dropped and counted (so the same text can never sit in
train and test, or in halves A and B, under two groups); the same text
with two labels is an error naming both rows.

Every problem is one W2SError that names the file and the fix: missing or
empty file, a line that does not parse, missing columns (the found ones
are listed), labels other than 0/1 (a few are shown), an empty text (its
row is named), a single class, a split value missing from some rows, or a
group in both splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import W2SError
from . import Doc, PromptingForm, Task, TaskDocs, TaskOptions, register
from ._common import as_label, is_test_group, short_id, text_of
from ._tables import read_table

FORMAT = "a JSONL, CSV or parquet file with columns text and label (0/1), optionally group and split (train/test)"


@register
class Custom(Task):
    name = "custom"
    description = "your own binary task: --data FILE (JSONL, CSV or parquet with text and label columns)"
    source = "--data FILE"
    license = "yours"
    size = "your file"
    prompt_version = "1"
    prompting = PromptingForm("\nIs this correct? Answer:", (" no", " yes"))  # generic; options.extra prompt_suffix / label_words override it

    def available_offline(self) -> bool:
        return True

    def prompting_form(self, options: TaskOptions) -> PromptingForm | None:
        """The generic form, or the file's own: options.extra["prompt_suffix"] and ["label_words"] (word 0, word 1)."""
        suffix = options.extra.get("prompt_suffix", self.prompting.suffix)
        words = tuple(options.extra.get("label_words", self.prompting.label_words))
        if len(words) != 2 or not all(isinstance(w, str) and w for w in words):
            raise W2SError(f"task 'custom': label_words must be two words (for label 0 and 1), got {list(words)!r}")
        if (suffix, words) == (self.prompting.suffix, self.prompting.label_words):
            return self.prompting
        return PromptingForm(str(suffix), words, version="custom")

    def load(self, options: TaskOptions) -> TaskDocs:
        if not options.data:
            raise W2SError(f"task 'custom' needs --data FILE: {FORMAT}")
        path = Path(options.data).expanduser()
        docs, splits = rows_to_docs(read_table(path, "columns text and label (0/1)"), path)
        skipped: dict[str, int] = {}
        docs, splits = drop_duplicate_texts(docs, splits, path, skipped)
        train, test = assign_splits(docs, splits, path)
        # Without a split column the split is by group hash: load_task may carve the test size asked for.
        return TaskDocs(train, test, f"file:{path}", skipped, hash_split=splits[0] is None)


def rows_to_docs(rows: list[dict[str, Any]], path: Path) -> tuple[list[Doc], list[str | None]]:
    """Docs in file order, and each row's `split` value (None without the column)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))  # every row's: row 0 may lack one
    missing = [c for c in ("text", "label") if c not in columns]
    if missing:
        found = ", ".join(str(c) for c in columns) or "none"
        raise W2SError(f"--data file {path} has no {' or '.join(missing)} column (found: {found}); rename its columns to text and label")
    bad = [(i, row.get("label")) for i, row in enumerate(rows, 1) if as_label(row.get("label")) is None]
    if bad:
        shown = ", ".join(f"{value!r} (row {i})" for i, value in bad[:5])
        raise W2SError(f"--data file {path} has labels other than 0/1: {shown}{' ...' if len(bad) > 5 else ''}; use 1 for positive and 0 for negative")
    docs = []
    for i, row in enumerate(rows, 1):
        text = text_of(row.get("text"))
        if not text.strip():
            raise W2SError(f"--data file {path} row {i} has an empty text; fill it in or remove the row")
        group = text_of(row.get("group")).strip() or short_id(text)
        docs.append(Doc(text=text, label=as_label(row["label"]), group=group, row=i))
    classes = {d.label for d in docs}
    if len(classes) < 2:
        raise W2SError(f"--data file {path} has only label {classes.pop()} ({len(docs)} rows); a binary task needs rows of both 0 and 1")
    if "split" not in columns:
        return docs, [None] * len(rows)
    lacking = [i for i, row in enumerate(rows, 1) if not text_of(row.get("split")).strip()]
    if lacking:
        shown = ", ".join(map(str, lacking[:5])) + (" ..." if len(lacking) > 5 else "")
        raise W2SError(f"--data file {path}: {len(lacking)} of {len(rows)} rows have no split value (rows {shown}) "
                       f"while the others do; give every row train or test, or drop the split column from all rows")
    return docs, [_split_value(row, i, path) for i, row in enumerate(rows, 1)]


def drop_duplicate_texts(docs: list[Doc], splits: list[str | None], path: Path,
                         skipped: dict[str, int]) -> tuple[list[Doc], list[str | None]]:
    """Keep the first row of each text; a text with two labels is an error naming both rows."""
    first: dict[str, Doc] = {}
    kept: list[tuple[Doc, str | None]] = []
    for doc, split in zip(docs, splits):
        earlier = first.setdefault(doc.text, doc)
        if earlier is doc:
            kept.append((doc, split))
        elif earlier.label != doc.label:
            raise W2SError(f"--data file {path}: rows {earlier.row} and {doc.row} have the same text with labels "
                           f"{earlier.label} and {doc.label}; fix the label or remove one of them")
        else:
            reason = "duplicate text (a later row with the same text and label)"
            skipped[reason] = skipped.get(reason, 0) + 1
    return [d for d, _ in kept], [s for _, s in kept]


def _split_value(row: dict[str, Any], number: int, path: Path) -> str:
    value = text_of(row.get("split")).strip().lower()
    if value not in ("train", "test"):
        raise W2SError(f"--data file {path} row {number} has split {row.get('split')!r}; use train or test (or drop the split column)")
    return value


def assign_splits(docs: list[Doc], splits: list[str | None], path: Path) -> tuple[list[Doc], list[Doc]]:
    if splits and splits[0] is None:
        chosen = ["test" if is_test_group(d.group) else "train" for d in docs]
        if len(set(chosen)) < 2:
            groups = len({d.group for d in docs})
            raise W2SError(f"--data file {path} has too few groups ({groups}) to split 75/25 into train and test; add rows, or add a split column")
    else:
        chosen = splits
        where: dict[str, str] = {}
        for doc, split in zip(docs, chosen):
            if where.setdefault(doc.group, split) != split:
                raise W2SError(f"--data file {path}: group {doc.group!r} has rows in both train and test; a group must stay on one side, fix its split values")
        for name in ("train", "test"):
            if name not in chosen:
                raise W2SError(f"--data file {path} has no {name} rows in its split column; add some, or drop the column to split automatically")
    train = [d for d, s in zip(docs, chosen) if s == "train"]
    test = [d for d, s in zip(docs, chosen) if s == "test"]
    return train, test
