"""A LLaMA-2-7B-shaped GGUF with random weights, run through the project's pipeline.

  pip install gguf          # gguf-py, the GGUF writer from llama.cpp
  python scripts/make_7b_shape.py [--out DIR] [--docs 60] [--keep]

The Hugging Face hub is not reachable everywhere; this file has exactly the
shape of LLaMA-2-7B Q4_0 (32 blocks, dim 4096, 32 heads, ffn 11008, a
32000-piece SentencePiece-style "llama" vocabulary), so memory, file size and
throughput are those of a real 7B model; only the features are meaningless.
Tensors are Q4_0 blocks written one tensor at a time (random 4-bit codes with
a per-block f16 scale, i.e. already-quantized random weights), so writing it
needs only a few hundred MB of RAM. The script then embeds sentiment docs with
w2s_gguf.features.pipeline.embed_texts (n_gpu_layers=-1: on a CUDA/Metal build this
measures GPU speed), trains a LinearProbe on the 4096-d features and prints a
JSON summary. The file goes under --out (default: <cache>/synthetic), never
into the repository.

Measured 2026-11-24 (2 shared cores, CPU build, nice 19, load average ~7):
3.79 GB file written in 19 s at 0.43 GB peak RSS; 60 docs, 1747 tokens at
5.9 tok/s; 4096-d finite features; peak RSS 8.1 GB = 2.1x the file, because
llama.cpp's CPU backend repacks Q4_0 weights for AVX2 (CPU_REPACK) beside the
memory-mapped file.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_VOCAB, N_EMBD, N_LAYER, N_HEAD, N_FF, N_CTX = 32000, 4096, 32, 32, 11008, 4096
QK = 32  # weights per Q4_0 block: an f16 scale + 16 bytes of 4-bit codes
Q4_0_BLOCK_BYTES = 18
INIT_STD = 0.02  # usual transformer init; Q4_0 codes q-8, q uniform in 0..15, have std ~4.6
N_BYTE_TOKENS = 256


def spm_vocab(texts: list[str]) -> tuple[list[str], list[float], list[int]]:
    """32000 SentencePiece-style pieces: <unk> <s> </s>, 256 byte pieces, then words.

    llama.cpp's SPM tokenizer merges adjacent pieces when their concatenation
    is a piece (highest score first), so every word piece comes with all its
    prefixes ("▁g", "▁go", "▁goo", "▁good"): words in the vocabulary become one
    token, others fall back to characters and bytes, as in LLaMA's tokenizer.
    """
    import gguf

    T = gguf.TokenType
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(N_BYTE_TOKENS)]
    types = [T.UNKNOWN, T.CONTROL, T.CONTROL] + [T.BYTE] * N_BYTE_TOKENS
    words = collections.Counter(w for t in texts for w in re.findall(r"[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]", t))
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-"))
    normal: dict[str, None] = dict.fromkeys(["▁"] + chars + ["▁" + c for c in chars])
    for word, _ in words.most_common():
        for end in range(2, len(word) + 1):
            normal.setdefault("▁" + word[:end])
            normal.setdefault(word[:end])  # the same word inside another, e.g. after a hyphen
        if len(normal) >= N_VOCAB - len(pieces):
            break
    normal_list = list(normal)[: N_VOCAB - len(pieces)]
    pad = N_VOCAB - len(pieces) - len(normal_list)
    pieces += normal_list + [f"<unused{i}>" for i in range(pad)]
    types += [T.NORMAL] * len(normal_list) + [T.UNUSED] * pad
    # Longer pieces score higher, so merges build whole words.
    scores = [0.0] * (N_BYTE_TOKENS + 3) + [float(len(p)) - i * 1e-6 for i, p in enumerate(normal_list)] + [-1e9] * pad
    return pieces, scores, [int(t) for t in types]


def tensor_plan() -> list[tuple[str, tuple[int, int] | tuple[int]]]:
    """(name, numpy shape rows x cols) of every tensor, in llama.cpp's naming."""
    plan: list = [("token_embd.weight", (N_VOCAB, N_EMBD))]
    for i in range(N_LAYER):
        b = f"blk.{i}"
        plan += [(f"{b}.attn_norm.weight", (N_EMBD,))]
        plan += [(f"{b}.attn_{p}.weight", (N_EMBD, N_EMBD)) for p in ("q", "k", "v", "output")]
        plan += [(f"{b}.ffn_norm.weight", (N_EMBD,)),
                 (f"{b}.ffn_gate.weight", (N_FF, N_EMBD)), (f"{b}.ffn_up.weight", (N_FF, N_EMBD)),
                 (f"{b}.ffn_down.weight", (N_EMBD, N_FF))]
    return plan + [("output_norm.weight", (N_EMBD,)), ("output.weight", (N_VOCAB, N_EMBD))]


