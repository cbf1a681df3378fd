"""Layer specs, and block outputs captured in one forward pass on real GGUF models (SmolLM2, Gemma 3)."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.features.pipeline import Embedder, plan_batches
from w2s_gguf.errors import W2SError
from w2s_gguf.features.capture import LayerEmbedder
from w2s_gguf.features.layers import LAST, layer_depths, parse_layers, resolve_layers


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


# ---------------------------------------------------------------- specs (logic only)

def test_specs_resolve_to_blocks_in_order_without_duplicates():
    assert parse_layers(" middle, -1,0.5 ,last,") == ["middle", "-1", "0.5", "last"]
    assert resolve_layers(["middle"], 30, "m") == [14]  # EleutherAI's hidden state (L+1)//2 = 15
    assert resolve_layers(["middle"], 18, "m") == [8]
    assert resolve_layers(["0", "-1", "29", "last"], 30, "m") == [0, 29, LAST]  # -1 and 29 are one block
    assert resolve_layers(["0.5", "1.0", "1", "0.01"], 30, "m") == [14, 29, 1, 0]
    assert resolve_layers(["0.25"], 18, "m") == [4]  # hidden state 4.5 rounds up to 5
    assert resolve_layers(["last", "all"], 3, "m") == [LAST, 0, 1, 2]
    assert resolve_layers(["all"], 3, "m") == [0, 1, 2, LAST]


@pytest.mark.parametrize("spec, message", [
    ("40", "gemma3-270m has 18 blocks (0..17); --layer 40 is out of range"),
    ("-19", "gemma3-270m has 18 blocks (0..17); --layer -19 is out of range"),
    ("1.5", "gemma3-270m has 18 blocks (0..17); --layer 1.5 is not a fraction in (0, 1]"),
    ("0.0", "--layer 0.0 is not a fraction in (0, 1]"),
    ("nan", "--layer nan is not a fraction in (0, 1]"),
    ("first", "--layer 'first' is not a layer; use last, middle, all, a block number (0..17"),
])
def test_bad_specs_name_the_limit_in_one_line(spec, message):
    with pytest.raises(W2SError) as exc:
        resolve_layers(parse_layers(spec), 18, "gemma3-270m")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(W2SError, match="names no layer"):
        parse_layers(" , ")


def test_depths_for_plots():
    depths = layer_depths([0, 14, 29, LAST], 30)
    assert [d["depth"] for d in depths] == [1 / 30, 0.5, 1.0, 1.0]
    assert [d["final_norm"] for d in depths] == [False, False, False, True]
    assert depths[3]["label"] == "last (final norm)" and depths[1]["label"] == "block 14"


# ---------------------------------------------------------------- engine on real models

def token_batches(engine, texts):
    tokens = [engine.tokenize(t)[0] for t in texts]
    batches = plan_batches([len(t) for t in tokens], engine.batch_tokens)
    assert any(len(b) > 1 for b in batches), "the test needs real multi-text batches"
    return tokens, batches


def embed_all(engine, tokens, batches):
    first = engine.embed_batch([tokens[i] for i in batches[0]])
    out = np.empty((len(tokens), *first.shape[1:]), np.float32)
    out[batches[0]] = first
    for batch in batches[1:]:
        out[batch] = engine.embed_batch([tokens[i] for i in batch])
    return out


def rms_normed(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True))


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def model(request):
    return request.getfixturevalue(request.param)


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_last_equals_embedder_bit_for_bit_while_capturing_every_block(model, pooling, sentiment_texts):
    texts = sentiment_texts[:8]
    plain = Embedder(model, pooling, max_tokens=128)
    capture = LayerEmbedder(model, pooling, max_tokens=128, layers=["all"])
    try:
        tokens, batches = token_batches(plain, texts)
        expected = embed_all(plain, tokens, batches)
        got = embed_all(capture, tokens, batches)
    finally:
        plain.close()
        capture.close()
    assert capture.layers[-1] == LAST and got.shape == (8, capture.n_layer + 1, plain.dim)
    np.testing.assert_array_equal(got[:, -1], expected)


@pytest.mark.slow
def test_every_block_is_captured_in_one_decode(model, sentiment_texts, monkeypatch):
    n_layer = {"smollm2-135m": 30, "gemma3-270m": 18}[model.name]
    engine = LayerEmbedder(model, "last", max_tokens=128, layers=["all"])
    try:
        decodes = []
        real_decode = engine.llm._ctx.decode
        monkeypatch.setattr(engine.llm._ctx, "decode", lambda batch: decodes.append(1) or real_decode(batch))
        tokens = [engine.tokenize(t)[0] for t in sentiment_texts[:3]]
        out = engine.embed_batch(tokens)
    finally:
        engine.close()
    assert engine.n_layer == n_layer and engine.layers == [*range(n_layer), LAST]
    assert len(decodes) == 1 and out.shape == (3, n_layer + 1, engine.dim) and np.isfinite(out).all()
    # Blocks differ from each other, and deeper blocks drift away from the first one.
    assert (cosine(out[:, :-2], out[:, 1:-1]) < 0.99999).all()
    # "last" is the final RMS norm of block L-1 times one weight vector w, the same for every
    # sequence: w read off sequence 0 must predict the others (a wrong tensor or row would not).
    normed = rms_normed(out[:, n_layer - 1])
    weight = out[0, -1] / normed[0]
    assert cosine(normed[1:] * weight, out[1:, -1]).min() > 0.999


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_batched_blocks_equal_one_sequence_at_a_time(model, pooling, sentiment_texts):
    engine = LayerEmbedder(model, pooling, max_tokens=128, layers=["0", "middle", "-1", "last"])
    try:
        tokens, batches = token_batches(engine, sentiment_texts[:6])
        batched = embed_all(engine, tokens, batches)
        single = np.concatenate([engine.embed_batch([t]) for t in tokens])
    finally:
        engine.close()
    assert batched.shape == (6, 4, engine.dim)
    assert cosine(batched[:, :3], single[:, :3]).min() >= 0.999
    # "last" is Embedder's own path (bit for bit, above); Gemma 3's final norm amplifies the
    # batch-composition noise of the last block (0.9995) to 0.9984 there.
    assert cosine(batched[:, 3], single[:, 3]).min() >= 0.995


@pytest.mark.slow
def test_mean_pooling_is_the_mean_over_each_sequence(smollm2, sentiment_texts):
    tokens = None
    vectors = {}
    for pooling in ("last", "mean"):
        engine = LayerEmbedder(smollm2, pooling, max_tokens=128, layers=["middle"])
        try:
            tokens = tokens or [engine.tokenize(t)[0][:12] for t in sentiment_texts[:4]]
            vectors[pooling] = engine.embed_batch(tokens)[:, 0]
            # Per-token rows of sequence 0: its prefixes, each pooled with LAST.
            if pooling == "last":
                prefix_rows = np.concatenate([engine.embed_batch([tokens[0][:n]]) for n in range(1, len(tokens[0]) + 1)])
        finally:
            engine.close()
    assert cosine(vectors["last"], vectors["mean"]).max() < 0.99
    # Causal attention: token n's state does not depend on later tokens, so the mean of
    # the prefixes' last rows is the mean-pooled vector of the whole sequence.
    assert cosine(prefix_rows[:, 0].mean(0), vectors["mean"][0]) > 0.999


@pytest.mark.slow
def test_a_graph_without_the_block_names_gives_one_line_error(smollm2, sentiment_texts):
    engine = LayerEmbedder(smollm2, "last", max_tokens=128, layers=["3"])
    try:
        # As if the architecture named its block outputs differently from llama.cpp's l_out-N.
        engine._slots = {b"block_out-3": 0}
        with pytest.raises(W2SError) as exc:
            engine.embed_batch([engine.tokenize(sentiment_texts[0])[0]])
    finally:
        engine.close()
    assert "smollm2-135m (architecture 'llama')" in str(exc.value) and "l_out-3" in str(exc.value)
    with pytest.raises(W2SError, match="smollm2-135m has 30 blocks"):
        LayerEmbedder(smollm2, "last", max_tokens=128, layers=["30"])


# ---------------------------------------------------------------- through the cache, the experiment and the CLI

def test_each_layer_is_cached_once_and_served_without_loading_the_model(smollm2, sentiment_texts, tmp_path):
    from w2s_gguf.features.pipeline import embed_layers, embed_texts

    texts = sentiment_texts[:30]
    plain = embed_texts(smollm2, texts, max_tokens=128, progress=False, cache_root=tmp_path / "plain")
    both = embed_layers(smollm2, texts, [14, LAST], max_tokens=128, progress=False, cache_root=tmp_path / "layers")
    assert both[14].n_computed == len(texts) and both[14].store_dir != both[LAST].store_dir
    # "last" through the capture engine is today's feature, bit for bit.
    np.testing.assert_array_equal(both[LAST].features, plain.features)
    again = embed_layers(smollm2, texts, [14], max_tokens=128, progress=False, cache_root=tmp_path / "layers")
    assert not again[14].model_loaded and again[14].n_computed == 0
    np.testing.assert_array_equal(again[14].features, both[14].features)
    f16 = embed_layers(smollm2, texts, [14], max_tokens=128, progress=False, cache_root=tmp_path / "layers",
                       store_dtype="float16")[14]
    assert f16.features.dtype == np.float32 and np.abs(f16.features - both[14].features).max() < 1e-2 * np.abs(
        both[14].features).max()


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_gpu_sized_batches_fit_the_engine(smollm2, sentiment_texts, tmp_path, monkeypatch, pooling):
    # A GPU build plans batches of engine.GPU_BATCH_TOKENS (2048) tokens, far above max_tokens. Run that plan on
    # this CPU build (llama.cpp ignores n_gpu_layers without a GPU): the scripts/vulkan_check.sh run found
    # embed_batch refusing such batches ("exceeds the token budget") and mean pooling's row buffer too small.
    import llama_cpp

    from w2s_gguf.features.pipeline import embed_layers

    texts = sentiment_texts[:40]  # about 1000 tokens: one GPU batch
    monkeypatch.setattr(llama_cpp, "llama_supports_gpu_offload", lambda: True)
    gpu = embed_layers(smollm2, texts, [3, LAST], pooling, max_tokens=128, n_gpu_layers=-1,
                       progress=False, cache_root=tmp_path / "gpu")
    monkeypatch.undo()
    cpu = embed_layers(smollm2, texts, [3, LAST], pooling, max_tokens=128, n_gpu_layers=0,
                       progress=False, cache_root=tmp_path / "cpu")
    assert gpu[LAST].settings.batch_tokens == 2048 and cpu[LAST].settings.batch_tokens == 128
    assert gpu[LAST].n_tokens > 4 * 128  # the batch is far above max_tokens
    for layer in (3, LAST):  # batch composition moves features slightly, never more
        assert cosine(gpu[layer].features, cpu[layer].features).min() > 0.999


def test_cli_layers_bad_input_is_one_line(smollm2, gemma3, tmp_path, monkeypatch, capsys):
    from conftest import invoke_cli

    base = ["run", "--n-train", "40", "--n-test", "20", "--seeds", "1", "--no-progress", "--out", str(tmp_path / "o")]
    code, _, err = invoke_cli(monkeypatch, capsys, *base, "--layer", "40")
    assert code == 2 and err.strip().count("\n") == 0
    assert "gemma3-270m has 18 blocks (0..17)" in err or "smollm2-135m has 30 blocks (0..29)" in err
    code, _, err = invoke_cli(monkeypatch, capsys, *base, "--layers", "0.5,deep")
    assert code == 2 and "--layer has 'deep', which is not a layer" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "o" / "results.json").exists()


def test_all_layers_refused_when_the_disk_cannot_hold_them(smollm2, gemma3, tmp_path, monkeypatch, capsys):
    import shutil
    from collections import namedtuple

    from conftest import invoke_cli

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**5, 10**5))
    code, _, err = invoke_cli(monkeypatch, capsys, "run", "--layers", "all", "--n-train", "40", "--n-test", "20",
                              "--seeds", "1", "--no-progress", "--out", str(tmp_path / "o"))
    assert code == 2 and "--layer would store" in err and "--store-dtype float16" in err


def test_a_layer_sweep_writes_per_layer_results_and_the_layers_plot(smollm2, gemma3, test_home, tmp_path):
    from test_run_cli import w2s

    from w2s_gguf.results import load_results

    proc = w2s("sweep", "--models", "smollm2-135m,gemma3-270m", "--layers", "0.5,last", "--n-train", "120",
               "--n-test", "80", "--seeds", "2", "--max-tokens", "128", "--losses", "xent", "--no-progress",
               "--out", str(tmp_path), home=test_home)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = load_results(tmp_path)
    assert [(g.model, g.layer) for g in results.ground_truth] == [
        ("smollm2-135m", "0.5"), ("gemma3-270m", "0.5"), ("smollm2-135m", "last"), ("gemma3-270m", "last")]
    assert results.models["smollm2-135m"].layers == {"0.5": "14", "last": "last"}
    assert results.models["gemma3-270m"].layers == {"0.5": "8", "last": "last"}
    assert {p.layer for p in results.pairs} == {"0.5", "last"}
    assert (tmp_path / "layers.png").stat().st_size > 10_000


def test_all_for_models_of_different_depth_is_one_fraction_per_block_of_the_shallowest():
    from w2s_gguf.features.layers import expand_all

    specs = expand_all(["all"], [30, 18])
    assert len(specs) == 19 and specs[-2:] == ["1.0", LAST] and specs[0] == "0.05556"
    # Every fraction names one block in each model, the shallowest model's blocks exactly once each.
    assert [resolve_layers([s], 18, "gemma")[0] for s in specs[:-1]] == list(range(18))
    assert resolve_layers(["1.0"], 30, "smollm2") == [29] and resolve_layers(["1"], 30, "smollm2") == [1]
