"""Task registry: each task is one small module in this package.

A task module defines a `Task` subclass decorated with `@register`. It only
knows how to read its source and format docs; choosing, balancing and
counting docs is shared code here (`load_task`).

Adding a task = adding one file here; nothing else changes. Modules whose
names start with "_" are shared helpers, not tasks (_common: hashing, splits,
hub and packaged sources; _tables: reading a user's file; _chess_rows:
Lichess CSV rows and filters).

May import: errors, common.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SettingError, W2SError
from ..common.plugins import Registry
from ._base import Doc, PromptingForm, Task, TaskDocs, TaskOptions
from ._common import split_unit

__all__ = ["Doc", "PromptingForm", "Task", "TaskData", "TaskDocs", "TaskOptions", "docs_fingerprint", "get_task", "load_task", "register",
           "task_names"]


_REGISTRY = Registry("task", __name__)
register = _REGISTRY.register


def task_names() -> list[str]:
    _REGISTRY.discover()
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    _REGISTRY.discover()
    if name not in _REGISTRY:
        raise W2SError(f"unknown task {name!r}; choose one of: {', '.join(sorted(_REGISTRY))} (see `w2s-gguf tasks list`)")
    return _REGISTRY[name]()


def docs_fingerprint(train: list[Doc], test: list[Doc]) -> str:
    """sha256 of every chosen doc's split, label, group and text, in order: the same docs, or not."""
    import hashlib

    digest = hashlib.sha256()
    for split, docs in (("train", train), ("test", test)):
        for d in docs:
            digest.update(f"{split}\x1f{d.label}\x1f{d.group}\x1f{d.text}\x1e".encode("utf-8"))
    return digest.hexdigest()


@dataclass
class TaskData:
    """The docs one experiment uses, with the facts a report needs."""

    name: str
    train: list[Doc]
    test: list[Doc]
    source: str
    prompt_version: str
    skipped: dict[str, int]
    balanced: bool
    n_test_available: int | None = None  # about how many test docs the task could supply (with these train docs)
    # Every usable (train, test) doc the choice was made from, for `tasks audit`.
    pools: tuple[list[Doc], list[Doc]] = field(default_factory=lambda: ([], []), repr=False, compare=False)

    @property
    def positive_rate_train(self) -> float:
        return float(np.mean([d.label for d in self.train])) if self.train else float("nan")

    @property
    def positive_rate_test(self) -> float:
        return float(np.mean([d.label for d in self.test])) if self.test else float("nan")

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "prompt_version": self.prompt_version,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "positive_rate_train": self.positive_rate_train,
            "positive_rate_test": self.positive_rate_test,
            "balanced": self.balanced,
            "skipped": dict(self.skipped),
            "docs_sha256": docs_fingerprint(self.train, self.test),
            "n_test_available": self.n_test_available,
        }


def _choose(docs: list[Doc], n: int, balance: bool, rng: np.random.Generator, split: str, task: str) -> list[Doc]:
    """Pick `n` docs at random (the task's split already keeps each group on one side).

    With `balance`, exactly n//2 positives and n - n//2 negatives, so the chosen
    docs themselves are 50/50, not just the pool they are drawn from.
    """
    if not balance:
        if len(docs) < n:
            raise SettingError(f"n_{split}", f"is {n} but task {task!r} has {len(docs)} {split} docs; lower it to at most {len(docs)}")
        return [docs[i] for i in rng.permutation(len(docs))[:n]]
    pos = [d for d in docs if d.label == 1]
    neg = [d for d in docs if d.label == 0]
    if not pos or not neg:
        raise SettingError("balance", f"needs both labels, but the {split} split of task {task!r} has only one class")
    n_pos, n_neg = n // 2, n - n // 2
    if n_pos > len(pos) or n_neg > len(neg):
        most = 2 * min(len(pos), len(neg))
        raise SettingError(f"n_{split}", f"is {n} but task {task!r} has {most} {split} docs after balancing; "
                           f"lower it to at most {most}")
    pick = [pos[i] for i in rng.permutation(len(pos))[:n_pos]] + [neg[i] for i in rng.permutation(len(neg))[:n_neg]]
    return [pick[i] for i in rng.permutation(n)]