def q4_0_random(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """Random Q4_0 blocks as the (rows, cols/32*18) uint8 array gguf-py writes."""
    n_blocks = rows * cols // QK
    blocks = np.empty((n_blocks, Q4_0_BLOCK_BYTES), dtype=np.uint8)
    scale = (INIT_STD / 4.6) * rng.uniform(0.5, 1.5, n_blocks)
    blocks[:, :2] = scale.astype("<f2").view(np.uint8).reshape(n_blocks, 2)
    blocks[:, 2:] = rng.integers(0, 256, (n_blocks, QK // 2), dtype=np.uint8)
    return blocks.reshape(rows, cols // QK * Q4_0_BLOCK_BYTES)


def write_model(path: Path, texts: list[str], seed: int = 0) -> None:
    import gguf

    w = gguf.GGUFWriter(path, arch="llama")
    w.add_name("random-llama-2-7b-shape")
    w.add_context_length(N_CTX)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(N_VOCAB)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    pieces, scores, types = spm_vocab(texts)
    w.add_tokenizer_model("llama")
    w.add_token_list(pieces)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    plan = tensor_plan()
    for name, shape in plan:  # pass 1: the tensor directory (names, shapes, byte sizes)
        if len(shape) == 1:
            w.add_tensor_info(name, shape, np.dtype(np.float32), shape[0] * 4)
        else:
            byte_shape = (shape[0], shape[1] // QK * Q4_0_BLOCK_BYTES)
            w.add_tensor_info(name, byte_shape, np.dtype(np.uint8), byte_shape[0] * byte_shape[1],
                              raw_dtype=gguf.GGMLQuantizationType.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shape in plan:  # pass 2: the data, one tensor in memory at a time
        data = np.ones(shape, np.float32) if len(shape) == 1 else q4_0_random(*shape, rng)
        w.write_tensor_data(data)
    w.close()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def main() -> int:
    from w2s_gguf.features.pipeline import embed_texts
    from w2s_gguf.core.heads import LinearProbe
    from w2s_gguf.models import resolve_model
    from w2s_gguf.common.storage import cache_home
    from w2s_gguf.tasks import load_task

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder for the .gguf (default <cache>/synthetic)")
    parser.add_argument("--docs", type=int, default=60, help="sentiment docs to embed (train half, test half)")
    parser.add_argument("--n-gpu-layers", type=int, default=-1)
    parser.add_argument("--keep", action="store_true", help="keep the 3.8 GB file for the next run")
    args = parser.parse_args()
    out = (args.out or cache_home() / "synthetic").expanduser()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "random-llama-2-7b-shape.Q4_0.gguf"

    vocab_docs = load_task("sentiment", n_train=2000, n_test=10, data_seed=1)
    data = load_task("sentiment", n_train=args.docs // 2, n_test=args.docs - args.docs // 2, balance=True)
    summary: dict = {"file": str(path)}
    start = time.perf_counter()
    if not path.exists():
        tmp = Path(tempfile.mkstemp(dir=out, prefix=".7b-", suffix=".tmp")[1])
        try:
            write_model(tmp, [d.text for d in vocab_docs.train])
            tmp.rename(path)
        finally:
            tmp.unlink(missing_ok=True)
        summary["write_seconds"] = round(time.perf_counter() - start, 1)
    summary["file_bytes"] = path.stat().st_size
    summary["peak_rss_after_write_bytes"] = peak_rss_bytes()

    model = resolve_model(str(path))
    texts = [d.text for d in data.train + data.test]
    with tempfile.TemporaryDirectory(dir=out) as store:  # measure a cold extraction, keep no vectors
        res = embed_texts(model, texts, n_gpu_layers=args.n_gpu_layers, cache_root=Path(store), progress=True)
    info = res.info()
    n_train = len(data.train)
    probe = LinearProbe().fit(res.features[:n_train], np.array([d.label for d in data.train]))
    test_acc = float((probe.predict(res.features[n_train:]) == np.array([d.label for d in data.test])).mean())
    summary.update({
        "docs": len(texts), "tokens": info["n_tokens"], "extract_seconds": info["seconds"],
        "tokens_per_second": info["tokens_per_second"], "gpu_offload": info["gpu_offload"],
        "feature_dim": res.dim, "features_finite": bool(np.isfinite(res.features).all()),
        "feature_std": round(float(res.features.std()), 4),
        "probe_test_accuracy": round(test_acc, 3), "probe_note": "random weights: chance level is the expected result",
        "peak_rss_bytes": peak_rss_bytes(),
    })
    summary["peak_rss_over_file"] = round(summary["peak_rss_bytes"] / summary["file_bytes"], 2)
    if not args.keep:
        path.unlink()
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
