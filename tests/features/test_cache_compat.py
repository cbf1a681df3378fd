"""A cache written by the version that packed texts tightly into batches (real SmolLM2): left alone, not read.

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
from w2s_gguf.features.pipeline import text_key

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


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(f.relative_to(root)): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_a_store_of_packed_batches_is_left_alone_and_recomputed(smollm2, prev_cache, pooling):
    """The previous version packed texts into batches on the CPU too, so a stored vector depended on its
    batch neighbours; this version decodes each text alone on the CPU (a vector that is a function of the
    text) and keys its stores by that. Mixing the two would make a run's features depend on the cache's
    history, so the old store is not read, and not touched either: its folder stays as it was."""
    from w2s_gguf.features.capture import LayerEmbedder
    from w2s_gguf.features.pipeline import embed_layers

    info, root = prev_cache
    before = folder_bytes(root)
    old_folders = {f.name for f in root.iterdir()}
    old = {}
    for folder in root.iterdir():
        settings = json.loads((folder / "settings.json").read_text())
        if settings["pooling"] == pooling:
            assert "texts_per_batch" not in settings
            entry = json.loads(next(folder.glob("shard-*.json")).read_text())
            old[settings["layer"]] = dict(zip(entry["keys"], np.load(next(folder.glob("shard-*.npy")))))
    got = embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                       progress=False, cache_root=root)
    assert folder_bytes(root).items() >= before.items()  # every old file still there, byte for byte
    keys = [text_key(t) for t in info["texts"]]
    engine = LayerEmbedder(smollm2, pooling, info["max_tokens"], [3, LAST], n_gpu_layers=0)
    try:
        alone = np.concatenate([engine.embed_batch([engine.tokenize(t)[0]]) for t in info["texts"]])
    finally:
        engine.close()
    for k, layer in enumerate((3, LAST)):
        assert got[layer].model_loaded and got[layer].n_computed == len(keys)
        assert got[layer].store_dir.name not in old_folders
        written = json.loads((got[layer].store_dir / "settings.json").read_text())
        assert written["texts_per_batch"] == 1 and written["extra_buffers"] is False
        new = got[layer].features
        if pooling == "last":
            np.testing.assert_array_equal(new, alone[:, k])  # each text's vector decoded alone
        else:  # llama.cpp's averaging product (LAST) vs the engine's own mean (blocks): float32 rounding
            assert np.abs(new - alone[:, k]).max() <= 1e-5 * np.abs(new).max()
        # The old vectors differ by their batch neighbours' rounding only.
        assert cosine(new, np.stack([old[str(layer)][key] for key in keys])).min() > 0.998


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_packed_decoding_reads_the_previous_versions_store_and_recomputes_its_vectors(smollm2, prev_cache, tmp_path,
                                                                                     pooling):
    """`decode="packed"` is how that version decoded, so its store is the packed store: read as it is, without
    loading the model; recomputed packed in an empty cache, the vectors are that version's, bit for bit on
    the build that wrote the fixture (texts.json names it)."""
    import llama_cpp
    from w2s_gguf.features.pipeline import embed_layers

    info, root = prev_cache
    old = {}
    for folder in root.iterdir():
        settings = json.loads((folder / "settings.json").read_text())
        if settings["pooling"] == pooling:
            entry = json.loads(next(folder.glob("shard-*.json")).read_text())
            old[settings["layer"]] = dict(zip(entry["keys"], np.load(next(folder.glob("shard-*.npy")))))
    keys = [text_key(t) for t in info["texts"]]
    read = embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                        progress=False, cache_root=root, decode="packed")
    fresh = embed_layers(smollm2, info["texts"], [3, LAST], pooling, info["max_tokens"], n_gpu_layers=0,
                         progress=False, cache_root=tmp_path / "empty", decode="packed")
    same_build = llama_cpp.llama_print_system_info().decode().strip() == info["system_info"].strip()
    for layer in (3, LAST):
        stored = np.stack([old[str(layer)][key] for key in keys])
        assert not read[layer].model_loaded and read[layer].n_computed == 0
        np.testing.assert_array_equal(read[layer].features, stored)
        assert fresh[layer].model_loaded and fresh[layer].n_computed == len(keys)
        if same_build and not (pooling == "mean" and layer == LAST):
            np.testing.assert_array_equal(fresh[layer].features, stored)
        else:  # another CPU's kernels, or llama.cpp's averaging product against the engine's own mean
            assert cosine(fresh[layer].features, stored).min() > 0.9999


def test_stores_decoded_alone_on_the_plain_kernels_are_new_and_packed_ones_keep_their_names():
    """0.3.0 decoded alone with llama.cpp's extra weight buffers, whose kernels moved gemma-3's vectors with
    the shape of a decode (engine.weight_buffers); those stores are not read for the plain kernels' vectors.
    Packed stores, the extra buffers' as before, keep the names every earlier version gave them."""
    from w2s_gguf.features.cache import StoreSettings
    from w2s_gguf.features.prompt_scores import ScoreSettings

    base = dict(model_sha256="ab" * 32, pooling="last", max_tokens=512, llama_cpp_version="0.3.36", gpu_offload=False)
    before = StoreSettings(**base, texts_per_batch=1)  # as 0.3.0 wrote them (no extra_buffers field)
    assert StoreSettings(**base, texts_per_batch=1, extra_buffers=False).key() != before.key()
    assert StoreSettings(**base, extra_buffers=True).key() == StoreSettings(**base).key()
    scored = dict(model_sha256="ab" * 32, llama_cpp_version="0.3.36", gpu_offload=False, max_tokens=512,
                  batch_tokens=256, suffix="?", label_words=[" no", " yes"], separator="\n\n", prompt_version="1")
    assert ScoreSettings(**scored, texts_per_batch=1, extra_buffers=False).key() != ScoreSettings(**scored, texts_per_batch=1).key()
    assert ScoreSettings(**scored, extra_buffers=True).key() == ScoreSettings(**scored).key()
