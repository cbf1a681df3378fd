"""Amazon polarity: is this product review positive? (OAI format; hub or --data)

Text: `{title} {content}`; label = the dataset's label (1 = positive).
Group = hash of the text, so a review posted twice stays on one side.

Source: the hub's `fancyzhx/amazon_polarity` (train as train, test as
test; a fixed sample of 100000 rows per split unless
options.extra["max_items"] says otherwise). Offline: `--data` with a
JSONL/CSV/parquet file with the columns label (int), title, content.
"""

from __future__ import annotations

from typing import Any

from . import Doc, PromptingForm, register
from ._common import TableTask, as_label, short_id, text_of


@register
class AmazonPolarity(TableTask):
    name = "amazon_polarity"
    description = "Amazon product reviews: positive (1) or negative (0)"
    source = "hub fancyzhx/amazon_polarity, or --data with columns label,title,content"
    license = "Apache 2.0"
    size = "4M (hub; 100k/split)"
    prompt_version = "1"
    prompting = PromptingForm("\nIs this product review positive? Answer:", (" no", " yes"))

    hub_name = "fancyzhx/amazon_polarity"
    columns = ("label", "title", "content")

    def make_doc(self, row: dict[str, Any]) -> Doc | str:
        label = as_label(row["label"])
        if label is None:
            return "label is not 0/1"
        text = f"{text_of(row['title'])} {text_of(row['content'])}"
        if not text.strip():
            return "empty title and content"
        return Doc(text=text, label=label, group=short_id(text))
