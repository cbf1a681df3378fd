"""Extraction and its cache, on a real GGUF model (SmolLM2-135M) and real review texts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from w2s_gguf.features.pipeline import Embedder, EmbeddingStore, embed_texts, plan_batches


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def embedder(smollm2):
    e = Embedder(smollm2, "last", max_tokens=128)
    yield e
    e.close()


def test_batched_vectors_equal_single_text_vectors(embedder, sentiment_texts):
    """Packed with others (llama.cpp's batches, as on a GPU), a text's vector moves in the last digits only."""
    texts = sentiment_texts[:24]
    tokens = [embedder.tokenize(t)[0] for t in texts]
    batches = plan_batches([len(t) for t in tokens], embedder.max_tokens)
    assert any(len(b) > 1 for b in batches), "the test needs real multi-text batches"
    batched = np.empty((len(texts), embedder.dim), np.float32)
    for batch in batches:
        batched[batch] = embedder.embed_batch([tokens[i] for i in batch])
    single = np.stack([embedder.embed_batch([t])[0] for t in tokens])
    assert cosine(batched, single).min() >= 0.999
    assert np.isfinite(batched).all() and np.abs(batched).sum() > 0


def test_a_cached_vector_does_not_depend_on_what_was_computed_with_it(smollm2, sentiment_texts, tmp_path):
    """The same texts through two cache histories (half first, then all; or all at once): the same rows,
    bit for bit, and each text's vector decoded alone (the CPU decodes one text at a time; packed, 29-46% of
    96 reviews moved, docs/performance.md). The reproduce check relies on it: a rerun recomputes in a fresh
    cache."""
    texts = sentiment_texts[:30]
    embed_texts(smollm2, texts[1::2], "last", 128, progress=False, cache_root=tmp_path / "a")
    piecewise = embed_texts(smollm2, texts, "last", 128, progress=False, cache_root=tmp_path / "a")
    at_once = embed_texts(smollm2, texts, "last", 128, progress=False, cache_root=tmp_path / "b")
    assert piecewise.n_computed == 15 and at_once.n_computed == 30
    np.testing.assert_array_equal(piecewise.features, at_once.features)
    assert at_once.settings.texts_per_batch == 1
    engine = Embedder(smollm2, "last", max_tokens=128, n_gpu_layers=0)
    try:
        alone = np.stack([engine.embed_batch([engine.tokenize(t)[0]])[0] for t in texts])
    finally:
        engine.close()
    np.testing.assert_array_equal(at_once.features, alone)


def test_last_and_mean_pooling_differ(smollm2, sentiment_texts, tmp_path):
    texts = sentiment_texts[:6]
    last = embed_texts(smollm2, texts, "last", 128, progress=False, cache_root=tmp_path).features
    mean = embed_texts(smollm2, texts, "mean", 128, progress=False, cache_root=tmp_path).features
    assert last.shape == mean.shape == (6, 576)
    assert cosine(last, mean).max() < 0.99


def test_long_texts_are_cut_from_the_left_and_counted(embedder):
    tail = " The ending is what matters here."
    text = "word " * 400 + tail
    tokens, cut = embedder.tokenize(text)
    assert cut and len(tokens) == embedder.max_tokens
    full = embedder.llm.tokenize(text.encode(), add_bos=True, special=False)
    if full[0] == embedder.llm.token_bos():  # a model that adds BOS keeps it in front
        assert tokens == full[:1] + full[-(embedder.max_tokens - 1):]
    else:  # SmolLM2's GGUF does not add BOS
        assert tokens == full[-embedder.max_tokens:]
    assert embedder.llm.detokenize(tokens[-8:]).decode().strip().endswith("matters here.")
    assert embedder.tokenize("short text") == (embedder.llm.tokenize(b"short text", add_bos=True, special=False), False)


def test_second_call_reads_the_cache_without_loading_the_model(smollm2, sentiment_texts, tmp_path, monkeypatch):
    texts = sentiment_texts[:20]
    first = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path, shard_docs=8)
    assert first.model_loaded and first.n_computed == 20 and first.shards_written == 3

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded although every text is cached")

    monkeypatch.setattr("w2s_gguf.features.pipeline.LayerEmbedder", no_load)
    second = embed_texts(smollm2, list(reversed(texts)), max_tokens=128, progress=False, cache_root=tmp_path)
    assert not second.model_loaded and second.n_computed == 0
    np.testing.assert_array_equal(second.features, first.features[::-1])


def test_a_corrupt_shard_is_detected_reported_and_recomputed(smollm2, sentiment_texts, tmp_path):
    texts = sentiment_texts[:12]
    first = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path, shard_docs=4)
    shard = sorted(first.store_dir.glob("shard-*.npy"))[1]
    n_in_shard = len(json.loads(shard.with_suffix(".json").read_text())["keys"])
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the vectors
    shard.write_bytes(bytes(data))
    again = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path, shard_docs=4)
    assert len(again.problems) == 1 and shard.name in again.problems[0]
    assert again.n_computed == n_in_shard < len(texts)  # only the damaged shard's texts
    np.testing.assert_array_equal(again.features, first.features)


def test_a_truncated_manifest_entry_is_detected(smollm2, sentiment_texts, tmp_path):
    texts = sentiment_texts[:8]
    first = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path, shard_docs=4)
    entry = sorted(first.store_dir.glob("shard-*.json"))[0]
    n_in_shard = len(json.loads(entry.read_text())["keys"])
    entry.write_text(entry.read_text()[:20])
    again = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path, shard_docs=4)
    assert len(again.problems) == 1 and again.n_computed == n_in_shard < len(texts)
    np.testing.assert_array_equal(again.features, first.features)


def test_store_settings_name_the_folder(smollm2, tmp_path):
    from w2s_gguf.features.pipeline import StoreSettings

    a = StoreSettings(smollm2.sha256, "last", 512, "0.3.36", False)
    b = StoreSettings(smollm2.sha256, "last", 256, "0.3.36", False)
    c = StoreSettings(smollm2.sha256, "last", 512, "0.3.37", False)
    alone = StoreSettings(smollm2.sha256, "last", 512, "0.3.36", False, texts_per_batch=1)
    assert len({a.key(), b.key(), c.key(), alone.key()}) == 4
    store = EmbeddingStore(a, tmp_path)
    assert json.loads((store.dir / "settings.json").read_text())["max_tokens"] == 512


def test_plan_batches_is_deterministic_and_respects_the_budget():
    lengths = [5, 40, 3, 40, 12, 7, 30, 3]
    batches = plan_batches(lengths, 50)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 50 for b in batches)
    assert batches == plan_batches(lengths, 50)
    order = [i for b in batches for i in b]
    assert [lengths[i] for i in order] == sorted(lengths)
    assert plan_batches(lengths, 50, max_texts=1) == [[i] for i in order]  # the CPU's plan: one text each


def test_an_embedder_keys_the_cache_by_its_own_settings(smollm2, sentiment_texts, tmp_path):
    """A mean-pooled embedder must store its vectors under the mean key, whatever the call's defaults say."""
    texts = sentiment_texts[:6]
    mean_embedder = Embedder(smollm2, "mean", max_tokens=128)
    try:
        via_embedder = embed_texts(smollm2, texts, cache_root=tmp_path, progress=False, embedder=mean_embedder)
    finally:
        mean_embedder.close()
    assert via_embedder.settings.pooling == "mean" and via_embedder.settings.max_tokens == 128
    mean = embed_texts(smollm2, texts, "mean", 128, progress=False, cache_root=tmp_path)
    assert mean.n_computed == 0 and np.array_equal(mean.features, via_embedder.features)
    last = embed_texts(smollm2, texts, "last", 128, progress=False, cache_root=tmp_path)
    assert last.n_computed == len(texts)  # nothing was stored under the last-pooling key


