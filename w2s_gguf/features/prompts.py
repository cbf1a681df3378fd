"""Prompts for the scoring engine: a task's form as strings, groups of prompts that share demonstrations,
and their token lists.

A prompt is `[BOS] demo_1 ... demo_k doc suffix`, where each demonstration is `text suffix word
separator` with the word of its label. Pieces are tokenized separately and concatenated, so the
prefix (BOS and the demonstrations) is the same token list for every doc of a group, and the token a
label word starts with is the token scored. A text longer than max_tokens is cut from the left, like
features. Tokenizing needs only the vocabulary (scoring.Vocab), so prompts are checked against the
model's context before any weights are loaded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..common.storage import sha256_bytes
from ..errors import W2SError
from ..models.modelfile import ResolvedModel
from .scoring import Vocab


@dataclass(frozen=True)
class PromptStyle:
    """A task's prompting form as strings: the question after each doc, and the word for label 0 and 1."""

    suffix: str
    label_words: tuple[str, str]
    separator: str = "\n\n"
    version: str = "1"


@dataclass
class PromptGroup:
    """Prompts that share one prefix: the demonstrations (text, label) in order, then each doc's text."""

    demos: list[tuple[str, int]]
    docs: list[str]


def prompt_key(demos: list[tuple[str, int]], doc: str) -> str:
    return sha256_bytes(json.dumps([[[t, int(y)] for t, y in demos], doc]).encode("utf-8"))


@dataclass
class TokenizedGroup:
    prefix: list[int]
    docs: list[list[int]]  # each doc part: the doc's tokens and the suffix
    keys: list[str]


class PromptTokens:
    """Turns groups of prompts into token lists with one model's vocabulary (no weights loaded)."""

    def __init__(self, vocab: Vocab, style: PromptStyle, max_tokens: int):
        self.vocab, self.style, self.max_tokens = vocab, style, max_tokens
        self.label_tokens = vocab.label_tokens(style.label_words)
        self.suffix_tokens = vocab.tokenize(style.suffix)
        self._words = [vocab.tokenize(w) for w in style.label_words]
        self._separator = vocab.tokenize(style.separator)
        self.n_truncated = 0

    def text(self, text: str) -> list[int]:
        tokens = self.vocab.tokenize(text)
        if len(tokens) > self.max_tokens:
            self.n_truncated += 1
            return tokens[-self.max_tokens:]
        return tokens

    def group(self, group: PromptGroup) -> TokenizedGroup:
        prefix = self.vocab.start()
        for text, label in group.demos:
            prefix += self.text(text) + self.suffix_tokens + self._words[int(label)] + self._separator
        return TokenizedGroup(prefix, [self.text(d) + self.suffix_tokens for d in group.docs],
                              [prompt_key(group.demos, d) for d in group.docs])


def check_context(model: ResolvedModel, n_ctx_train: int | None, prefix_tokens: int, doc_tokens: int, shots: int) -> None:
    """Refuse prompts longer than the model's context (when its header names one), naming the counts and the fix."""
    if n_ctx_train is not None and prefix_tokens + doc_tokens > n_ctx_train:
        raise W2SError(f"{model.name}: {shots} demonstrations take {prefix_tokens} tokens and the longest doc "
                       f"{doc_tokens}, {prefix_tokens + doc_tokens} in all, but the model's context holds "
                       f"{n_ctx_train}; use fewer --shots or a smaller --max-tokens")
