"""Independent check of layer capture: llama.cpp's block outputs vs transformers on the same weights.

SmolLM2-135M's GGUF weights are dequantized with the `gguf` package into a
Hugging Face `LlamaForCausalLM` of the same shape (config read from the GGUF),
undoing the Q/K row permutation that convert_hf_to_gguf.py applies to
llama-architecture models. Both sides get the same token ids (llama.cpp's
tokenizer), one text at a time. For each layer we compare, at the last token:

- block N (llama.cpp tensor `l_out-N`) with the output of decoder layer N
  (transformers' hidden_states[N+1] for N < L-1, taken by a forward hook so the
  last block is the raw one, not the normed state transformers puts last);
- "last" (llama.cpp's pooled `result_norm`) with the final normed state.

The weights are identical; llama.cpp quantizes activations (Q8 for its Q4_1/Q8_0
matmuls), so expect cosines about 0.99, not 1.

    pip install gguf transformers
    W2S_GGUF_HOME=.cache-test python benchmarks/layer_reference.py --n-docs 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from gguf import GGUFReader
from gguf.quants import dequantize
from transformers import LlamaConfig, LlamaForCausalLM

from w2s_gguf.features.capture import LayerEmbedder
from w2s_gguf.features.layers import LAST, layer_label
from w2s_gguf.models import ensure_model, load_registry
from w2s_gguf.tasks import load_task

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--n-docs", type=int, default=20)
p.add_argument("--max-tokens", type=int, default=256)
args = p.parse_args()


def field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of convert_hf_to_gguf.py's LlamaModel.permute: GGUF rows are (head, pair, half);
    Hugging Face's rotate_half layout wants (head, half, pair)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_from_gguf(path) -> LlamaForCausalLM:
    reader = GGUFReader(path)
    assert field(reader, "general.architecture") == "llama"
    n_head, n_kv = field(reader, "llama.attention.head_count"), field(reader, "llama.attention.head_count_kv")
    tensors = {t.name: dequantize(t.data, t.tensor_type).reshape(tuple(int(d) for d in reversed(t.shape)))
               for t in reader.tensors}
    config = LlamaConfig(
        vocab_size=tensors["token_embd.weight"].shape[0],
        hidden_size=field(reader, "llama.embedding_length"),
        intermediate_size=field(reader, "llama.feed_forward_length"),
        num_hidden_layers=field(reader, "llama.block_count"),
        num_attention_heads=n_head, num_key_value_heads=n_kv,
        max_position_embeddings=field(reader, "llama.context_length"),
        rms_norm_eps=field(reader, "llama.attention.layer_norm_rms_epsilon"),
        rope_theta=field(reader, "llama.rope.freq_base"),
        tie_word_embeddings="output.weight" not in tensors,
        hidden_act="silu", attention_bias=False, mlp_bias=False,
    )
    names = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    per_block = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                 "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
    state = {}
    for name, w in tensors.items():
        if name.startswith("blk."):
            _, i, kind, suffix = name.split(".")
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv)
            state[f"model.layers.{i}.{per_block[kind]}.{suffix}"] = w
        else:
            state[names[name]] = w
    net = LlamaForCausalLM(config).eval()
    missing, unexpected = net.load_state_dict({k: torch.from_numpy(np.array(v, np.float32))
                                               for k, v in state.items()}, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    net.tie_weights()
    return net


start = time.perf_counter()
model = ensure_model(load_registry()["smollm2-135m"])
data = load_task("sentiment", n_train=300, n_test=20)
texts = [d.text for d in data.train][: args.n_docs]
engine = LayerEmbedder(model, "last", args.max_tokens, layers=["all"], n_gpu_layers=0)
tokens = [engine.tokenize(t)[0] for t in texts]
ours = np.stack([engine.embed_batch([t])[0] for t in tokens])  # (docs, L+1, dim)
layers, n_layer = engine.layers, engine.n_layer
engine.close()

net = hf_from_gguf(str(model.path))
blocks: list[torch.Tensor] = []
hooks = [layer.register_forward_hook(lambda _m, _i, out: blocks.append(out[0] if isinstance(out, tuple) else out))
         for layer in net.model.layers]
ref = np.empty_like(ours)
with torch.inference_mode():
    for d, toks in enumerate(tokens):
        blocks.clear()
        out = net.model(input_ids=torch.tensor([toks]))
        states = [b.reshape(-1, b.shape[-1])[-1] for b in blocks] + [out.last_hidden_state[0, -1]]
        ref[d] = torch.stack(states).numpy()
for h in hooks:
    h.remove()

cos = (ours * ref).sum(-1) / np.linalg.norm(ours, axis=-1) / np.linalg.norm(ref, axis=-1)  # (docs, L+1)
n_tok = sum(map(len, tokens))
lines = [
    f"- model: {model.name} ({model.path.name}, sha256 {model.sha256[:12]}), {n_layer} blocks; "
    f"{len(tokens)} sentiment texts, {n_tok} tokens, one text per decode, last-token pooling",
    "- reference: transformers LlamaForCausalLM with the GGUF's dequantized weights (Q/K rows un-permuted), fp32",
    f"- script ran {time.perf_counter() - start:.0f} s",
    "",
    "| layer | transformers state | cosine mean | cosine min |",
    "|---|---|---:|---:|",
]
for k, layer in enumerate(layers):
    if layer == LAST:
        hf = "final norm (last_hidden_state)"
    else:  # transformers puts the normed state, not the raw last block, at hidden_states[L]
        hf = f"decoder layer {layer} output" + (f" = hidden_states[{layer + 1}]" if layer < n_layer - 1 else " (raw)")
    lines.append(f"| {layer_label(layer)} | {hf} | {cos[:, k].mean():.5f} | {cos[:, k].min():.5f} |")
print("\n".join(lines))