def test_progress_counts_tokens(smollm2, sentiment_texts, tmp_path, capsys):
    result = embed_texts(smollm2, sentiment_texts[:10], "last", 128, progress=True, cache_root=tmp_path)
    err = capsys.readouterr().err
    assert "tok" in err and f"({len(set(sentiment_texts[:10]))} docs)" in err and result.n_tokens > 0


@pytest.mark.parametrize("n_gpu_layers, op_offload", [(10, False), (0, False), (-1, True)])
def test_layers_left_on_the_cpu_run_there(smollm2, n_gpu_layers, op_offload):
    """With layers on the CPU (--n-gpu-layers 0 or a count) llama.cpp's op offload is off in the plain context,
    the layer engine's (it copies the plain one's settings) and the scoring engine's: with it, partial offload
    crashed in llama_decode on the Vulkan stand-in and --n-gpu-layers 0 ran the LM head on the device
    (scripts/vulkan_check.sh). All layers on the device (-1): llama.cpp's default."""
    from w2s_gguf.features.capture import LayerEmbedder
    from w2s_gguf.features.scoring import Scorer

    for engine in (Embedder(smollm2, "last", max_tokens=64, n_gpu_layers=n_gpu_layers),
                   LayerEmbedder(smollm2, "last", max_tokens=64, layers=["3", "last"], n_gpu_layers=n_gpu_layers)):
        try:
            assert bool(engine.llm.context_params.op_offload) is op_offload, type(engine).__name__
            assert engine.embed_batch([[1, 2, 3]]).shape[0] == 1
        finally:
            engine.close()
    scorer = Scorer(smollm2, n_ctx=64, n_batch=32, n_gpu_layers=n_gpu_layers)
    try:
        assert bool(scorer.llm.context_params.op_offload) is op_offload, "Scorer"
        assert np.isfinite(scorer.score_whole([[1, 2, 3]], (4, 5))).all()
    finally:
        scorer.close()


def test_a_layer_count_on_a_cpu_build_says_once_that_it_has_no_effect(smollm2, capsys, monkeypatch):
    """Both engines decide offload with engine.gpu_offload: on a build without a GPU backend a count of layers
    runs on the CPU, and one line says so, once for the process."""
    import llama_cpp

    from w2s_gguf.features import engine as engine_module
    from w2s_gguf.features.scoring import Scorer

    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama-cpp-python build has a GPU backend")
    monkeypatch.setattr(engine_module, "_warned", set())
    embedder, scorer = Embedder(smollm2, "last", max_tokens=64, n_gpu_layers=5), Scorer(smollm2, 64, 32, n_gpu_layers=5)
    try:
        assert embedder.gpu_offload is False and scorer.gpu_offload is False
    finally:
        embedder.close()
        scorer.close()
    err = capsys.readouterr().err
    assert err.count("has no GPU backend, so --n-gpu-layers has no effect") == 1, err
