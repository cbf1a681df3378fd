"""A cache written by the version before graphs stopped early is still this version's cache (real SmolLM2).

tests/fixtures/cache_prev was written by that version's own code (tests/fixtures/make_prev_cache.py
says how to regenerate it): "last" through its plain Embedder, block 3 through its LayerEmbedder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from w2s_gguf.features.layers import LAST

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "cache_prev"


@pytest.fixture()
def prev_cache(tmp_path, monkeypatch):
    import llama_cpp

    info = json.loads((FIXTURE / "texts.json").read_text())
    shutil.copytree(FIXTURE / "embeddings", tmp_path / "embeddings")
    # The store key names the llama-cpp-python version: keep the fixture's, whatever is installed here.
    monkeypatch.setattr(llama_cpp, "__version__", info["llama_cpp"])
    return info, tmp_path / "embeddings"


def cosine(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_the_previous_versions_cache_is_reused_without_loading_the_model(smollm2, prev_cache, pooling, monkeypatch):
    from w2s_gguf.features import pipeline

    info, root = prev_cache
    stored = {}
    for folder in root.iterdir():
        settings = json.loads((folder / "settings.json").read_text())
        if settings["pooling"] == pooling:
            entry = json.loads(next(folder.glob("shard-*.json")).read_text())
            vectors = np.load(next(folder.glob("shard-*.npy")))
            stored[settings["layer"]] = dict(zip(entry["keys"], vectors))

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded although the previous version cached every text")

    monkeypatch.setattr(pipeline, "LayerEmbedder", no_load)
    got = pipeline.embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                                progress=False, cache_root=root)
    keys = [pipeline.text_key(t) for t in info["texts"]]
    for layer in (3, LAST):
        assert not got[layer].model_loaded and got[layer].n_computed == 0
        np.testing.assert_array_equal(got[layer].features, np.stack([stored[str(layer)][k] for k in keys]))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_this_version_computes_what_the_previous_one_cached(smollm2, prev_cache, pooling, tmp_path):
    """Fresh vectors against the fixture: bit for bit on the build that wrote it (mean pooling of "last": to
    float32 rounding, as llama.cpp's averaging matrix product sums in another order); elsewhere the CPU kernels
    differ, and batch composition already moves features this far."""
    import llama_cpp

    from w2s_gguf.features.pipeline import embed_layers

    info, root = prev_cache
    old = embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                       progress=False, cache_root=root)
    new = embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                       progress=False, cache_root=tmp_path / "fresh")
    assert new[LAST].model_loaded and new[LAST].settings.key() == old[LAST].settings.key()
    same_build = llama_cpp.llama_print_system_info().decode().strip() == info["system_info"]
    for layer in (3, LAST):
        a, b = old[layer].features, new[layer].features
        if not same_build:
            assert cosine(a, b).min() > 0.999
        elif pooling == "mean" and layer == LAST:
            assert np.abs(a - b).max() <= 1e-5 * np.abs(a).max()
        else:
            np.testing.assert_array_equal(a, b)
