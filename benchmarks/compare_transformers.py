"""Our GGUF extraction vs a Hugging Face transformers forward pass, on CPU.

OpenAI's weak-to-strong code gets features by running the model and taking the
final hidden state of the last real token. Here we time that with transformers
(SmolLM2-135M's architecture, random weights, fp32 and bf16, batched with padding
and one text at a time) against our pipeline `embed_texts` on the SmolLM2-135M
Q4_1 GGUF, on the same documents' token counts and the same number of threads.

Shared machines are noisy, so the docs are dealt into --rounds chunks and every
variant runs on every chunk in turn (order rotated each round): each variant
sees the same load over time. Times are summed over rounds.

    W2S_GGUF_HOME=.cache-test python benchmarks/compare_transformers.py --n-docs 200
"""

import argparse
import copy
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import llama_cpp
import torch
import transformers
from transformers import LlamaConfig, LlamaModel

from w2s_gguf.features.pipeline import Embedder, embed_texts
from w2s_gguf.models import ensure_model, load_registry
from w2s_gguf.tasks import load_task

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--n-docs", type=int, default=200)
p.add_argument("--task", default="sentiment", help="sentiment (short docs) or boolq (long docs)")
p.add_argument("--threads", type=int, default=None, help="default: what our Embedder picks (default_threads())")
p.add_argument("--batch-size", type=int, default=16, help="transformers batch size for the padded variants")
p.add_argument("--rounds", type=int, default=4, help="chunks the docs are dealt into, to interleave the variants")
p.add_argument("--max-tokens", type=int, default=512)
p.add_argument("--out", default=str(Path(__file__).parent / "results.md"))
args = p.parse_args()
start = time.perf_counter()

# ---------------------------------------------------------------- docs and tokens, from the GGUF
model = ensure_model(load_registry()["smollm2-135m"])
data = load_task(args.task, n_train=args.n_docs, n_test=20)  # (n_test=1 is refused: a one-class split)
texts = list(dict.fromkeys(d.text for d in data.train))  # unique, so each chunk really computes
emb = Embedder(model, "last", args.max_tokens, n_gpu_layers=0, n_threads=args.threads)  # CPU against CPU
threads = emb.n_threads
lengths = [len(emb.tokenize(t)[0]) for t in texts]  # what llama.cpp decodes (cut from the left at max_tokens)
n_tok = sum(lengths)
print(f"{len(texts)} {args.task} docs, {n_tok} tokens (mean {n_tok / len(texts):.1f}, max {max(lengths)}), {threads} threads")

# ---------------------------------------------------------------- transformers: OAI's way
torch.set_num_threads(threads)
torch.manual_seed(0)
config = LlamaConfig(  # SmolLM2-135M, written out by hand (no hub here)
    hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
    intermediate_size=1536, vocab_size=49152, rope_theta=100000.0, max_position_embeddings=8192,
    tie_word_embeddings=True, rms_norm_eps=1e-5, hidden_act="silu", use_cache=False,
)
fp32 = LlamaModel(config).eval()
nets = {"fp32": fp32, "bf16": copy.deepcopy(fp32).to(torch.bfloat16)}  # the same random weights
ids = [torch.randint(100, config.vocab_size, (n,)) for n in lengths]  # random ids, the same lengths


def last_token_states(net, batch):
    """Final (normed) hidden state at each sequence's last real token; right padding, as OAI."""
    lens = torch.tensor([len(x) for x in batch])
    x = torch.zeros(len(batch), int(lens.max()), dtype=torch.long)
    mask = torch.zeros_like(x)
    for i, seq in enumerate(batch):
        x[i, : len(seq)], mask[i, : len(seq)] = seq, 1
    h = net(input_ids=x, attention_mask=mask).last_hidden_state
    return h[torch.arange(len(batch)), lens - 1].float()


def transformers_variant(net, batch_size):
    def run(idx):
        idx = sorted(idx, key=lengths.__getitem__)  # sorted by length: least padding
        batches = [[ids[i] for i in idx[k : k + batch_size]] for k in range(0, len(idx), batch_size)]
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = torch.cat([last_token_states(net, b) for b in batches])
        seconds = time.perf_counter() - t0
        assert torch.isfinite(out).all()
        return seconds, sum(len(b) * max(map(len, b)) for b in batches)
    return run


