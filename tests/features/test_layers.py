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


# ---------------------------------------------------------------- the engine on real models

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


@pytest.fixture(scope="module")
def qwen(test_home):
    from w2s_gguf.models import ensure_model, load_registry

    return ensure_model(load_registry()["qwen2.5-coder-0.5b"])


@pytest.fixture(scope="module")
def qwen15(test_home):
    """The largest registry model that runs on a CPU machine (1.1 GB): only where the test cache already holds it."""
    from w2s_gguf.models import ensure_model, load_registry

    entry = load_registry()["qwen2.5-coder-1.5b"]
    if not (test_home / "models" / entry.name / entry.filename).exists():
        pytest.skip(f"{entry.name} is not in the test cache (w2s-gguf models pull {entry.name} fetches 1.1 GB)")
    return ensure_model(entry)


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def model(request):
    return request.getfixturevalue(request.param)


class Recording(LayerEmbedder):
    """The engine, recording every (tensor name, ask) the scheduler passes to its callback."""

    def _on_eval(self, tensor, ask, user_data):
        self.calls.append((self._lib.ggml_get_name(tensor), bool(ask)))
        return super()._on_eval(tensor, ask, user_data)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["smollm2", "gemma3", "qwen", "qwen15"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_last_equals_llama_cpps_pooled_embedding_from_a_stopped_graph(name, pooling, sentiment_texts, request):
    """Last pooling: bit for bit. Mean pooling: llama.cpp averages result_norm with a matrix product,
    we with numpy: float32 rounding (largest seen: 4.2e-7 of the vector's largest entry, gemma-3 mean)."""
    model = request.getfixturevalue(name)
    texts = sentiment_texts[:16]
    plain = Embedder(model, pooling, max_tokens=128)
    engine = LayerEmbedder(model, pooling, max_tokens=128)
    try:
        tokens, batches = token_batches(plain, texts)
        expected = embed_all(plain, tokens, batches)
        got = embed_all(engine, tokens, batches)
    finally:
        plain.close()
        engine.close()
    assert engine.layers == [LAST] and got.shape == (16, 1, plain.dim)
    # One decode of the whole graph checked result_norm; every later one stopped after it.
    assert engine.graph == "stopped" and engine.stats["stopped"] == engine.stats["decodes"] - 1 == len(batches) - 1
    if pooling == "last":
        np.testing.assert_array_equal(got[:, 0], expected)
    else:
        assert np.abs(got[:, 0] - expected).max() <= 1e-6 * np.abs(expected).max()


@pytest.mark.slow
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_stopped_graphs_give_the_whole_graphs_blocks_bit_for_bit(model, pooling, sentiment_texts):
    texts = sentiment_texts[:8]
    layers = ["0", "middle", "-1", "last"]
    whole = LayerEmbedder(model, pooling, max_tokens=128, layers=layers, stop_early=False)
    try:
        tokens, batches = token_batches(whole, texts)
        expected = embed_all(whole, tokens, batches)
    finally:
        whole.close()
    assert whole.graph == "full" and whole.stats["stopped"] == 0
    for request in (layers, ["middle"], ["0", "-1"]):
        engine = LayerEmbedder(model, pooling, max_tokens=128, layers=request)
        try:
            got = embed_all(engine, tokens, batches)
        finally:
            engine.close()
        assert engine.stats["stopped"] >= len(batches) - 1
        columns = [whole.layers.index(layer) for layer in engine.layers]
        if pooling == "mean" and LAST in engine.layers:  # llama.cpp's averaging matrix product vs numpy
            np.testing.assert_array_equal(got[:, :-1], expected[:, columns[:-1]])
            assert np.abs(got[:, -1] - expected[:, -1]).max() <= 1e-6 * np.abs(expected[:, -1]).max()
        else:
            np.testing.assert_array_equal(got, expected[:, columns])


@pytest.mark.slow
@pytest.mark.parametrize("request_, deepest", [(["last"], b"result_norm"), (["3"], b"l_out-3"), (["5", "2"], b"l_out-5")])
def test_nothing_after_the_deepest_requested_tensor_is_computed(smollm2, sentiment_texts, request_, deepest):
    engine = Recording(smollm2, "last", max_tokens=128, layers=request_)
    engine.calls = []
    try:
        tokens = [engine.tokenize(t)[0] for t in sentiment_texts[:3]]
        engine.embed_batch(tokens)  # with "last": the whole graph once, the check
        whole, engine.calls = engine.calls, []
        engine.embed_batch(tokens)
        stopped = engine.calls
    finally:
        engine.close()
    assert (b"result_output", True) in whole or request_ != ["last"]  # the LM head, asked about in a whole graph
    # A CPU build computes its graph as one split: the scheduler ends it on the deepest tensor, and asks
    # about no node after it (it computes every node up to the next one we want).
    assert stopped[-1] == (deepest, False) and stopped.count((deepest, False)) == 1
    assert engine.stats["late_nodes"] == 0
    names = [n for n, _ in stopped]
    assert b"result_output" not in names
    if deepest != b"result_norm":
        assert b"result_norm" not in names and f"l_out-{int(deepest[6:]) + 1}".encode() not in names


@pytest.mark.slow
def test_every_block_matches_an_independent_one_text_reference(smollm2, sentiment_texts):
    """Each block of the engine's batched capture against a separate callback that copies whole l_out-N
    tensors, one text per decode, of the whole graph: an off-by-one block mapping cannot pass."""
    texts = sentiment_texts[:5]
    engine = LayerEmbedder(smollm2, "last", max_tokens=128, layers=["all"])
    try:
        tokens, batches = token_batches(engine, texts)
        ours = embed_all(engine, tokens, batches)[:, :-1]  # (docs, 30, dim)
    finally:
        engine.close()
    reference = np.stack([reference_blocks(smollm2, t) for t in tokens])  # (docs, 30, dim)
    n = ours.shape[1]
    same = cosine(ours, reference)  # (docs, blocks)
    assert same.min() > 0.999, same.min(axis=0)
    for block in range(n):
        for neighbour in (block - 1, block + 1):
            if 0 <= neighbour < n:
                assert (same[:, block] > cosine(ours[:, block], reference[:, neighbour])).all(), (block, neighbour)


def reference_blocks(model, tokens: list[int]) -> np.ndarray:
    """Every block's output row of the last token, read by a callback of its own: (n_layer, dim)."""
    import ctypes

    import llama_cpp
    from llama_cpp import _internals

    from w2s_gguf.features.capture import _ggml

    lib = _ggml()
    plain = Embedder(model, "last", max_tokens=128)
    dim, rows = plain.dim, {}

    def on_eval(tensor, ask, _):
        name = lib.ggml_get_name(tensor).decode()
        if not name.startswith("l_out-"):
            return not ask
        if not ask:
            buf = np.empty((lib.ggml_nrows(tensor), dim), np.float32)
            lib.ggml_backend_tensor_get(tensor, buf.ctypes.data, 0, buf.nbytes)
            rows[int(name.split("-")[1])] = buf[-1].copy()
        return True

    callback = llama_cpp.ggml_backend_sched_eval_callback(on_eval)
    params = type(plain.llm.context_params).from_buffer_copy(plain.llm.context_params)
    params.cb_eval, params.cb_eval_user_data = callback, ctypes.c_void_p()
    plain.llm._ctx.close()
    plain.llm._ctx = _internals.LlamaContext(model=plain.llm._model, params=params, verbose=False)
    try:
        plain.decode([tokens])
    finally:
        plain.close()
    return np.stack([rows[i] for i in range(len(rows))])


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
    # Gemma 3's final norm amplifies the batch-composition noise of the last block (0.9995) to 0.9984.
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


# ---------------------------------------------------------------- where the graph cannot stop

@pytest.mark.slow
@pytest.mark.parametrize("tensor, why", [
    (b"final_norm_of_another_arch", "has no tensor named result_norm"),  # an architecture that names it otherwise
    (b"l_out-29", "reads a result_norm that is not its pooled output"),  # a final tensor that is not the pooled one
])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_without_a_usable_result_norm_the_whole_graph_runs_after_one_warning(
        smollm2, sentiment_texts, capsys, monkeypatch, tensor, why, pooling):
    from w2s_gguf.features import engine as engine_module

    monkeypatch.setattr(engine_module, "_warned", set())
    monkeypatch.setattr("w2s_gguf.features.capture.RESULT_NORM", tensor)
    plain = Embedder(smollm2, pooling, max_tokens=128)
    engine = LayerEmbedder(smollm2, pooling, max_tokens=128, layers=["3", "last"])
    try:
        tokens, batches = token_batches(plain, sentiment_texts[:10])
        expected = embed_all(plain, tokens, batches)
        capsys.readouterr()
        got = embed_all(engine, tokens, batches)
    finally:
        plain.close()
        engine.close()
    err = capsys.readouterr().err
    assert engine.graph == "full" and engine.stats["stopped"] == 0
    np.testing.assert_array_equal(got[:, 1], expected)  # llama.cpp's own vectors, never what we read
    if why.startswith("reads") and pooling == "mean":
        why = "averages result_norm to other vectors"
    assert why in err and err.count("\n") == 1 and "smollm2-135m" in err and "whole graph" in err


def test_a_ctrl_c_during_a_decode_is_raised_when_the_decode_returns(smollm2, sentiment_texts, capsys, monkeypatch):
    """A SIGINT whose handler runs at the eval callback's first bytecode (before its try) was dropped by ctypes,
    and the callback's default return ended the graph: the run went on without result_norm, on the whole
    graph. Here the signal is sent from exactly there, on the real model: it must surface as KeyboardInterrupt
    once llama_decode returns, with the engine still stopping its graphs."""
    import os
    import signal

    original = LayerEmbedder._on_eval
    sent = []

    def interrupted_on_entry(self, tensor, ask, user_data):
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)  # its handler runs before the next line
        return original(self, tensor, ask, user_data)

    monkeypatch.setattr(LayerEmbedder, "_on_eval", interrupted_on_entry)
    engine = LayerEmbedder(smollm2, "last", max_tokens=128, layers=["3", "last"])
    try:
        tokens = [engine.tokenize(t)[0] for t in sentiment_texts[:3]]
        with pytest.raises(KeyboardInterrupt):
            engine.embed_batch([tokens[0]])
        assert sent and "Exception ignored" not in capsys.readouterr().err
        engine.embed_batch([tokens[1]])  # the next decodes run as before: the check passed, graphs stop
        engine.embed_batch([tokens[2]])
        assert engine.graph == "stopped" and engine.stats["stopped"] >= 1
    finally:
        engine.close()