def _generators(data_seed: int, n_train_pool: int) -> tuple[np.random.Generator, np.random.Generator]:
    """One generator for the train pick and one for the test pick, so the test docs depend only on the
    task, its options, n_test and data_seed, never on n_train or --balance's draws for train.

    The test generator starts where an unbalanced train pick (one permutation of the train pool) leaves
    the data seed's generator, so unbalanced picks are the same docs as when both shared one generator.
    """
    test_rng = np.random.default_rng(data_seed)
    test_rng.permutation(n_train_pool)
    return np.random.default_rng(data_seed), test_rng


def carve_test(docs: list[Doc], n_test: int, balance: bool = False) -> tuple[list[Doc], list[Doc]]:
    """Train and test pools from docs without a split of their own: whole groups go to test in
    the order of their split hash (the same order the 75/25 hash split uses) until test holds
    at least `n_test` docs (with `balance`, at least n_test//2 of each label); the rest is train."""
    by_group: dict[str, list[Doc]] = {}
    for doc in docs:
        by_group.setdefault(doc.group, []).append(doc)
    need = {0: n_test - n_test // 2, 1: n_test // 2} if balance else None
    test_groups: set[str] = set()
    count, labels = 0, {0: 0, 1: 0}
    for group in sorted(by_group, key=lambda g: (split_unit(g), g)):
        if (count >= n_test) if need is None else all(labels[k] >= need[k] for k in need):
            break
        test_groups.add(group)
        count += len(by_group[group])
        for doc in by_group[group]:
            labels[doc.label] += 1
    return [d for d in docs if d.group not in test_groups], [d for d in docs if d.group in test_groups]


def load_task(
    name: str,
    n_train: int,
    n_test: int,
    options: TaskOptions | None = None,
    balance: bool = False,
    data_seed: int = 0,
) -> TaskData:
    """Load a task and choose `n_train` train and `n_test` test docs.

    The choice depends only on `data_seed`, not on the experiment seed, so
    every seed of a run embeds the same docs once.
    """
    if n_train <= 0 or n_test <= 0:
        raise SettingError("n_train" if n_train <= 0 else "n_test", f"must be positive (got {min(n_train, n_test)})")
    task = get_task(name)
    loaded = task.load(options or TaskOptions())
    pools = (loaded.train, loaded.test)
    if loaded.hash_split and len(loaded.test) != n_test:
        total = len(loaded.train) + len(loaded.test)
        if n_train + n_test > total:
            raise SettingError("n_test", f"is {n_test} with n_train {n_train}, but task {name!r} has {total} docs in all "
                                         f"(no split of its own); lower them to at most {total} together")
        pools = carve_test(loaded.train + loaded.test, n_test, balance)
    # A task without a split of its own can give every doc not used for training to test.
    available = _most(loaded.train + loaded.test, balance) - n_train if loaded.hash_split else _most(loaded.test, balance)
    train_rng, test_rng = _generators(data_seed, len(pools[0]))
    train = _choose(pools[0], n_train, balance, train_rng, "train", name)
    test = _choose(pools[1], n_test, balance, test_rng, "test", name)
    for split, docs in (("train", train), ("test", test)):
        if len({d.label for d in docs}) < 2:
            raise W2SError(f"task {name!r}: the chosen {split} docs are all one class; use more docs or --balance")
    return TaskData(
        name=name,
        train=train,
        test=test,
        source=loaded.source,
        prompt_version=task.prompt_version,
        skipped=loaded.skipped,
        balanced=balance,
        n_test_available=max(available, len(test)),
        pools=(list(pools[0]), list(pools[1])),
    )


def _most(docs: list[Doc], balance: bool) -> int:
    """How many docs a choice from `docs` can hold (balanced: twice the smaller class)."""
    if not balance:
        return len(docs)
    positives = sum(d.label for d in docs)
    return 2 * min(positives, len(docs) - positives)
