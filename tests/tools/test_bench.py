"""`w2s-gguf bench` on the real SmolLM2: what it times, not how fast this machine is.

The bench's clock is driven by hand here: each decode advances it by a fixed cost per token (and each
store write by a fixed cost), so the ratio it reports must be exactly the one those costs imply. The
decodes themselves are real.
"""

from __future__ import annotations

import json

import pytest

from conftest import invoke_cli


class Costs:
    """A clock that only moves when a spied call runs: seconds per token for each side, per store write."""

    def __init__(self, monkeypatch, yardstick: float, engine: float, write: float = 0.0):
        from w2s_gguf.features.cache import EmbeddingStore
        from w2s_gguf.features.capture import LayerEmbedder
        from w2s_gguf.features.engine import Embedder
        from w2s_gguf.tools import bench

        self.now = 0.0
        self.decoded = {"yardstick": [], "engine": []}  # token lists, in decode order
        self.engines: dict[str, set] = {"yardstick": set(), "engine": set()}
        self.writes = []
        monkeypatch.setattr(bench, "clock", lambda: self.now)
        for side, cls, cost in (("yardstick", Embedder, yardstick), ("engine", LayerEmbedder, engine)):
            monkeypatch.setattr(cls, "embed_batch", self._spy(side, cls.embed_batch, cost))
        real_add = EmbeddingStore.add_shard

        def add_shard(store, keys, vectors, stats):
            self.writes.append((store.settings.layer, len(keys)))
            self.now += write
            return real_add(store, keys, vectors, stats)

        monkeypatch.setattr(EmbeddingStore, "add_shard", add_shard)

    def _spy(self, side, real, cost):
        def embed_batch(engine, token_lists):
            self.decoded[side].append([tuple(t) for t in token_lists])
            self.engines[side].add(type(engine).__name__)
            self.now += cost * sum(map(len, token_lists))
            return real(engine, token_lists)
        return embed_batch


def bench_json(monkeypatch, capsys, *args) -> dict:
    code, out, err = invoke_cli(monkeypatch, capsys, "bench", "--model", "smollm2-135m", "--n-docs", "24",
                                "--max-tokens", "64", "--json", *args)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("yardstick, engine, ratio", [(3.0, 1.0, 3.0), (1.0, 2.0, 0.5)])
def test_the_ratio_is_the_pipeline_against_llama_cpp_on_the_same_batches(smollm2, monkeypatch, capsys,
                                                                         yardstick, engine, ratio):
    costs = Costs(monkeypatch, yardstick, engine)
    r = bench_json(monkeypatch, capsys, "--rounds", "2")
    [row] = r["requests"]
    assert row["request"] == "last" and row["layers"] == ["last"]
    # The yardstick is llama.cpp's embedding mode (the plain Embedder); the pipeline runs the extraction engine.
    assert costs.engines == {"yardstick": {"Embedder"}, "engine": {"LayerEmbedder"}}
    # Both decode the same batches, tokens and docs: every doc once per round each (after one warm-up call);
    # on the CPU the pipeline's batches hold one text each.
    yard, eng = costs.decoded["yardstick"][1:], costs.decoded["engine"][1:]
    assert len(eng) == 2 * row["batches"] and all(len(batch) == 1 for batch in eng)
    docs = sorted(t for batch in eng for t in batch)
    assert len(docs) == 2 * 24 and docs[::2] == docs[1::2]  # each of the 24 docs in both rounds
    # The yardstick also decodes the same docs packed as llama.cpp packs them, once per round.
    interleaved = sorted(yard)
    for batch in eng:
        interleaved.remove(batch)
    assert len(yard) - len(eng) == 2 * row["packed_batches"] < len(eng)
    assert sorted(t for batch in interleaved for t in batch) == docs
    n_tokens = sum(len(t) for batch in eng for t in batch)
    assert row["pipeline_tokens"] == row["engine_tokens"] == row["yardstick_tokens"] == n_tokens == 2 * r["n_tokens"]
    # A slower side shows up in both ratios, and only the costs set here moved the clock.
    assert row["ratio"] == ratio and row["median_batch_ratio"] == ratio and row["ratio_vs_packed"] == ratio
    assert row["graph"] == "stopped" and row["stopped_decodes"] == row["decodes"] - 1