def test_the_gpu_tolerance_for_mean_pooling_still_refuses_another_tensor(smollm2, sentiment_texts):
    """On a GPU the mean check allows the device's own precision (4.1e-4 of the largest entry on the Vulkan
    stand-in): a difference that large passes there and not on the CPU, while the nearest wrong tensor (block
    29, the final norm's input) fails both by far."""
    from w2s_gguf.features import capture

    plain = Embedder(smollm2, "mean", max_tokens=128)
    engine = LayerEmbedder(smollm2, "mean", max_tokens=128, layers=["29"])
    try:
        tokens, batches = token_batches(plain, sentiment_texts[:10])
        pooled = embed_all(plain, tokens, batches)
        block29 = embed_all(engine, tokens, batches)[:, 0]
        scale = np.abs(pooled).max(axis=1, keepdims=True)
        near = pooled + 4.1e-4 * scale * np.sign(np.sin(np.arange(pooled.shape[1])))  # the stand-in's difference
        for gpu in (False, True):
            engine.gpu_offload = gpu  # only the tolerance reads it after loading
            assert (engine._disagreement(near, pooled) is None) is gpu
            assert engine._disagreement(pooled, pooled) is None
            why = engine._disagreement(block29, pooled)
            assert why is not None and float(why.split("difference ")[1].rstrip(")")) > 10 * capture.MEAN_TOLERANCE_GPU
    finally:
        plain.close()
        engine.close()