with torch.inference_mode():  # warm-up, and check that padding does not move the last-token states
    warm = ids[: args.batch_size]
    for net in nets.values():
        padded = last_token_states(net, warm)
        alone = torch.cat([last_token_states(net, [x]) for x in warm])
        cos = torch.nn.functional.cosine_similarity(padded, alone).min()
        assert cos > 0.999, f"padded and single last-token states differ ({net.dtype}: cosine {cos:.4f})"

# ---------------------------------------------------------------- ours: the real pipeline on the GGUF
tmp = tempfile.TemporaryDirectory(prefix="w2s-compare-")  # a fresh cache, so it really computes


def ours(idx):
    t0 = time.perf_counter()  # wall time of the whole call: hash, tokenize, batch, decode, pool, store
    res = embed_texts(model, [texts[i] for i in idx], "last", args.max_tokens, 0, threads, progress=False,
                      cache_root=Path(tmp.name), embedder=emb)
    seconds = time.perf_counter() - t0
    assert res.n_computed == len(idx) and res.n_tokens == sum(lengths[i] for i in idx)
    return seconds, res.n_tokens


def engine(idx):  # llama.cpp alone on one max_tokens sequence: the yardstick (as `w2s-gguf bench`)
    return args.max_tokens / emb.engine_tokens_per_second(repeats=1), None


variants = {
    f"llama.cpp engine, one {args.max_tokens}-token sequence (yardstick)": engine,
    "ours: `embed_texts`, Q4_1 GGUF": ours,
    **{f"transformers {name}, " + (f"batch {bs}, right-padded" if bs > 1 else "one text at a time"):
       transformers_variant(net, bs) for name, net in nets.items() for bs in (args.batch_size, 1)},
}
seconds = dict.fromkeys(variants, 0.0)
computed = dict.fromkeys(variants, 0)
names = list(variants)
for r in range(args.rounds):
    chunk = list(range(r, len(texts), args.rounds))  # dealt, so every chunk spans all lengths
    for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order each round
        s, fed = variants[name](chunk)
        seconds[name] += s
        computed[name] = None if fed is None else computed[name] + fed
    print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - start:.0f} s)")
emb.close()
tmp.cleanup()

# ---------------------------------------------------------------- report
tps = {name: (args.max_tokens * args.rounds if computed[name] is None else n_tok) / seconds[name] for name in names}
yard, mine = tps[names[0]], tps[names[1]]
table = ["| variant | docs/s | tok/s (real tokens) | tokens computed (with padding) | ÷ engine | ours ÷ this |",
         "|---|---:|---:|---:|---:|---:|"]
for name in names:
    docs = "" if computed[name] is None else f"{len(texts) / seconds[name]:.2f}"
    table.append(f"| {name} | {docs} | {tps[name]:.0f} | {computed[name] or ''} | {tps[name] / yard:.2f} | {mine / tps[name]:.2f} |")
cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), platform.processor())
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
report = "\n".join([
    f"# GGUF extraction vs transformers forward pass ({datetime.date.today()})", "",
    f"- machine: {cpu}, {cores} cores available ({os.cpu_count()} online, load average {os.getloadavg()[0]:.1f} at the end), "
    f"{threads} threads for both; {platform.platform()}",
    f"- versions: torch {torch.__version__}, transformers {transformers.__version__}, "
    f"llama-cpp-python {llama_cpp.__version__}, Python {platform.python_version()}",
    f"- docs: {len(texts)} from `{args.task}`, {n_tok} tokens (mean {n_tok / len(texts):.1f}, max {max(lengths)}, "
    f"cut at {args.max_tokens}), in {args.rounds} interleaved rounds",
    f"- ours: {model.name} Q4_1 GGUF ({model.sha256[:12]}), fresh cache; transformers: SmolLM2-135M config, "
    f"random weights, `LlamaModel`, `torch.inference_mode()`",
    f"- script ran {time.perf_counter() - start:.0f} s", "", *table, "",
])
print("\n" + report)
Path(args.out).write_text(report)
print(f"wrote {args.out}")