def test_the_pipelines_time_includes_its_store_writes(smollm2, monkeypatch, capsys):
    costs = Costs(monkeypatch, yardstick=2.0, engine=1.0, write=1000.0)
    r = bench_json(monkeypatch, capsys, "--layers", "middle,-1", "--rounds", "1")
    [row] = r["requests"]
    assert row["layers"] == ["14", "29"]
    # One shard of the 24 docs per captured layer, and nothing written for the yardstick.
    assert sorted(costs.writes) == [("14", 24), ("29", 24)]
    n = row["pipeline_tokens"]
    assert row["ratio"] == round((n / (n * 1.0 + 2 * 1000.0)) / (n / (n * 2.0)), 3)
    assert row["median_batch_ratio"] == 2.0  # per batch: the decodes alone


def test_each_layer_request_is_a_row(smollm2, monkeypatch, capsys):
    Costs(monkeypatch, yardstick=1.0, engine=1.0)
    r = bench_json(monkeypatch, capsys, "--layers", "last", "--layers", "middle", "--rounds", "1")
    assert [row["request"] for row in r["requests"]] == ["last", "middle"]
    assert [row["layers"] for row in r["requests"]] == [["last"], ["14"]]
    assert r["features_mb"] == round(24 * 576 * 4 / 1e6, 2)  # the first request's features: (24, 576) float32


def test_bench_refuses_a_layer_beyond_the_depth_in_one_line(smollm2, monkeypatch, capsys):
    code, out, err = invoke_cli(monkeypatch, capsys, "bench", "--model", "smollm2-135m", "--n-docs", "24",
                                "--layers", "last", "--layers", "40")
    assert code == 2 and "smollm2-135m has 30 blocks (0..29)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_warm_run_times_reruns_that_compute_nothing(smollm2, gemma3, test_home, tmp_path, monkeypatch):
    import shutil

    from w2s_gguf.tools.bench import format_warm_runs, warm_run_seconds

    home = tmp_path / "home"  # the test cache's models and data, and an embedding cache of its own
    home.mkdir()
    for name in ("models", "data"):
        (home / name).symlink_to(test_home / name)
    for index in test_home.glob("*.json"):  # remembered hashes: no model file is hashed again
        shutil.copy(index, home / index.name)
    monkeypatch.setenv("W2S_GGUF_HOME", str(home))
    small = ["--n-train", "60", "--n-test", "40", "--seeds", "2", "--max-tokens", "64"]
    run = warm_run_seconds(extra=small, repeats=2)
    # The first run filled the cache; each timed rerun (a fresh process) embedded nothing.
    assert run["filled"] == {"smollm2-135m": 100, "gemma3-270m": 100}
    assert run["computed"] == [{"smollm2-135m": 0, "gemma3-270m": 0}] * 2 and len(run["seconds"]) == 2
    text = format_warm_runs({"default run": {"seconds": [1.25, 1.75], "median": 1.5}})
    assert text.startswith("default run") and "median 1.50 s" in text and "imports included" in text


def test_a_few_docs_whose_halves_hold_one_label_still_report_the_extraction(smollm2, monkeypatch, capsys):
    """8 sentiment docs: one seed's half holds one label, so no head can be trained; the extraction figures
    (which took the whole run) are printed all the same."""
    Costs(monkeypatch, yardstick=2.0, engine=1.0)
    code, out, err = invoke_cli(monkeypatch, capsys, "bench", "--model", "smollm2-135m", "--n-docs", "8",
                                "--max-tokens", "64", "--rounds", "1", "--json")
    assert code == 0, err
    r = json.loads(out)
    assert r["head_training_seconds"].startswith("not timed (labels are all ")
    assert r["requests"][0]["ratio"] == 2.0 and r["n_docs"] == 8