def test_graphs_are_not_stopped_where_later_splits_read_uncomputed_expert_ids():
    from w2s_gguf.features.capture import stop_unsafe

    assert stop_unsafe({"qwen3moe.expert_count": "128"}, "qwen3moe", gpu_offload=True).startswith("a mixture-of-experts")
    assert stop_unsafe({"qwen3moe.expert_count": "128"}, "qwen3moe", gpu_offload=False) is None  # one split
    assert stop_unsafe({"llama.expert_count": "0"}, "llama", gpu_offload=True) is None
    assert stop_unsafe({}, "llama", gpu_offload=True) is None


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
    assert "\n" not in str(exc.value)
    with pytest.raises(W2SError, match="smollm2-135m has 30 blocks"):
        LayerEmbedder(smollm2, "last", max_tokens=128, layers=["30"])


def test_a_failed_decode_leaves_only_whole_checksummed_shards(smollm2, sentiment_texts, tmp_path, monkeypatch):
    """The callback fails inside the third decode: nothing of that batch reaches the cache, the
    finished shards verify, and the rerun computes only the rest, equal to an uninterrupted run."""
    from w2s_gguf.features import capture
    from w2s_gguf.features.pipeline import embed_layers

    texts = sentiment_texts[:40]
    calls = {"n": 0}
    real_pool = capture.LayerEmbedder._pool

    def failing_pool(self, tensor, slot):
        calls["n"] += 1
        if calls["n"] == 5:  # the third decode's first tensor (two tensors per decode)
            raise W2SError("injected failure inside the eval callback")
        return real_pool(self, tensor, slot)

    monkeypatch.setattr(capture.LayerEmbedder, "_pool", failing_pool)
    kwargs = dict(max_tokens=128, n_gpu_layers=0, progress=False, shard_docs=1)
    with pytest.raises(W2SError, match="injected failure"):
        embed_layers(smollm2, texts, [3, LAST], cache_root=tmp_path / "cache", **kwargs)
    monkeypatch.undo()
    again = embed_layers(smollm2, texts, [3, LAST], cache_root=tmp_path / "cache", **kwargs)
    whole = embed_layers(smollm2, texts, [3, LAST], cache_root=tmp_path / "whole", **kwargs)
    for layer in (3, LAST):
        assert again[layer].problems == [] and 0 < again[layer].n_computed < len(texts)
        np.testing.assert_array_equal(again[layer].features, whole[layer].features)


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
    from conftest import w2s

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
