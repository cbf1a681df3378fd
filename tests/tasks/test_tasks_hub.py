"""Hub-backed tasks: exact text formats on local fixture files, and the hub code path with a fake hub."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from w2s_gguf.errors import W2SError
from w2s_gguf.tasks import TaskOptions, get_task
from w2s_gguf.tasks import _common

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parents[1] / "fixtures"


pytestmark = pytest.mark.usefixtures("offline_hub")  # tests/conftest.py


def load(task, path=None, **extra):
    return get_task(task).load(TaskOptions(data=str(path) if path else None, extra=extra))


def jsonl(name):
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def all_docs(got):
    assert not {d.group for d in got.train} & {d.group for d in got.test}
    return got.train + got.test


def test_amazon_polarity_text_is_title_space_content(tmp_path):
    rows = jsonl("amazon_polarity.jsonl")
    got = load("amazon_polarity", FIXTURES / "amazon_polarity.jsonl")
    expected = {(f"{r['title']} {r['content']}", r["label"]) for r in rows}
    assert {(d.text, d.label) for d in all_docs(got)} == expected
    assert got.source.startswith("file:") and got.skipped == {}
    # The same rows as parquet and CSV give the same docs.
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    with open(tmp_path / "a.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["label", "title", "content"])
        writer.writeheader()
        writer.writerows(rows)
    for other in ("a.parquet", "a.csv"):
        again = load("amazon_polarity", tmp_path / other)
        assert (again.train, again.test) == (got.train, got.test)


def test_anthropic_hh_pairwise_text():
    rows = jsonl("anthropic_hh.jsonl")
    got = load("anthropic_hh", FIXTURES / "anthropic_hh.jsonl")
    assert got.skipped == {"chosen and rejected replies are identical": 1, "chosen and rejected differ before the last reply": 1}
    docs = all_docs(got)
    assert len(docs) == 7
    expected = set()
    for row in rows[:7]:
        cut = row["chosen"].rfind("\n\nAssistant:")
        conversation = row["chosen"][:cut].strip()
        good = row["chosen"][cut + len("\n\nAssistant:"):].strip()
        bad = row["rejected"][cut + len("\n\nAssistant:"):].strip()
        for label, (first, second) in ((0, (good, bad)), (1, (bad, good))):
            expected.add((f"{conversation}\n\nReply A: {first}\n\nReply B: {second}\n\nIs Reply B better than Reply A?", label))
    assert {(d.text, d.label) for d in docs} <= expected
    assert docs[0].text.startswith("Human: ")
    # The two-turn conversation keeps its earlier assistant turn in the shared part.
    assert any("Assistant: Hello! How can I help?\n\nHuman: Tell me a fun fact.\n\nReply A: " in d.text for d in docs)
    assert {d.label for d in docs} == {0, 1}


def test_anthropic_hh_single_text_is_one_transcript_as_stored():
    rows = jsonl("anthropic_hh.jsonl")
    got = load("anthropic_hh_single", FIXTURES / "anthropic_hh.jsonl")
    assert got.skipped == {"chosen and rejected are identical": 1}
    docs = all_docs(got)
    chosen, rejected = {r["chosen"] for r in rows}, {r["rejected"] for r in rows}
    assert len(docs) == 8
    for doc in docs:
        assert doc.text.startswith("\n\nHuman: ")
        assert doc.text in (chosen if doc.label else rejected)
    assert {d.label for d in docs} == {0, 1}


def test_cosmos_qa_text_and_none_of_the_above():
    with open(FIXTURES / "cosmos_qa.csv", newline="") as fh:
        rows = {r["question"]: r for r in csv.DictReader(fh)}
    got = load("cosmos_qa", FIXTURES / "cosmos_qa.csv")
    docs = all_docs(got)
    assert len(docs) == 8
    for doc in docs:
        context, question, answer = doc.text.split("\n")
        row = rows[question.removeprefix("Question: ")]
        assert context == f"Context: {row['context']}"
        answer = answer.removeprefix("Answer: ")
        true_answer = row[f"answer{row['label']}"]
        if true_answer == "None of the above choices .":
            assert doc.label == 0 and answer != true_answer
        assert (answer == true_answer) == (doc.label == 1)
        assert answer in [row[f"answer{i}"] for i in range(4)]
    assert {d.label for d in docs} == {0, 1}


@pytest.mark.parametrize("task", ["amazon_polarity", "anthropic_hh", "anthropic_hh_single", "cosmos_qa"])
def test_unreachable_hub_without_data_fails_at_once_and_says_what_to_do(task, monkeypatch):
    import socket

    import datasets

    def never(*args, **kwargs):
        raise AssertionError("the hub was asked although it is unreachable")

    # At once: neither datasets (which retries for ~25 s) nor any connection is tried.
    monkeypatch.setattr(datasets, "load_dataset", never)
    monkeypatch.setattr(socket, "create_connection", never)
    assert get_task(task).available_offline() is False
    with pytest.raises(W2SError, match="unreachable.*--data") as info:
        load(task)
    assert "\n" not in str(info.value)


def test_local_file_problems(tmp_path):
    with pytest.raises(W2SError, match="lacks column.*content.*found: label, title"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"label": 1, "title": "x"}\n')
        load("amazon_polarity", bad)
    with pytest.raises(W2SError, match="not found"):
        load("cosmos_qa", tmp_path / "missing.csv")
    with pytest.raises(W2SError, match="unknown type"):
        (tmp_path / "x.txt").write_text("hi")
        load("anthropic_hh", tmp_path / "x.txt")
    with pytest.raises(W2SError, match="empty"):
        (tmp_path / "e.jsonl").write_text("")
        load("anthropic_hh", tmp_path / "e.jsonl")
    with pytest.raises(W2SError, match="line 1 is not valid JSON"):
        (tmp_path / "broken.jsonl").write_text("{not json\n")
        load("anthropic_hh", tmp_path / "broken.jsonl")


# ---------------------------------------------------------------- the hub path, with a fake hub


@pytest.fixture
def fake_hub(monkeypatch):
    """Answer `datasets.load_dataset(name, split=..., revision=...)` from given rows; record the calls."""
    import datasets

    calls = []
    tables: dict[str, list[dict]] = {}
    real_load_dataset = datasets.load_dataset

    def fake_load_dataset(name, split=None, revision=None, **kwargs):
        if name in ("json", "csv", "parquet"):  # a local file, not the hub
            return real_load_dataset(name, split=split, revision=revision, **kwargs)
        calls.append((name, split, revision))
        if split not in tables:
            raise ConnectionError("Couldn't reach the Hub")
        return datasets.Dataset.from_list(tables[split])

    monkeypatch.setattr(_common, "hub_reachable", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    return calls, tables


@pytest.mark.parametrize(
    "task, fixture, name, splits, revision",
    [
        ("amazon_polarity", "amazon_polarity.jsonl", "fancyzhx/amazon_polarity", ("train", "test"), None),
        ("anthropic_hh", "anthropic_hh.jsonl", "Anthropic/hh-rlhf", ("train", "test"), None),
        ("anthropic_hh_single", "anthropic_hh.jsonl", "Anthropic/hh-rlhf", ("train", "test"), None),
        ("cosmos_qa", "cosmos_qa.csv", "allenai/cosmos_qa", ("train", "validation"), "refs/convert/parquet"),
    ],
)
def test_hub_path_uses_the_datasets_own_splits(fake_hub, task, fixture, name, splits, revision):
    calls, tables = fake_hub
    path = FIXTURES / fixture
    if path.suffix == ".csv":
        with open(path, newline="") as fh:
            rows = [{**r, "label": int(r["label"])} for r in csv.DictReader(fh)]
    else:
        rows = jsonl(fixture)
    tables[splits[0]], tables[splits[1]] = rows[:5], rows[4:]  # row 4 is in both splits
    got = get_task(task).load(TaskOptions())
    assert calls == [(name, splits[0], revision), (name, splits[1], revision)]
    assert got.source.startswith(f"hub:{name} ({splits[0]} as train, {splits[1]} as test")
    assert not {d.group for d in got.train} & {d.group for d in got.test}
    assert got.skipped.get("train doc whose group is also in test", 0) >= 1
    # The same formatting code as for local files.
    local = all_docs(load(task, path))
    assert set(got.train + got.test) <= set(local)


def test_hub_path_caps_rows_with_a_fixed_sample(fake_hub):
    calls, tables = fake_hub
    rows = jsonl("amazon_polarity.jsonl")
    tables["train"], tables["test"] = rows[:6], rows[6:]
    got = load("amazon_polarity", max_items=3)
    assert len(got.train) == 3 and len(got.test) == 2
    assert "fixed sample of 3 of 6 rows" in got.source
    assert load("amazon_polarity", max_items=3).train == got.train


@pytest.mark.parametrize("task, name", [("sciq", "allenai/sciq"), ("boolq", "google/boolq")])
def test_packaged_tasks_use_the_hub_when_reachable(fake_hub, task, name):
    calls, tables = fake_hub
    if task == "sciq":
        row = {"question": "What is H2O?", "correct_answer": "water", "distractor1": "salt", "distractor2": "air", "distractor3": "fire", "support": ""}
        tables["train"] = [row, {**row, "question": "What is NaCl?", "correct_answer": "salt", "distractor1": "water"}]
    else:
        row = {"question": "is water wet", "answer": True, "passage": "Water is a liquid."}
        tables["train"] = [row, {"question": "is ice hot", "answer": False, "passage": "Ice is frozen water."}]
    tables["validation"] = tables["train"][:1]
    got = get_task(task).load(TaskOptions())
    assert [c[:2] for c in calls] == [(name, "train"), (name, "validation")]
    assert len(got.train) == 1 and len(got.test) == 1 and got.source.startswith(f"hub:{name}")


def test_hub_failure_is_one_line_with_a_fix(fake_hub):
    with pytest.raises(W2SError, match=r"could not load allenai/sciq \(train\).*HF_HUB_OFFLINE=1"):
        get_task("sciq").load(TaskOptions())
    with pytest.raises(W2SError, match="could not load fancyzhx/amazon_polarity.*--data"):
        get_task("amazon_polarity").load(TaskOptions())
