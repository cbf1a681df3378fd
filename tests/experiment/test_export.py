"""`w2s-gguf embed`: row i of the export is item i of the user's file."""

from __future__ import annotations

import json

import numpy as np

from conftest import invoke_cli


def test_rows_follow_the_users_file_order(smollm2, sentiment_texts, tmp_path, monkeypatch, capsys):
    texts = sentiment_texts[:24]
    # Split values interleaved, so train-then-test order would differ from the file's order.
    rows = [{"text": t, "label": i % 2, "split": "test" if i % 3 == 0 else "train"} for i, t in enumerate(texts)]
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "features.npy"
    code, stdout, stderr = invoke_cli(monkeypatch, capsys, "embed", "--model", str(smollm2.path), "--data", str(data),
                                      "--max-tokens", "128", "--no-progress", "--out", str(out))
    assert code == 0, stderr
    features = np.load(out)
    sidecar = [json.loads(line) for line in out.with_suffix(".docs.jsonl").read_text().splitlines()]
    assert [r["text"] for r in sidecar] == texts and [r["row"] for r in sidecar] == list(range(1, 25))
    assert [r["split"] for r in sidecar] == [r["split"] for r in rows]
    # Row i is line i's own features: the same vector an export of that one line gives.
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": texts[3], "label": 1, "split": "train"}) + "\n"
                   + json.dumps({"text": texts[4], "label": 0, "split": "test"}) + "\n")
    code, _, stderr = invoke_cli(monkeypatch, capsys, "embed", "--model", str(smollm2.path), "--data", str(one),
                                 "--max-tokens", "128", "--no-progress", "--out", str(tmp_path / "one.npy"))
    assert code == 0, stderr
    np.testing.assert_array_equal(np.load(tmp_path / "one.npy"), features[3:5])
