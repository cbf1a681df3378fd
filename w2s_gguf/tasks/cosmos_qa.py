"""Cosmos QA: is this the answer to a question about a story? (OAI format; hub or --data)

Text: `Context: {context}\nQuestion: {question}\nAnswer: {answer}`. The
answer is the true one with probability 0.5 (label 1), else one of the
other three options (label 0). As in OAI's code, when the true answer is
"None of the above choices ." the doc always shows another option and
its label is 0. The coin and the option come from an rng seeded by the
question's id. Group = hash of the context (several questions share one).

Source: the hub's `allenai/cosmos_qa`, read from its parquet conversion
(revision refs/convert/parquet: the main branch holds a loading script,
which `datasets` >= 4 refuses); train as train, validation as test (the
test split has no labels). Offline: `--data` with a JSONL/CSV/parquet file
with the columns id, context, question, answer0..answer3, label (int 0-3).
"""

from __future__ import annotations

from typing import Any

from . import Doc, PromptingForm, register
from ._common import TableTask, item_rng, short_id, text_of

NONE_OF_THE_ABOVE = "None of the above choices ."


@register
class CosmosQA(TableTask):
    name = "cosmos_qa"
    description = "commonsense reading comprehension: is the shown answer the right one? (true answer or another, 50/50)"
    source = "hub allenai/cosmos_qa (parquet conversion), or --data with columns id,context,question,answer0..3,label"
    license = "CC BY 4.0"
    size = "28247 (hub)"
    prompt_version = "1"
    prompting = PromptingForm("\nIs this answer correct? Yes or no:", (" no", " yes"))

    hub_name = "allenai/cosmos_qa"
    hub_revision = "refs/convert/parquet"
    hub_splits = ("train", "validation")
    columns = ("id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label")

    def make_doc(self, row: dict[str, Any]) -> Doc | str:
        try:
            correct = int(row["label"])
        except (TypeError, ValueError):
            return "label is not 0-3"
        if correct not in (0, 1, 2, 3):
            return "label is not 0-3"  # the hub's test split has -1 (hidden answers)
        answers = [text_of(row[f"answer{i}"]) for i in range(4)]
        true_answer = answers[correct]
        rng = item_rng("cosmos_qa", text_of(row["id"]), text_of(row["question"]))
        coin = int(rng.random() < 0.5)
        label = 0 if NONE_OF_THE_ABOVE in true_answer else coin
        others = [a for a in answers if a != true_answer]
        if not label and not others:
            return "no option other than the true answer"
        answer = true_answer if label else others[rng.integers(len(others))]
        context = text_of(row["context"])
        text = f"Context: {context}\nQuestion: {text_of(row['question'])}\nAnswer: {answer}"
        return Doc(text=text, label=label, group=short_id(context))
