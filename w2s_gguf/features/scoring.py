"""Next-token log-probs of two label words after many prompts that share a prefix (llama.cpp logits mode).

Every prompt is `prefix + doc part`: the prefix (BOS and any few-shot demonstrations) is shared by a
group of prompts; the doc part (the doc's tokens and the task's question suffix) is each prompt's own.
`Scorer.score` decodes the prefix once into sequence 0 of a unified KV cache; for each batch of doc
parts it copies that sequence to sequences 1..m (`llama_memory_seq_cp`: in a unified cache the copy
shares the prefix's cells, nothing is recomputed) and decodes only the doc parts, at the positions after
the prefix, with logits at each doc's last token only. A causal model's prefix states do not depend on
what follows, so this equals decoding every prompt whole (`score_whole`), which the tests check on real
models.

`Vocab` is the model's vocabulary without its weights: prompts are tokenized, and the context they need
is checked, before any model is loaded.
"""

from __future__ import annotations

import numpy as np

from ..common.llama_logs import quiet_llama_logs
from ..errors import W2SError
from ..models.modelfile import ResolvedModel
from .engine import default_threads, gpu_offload, op_offload, weight_buffers

MAX_SEQUENCES = 256  # llama.cpp's LLAMA_MAX_SEQ: sequence 0 holds the prefix, 1..255 the docs of a batch


class Vocab:
    """Tokenizer and context length of a GGUF model, read without its weights."""

    def __init__(self, model: ResolvedModel):
        import llama_cpp
        from llama_cpp._internals import LlamaModel

        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        try:
            with quiet_llama_logs():
                self._model = LlamaModel(path_model=str(model.path), params=params, verbose=False)
        except ValueError as exc:
            raise W2SError(f"llama.cpp could not read the vocabulary of {model.path} ({exc}); the file may be "
                           f"damaged or need a newer llama-cpp-python (have {llama_cpp.__version__})") from None
        self.model = model
        # A vocabulary-only load reads no hyperparameters (n_ctx_train() is 0): take the header's value.
        context = self._model.metadata().get(f"{model.architecture}.context_length", "")
        self.n_ctx_train: int | None = int(context) if context.isdigit() else None  # None: not in the header
        self.n_vocab = int(self._model.n_vocab())
        self._start = [int(self._model.token_bos())] if self._model.add_bos_token() else []

    def tokenize(self, text: str) -> list[int]:
        """Tokens of `text` alone (no BOS): prompts are concatenations of separately tokenized pieces."""
        return list(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else []

    def start(self) -> list[int]:
        """What every prompt begins with: [BOS] where the model adds one (SmolLM2, gemma-3), else nothing (Qwen2.5)."""
        return list(self._start)

    def label_tokens(self, words: tuple[str, str]) -> tuple[int, int]:
        """The first token of each label word (word for label 0, word for label 1); they must differ."""
        firsts = []
        for word in words:
            tokens = self.tokenize(word)
            if not tokens:
                raise W2SError(f"{self.model.name}: the label word {word!r} has no tokens; give the task a non-empty word")
            firsts.append(tokens[0])
        if firsts[0] == firsts[1]:
            raise W2SError(f"{self.model.name}: the label words {words[0]!r} and {words[1]!r} begin with the same token "
                           f"(id {firsts[0]}), so their log-probs cannot be told apart; give the task's prompting form "
                           f"words that begin with distinct tokens in this model's vocabulary")
        return firsts[0], firsts[1]

    def close(self) -> None:
        self._model.close()


class Scorer:
    """One loaded GGUF model with logits on: (log p(word 0), log p(word 1)) after each prompt.

    n_ctx: KV cells, enough for the longest prefix plus one batch; n_batch: tokens per decode (and
    per ubatch), at least the longest doc part.
    """

    def __init__(self, model: ResolvedModel, n_ctx: int, n_batch: int, n_gpu_layers: int = -1,
                 n_threads: int | None = None, extra_buffers: bool = False):
        import llama_cpp
        from llama_cpp import _internals

        if n_threads is None:
            n_threads = default_threads()
        self.model = model
        self.gpu_offload = gpu_offload(n_gpu_layers, warn=True)
        self.n_ctx, self.n_batch = int(n_ctx), int(n_batch)
        try:
            with quiet_llama_logs(), weight_buffers(extra_buffers):
                # A small first context: it is replaced below by one with many sequences.
                self.llm = llama_cpp.Llama(model_path=str(model.path), embedding=False, n_ctx=64, n_batch=64,
                                           n_ubatch=64, n_gpu_layers=n_gpu_layers, n_threads=n_threads, verbose=False,
                                           op_offload=op_offload(n_gpu_layers))
        except (ValueError, RuntimeError, OSError) as exc:
            raise W2SError(f"llama.cpp could not load {model.path} for scoring (architecture {model.architecture!r}: "
                           f"{exc}); try --n-gpu-layers 0 or fewer --shots") from None
        params = type(self.llm.context_params).from_buffer_copy(self.llm.context_params)
        params.n_ctx, params.n_batch, params.n_ubatch = self.n_ctx, self.n_batch, self.n_batch
        params.embeddings = False
        # Unified KV cache: every sequence sees the same cells, so a copied prefix is shared, not duplicated.
        # (llama.cpp reserves outputs for n_seq_max sequences and asserts that a batch holds as many.)
        params.n_seq_max = min(MAX_SEQUENCES, int(llama_cpp.llama_max_parallel_sequences()), self.n_batch)
        params.kv_unified = True
        self.llm._ctx.close()
        try:
            with quiet_llama_logs():
                self.llm._ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        except ValueError as exc:
            self.llm.close()
            raise W2SError(f"llama.cpp could not create a {self.n_ctx}-token scoring context for {model.name} "
                           f"({exc}); try fewer --shots, a smaller --max-tokens or fewer --n-gpu-layers") from None
        self.llm.context_params = params
        self.max_sequences = int(params.n_seq_max) - 1
        self.n_vocab = int(self.llm.n_vocab())
        self.n_threads = int(params.n_threads)
        self._ctx = self.llm._ctx.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self._prefix: list[int] | None = None  # what sequence 0 holds

    # ------------------------------------------------------------ decoding

    def _decode(self, entries: list[tuple[list[int], int, int]], logits: bool = True) -> list[int]:
        """Decode token lists (tokens, sequence, first position) in one batch, with logits at each list's
        last token when `logits`. Returns the batch indices of those tokens."""
        import llama_cpp

        total = sum(len(tokens) for tokens, _, _ in entries)
        if total > self.n_batch:
            raise ValueError(f"a batch of {total} tokens exceeds n_batch {self.n_batch}")
        batch = self._batch.batch
        n, lasts = 0, []
        for tokens, seq, pos0 in entries:
            for i, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = pos0 + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = False
                n += 1
            if tokens and logits:
                batch.logits[n - 1] = True
                lasts.append(n - 1)
        batch.n_tokens = n
        code = llama_cpp.llama_decode(self._ctx, batch)
        if code != 0:
            raise W2SError(f"llama.cpp failed to decode a scoring batch of {self.model.name} (code {code}: "
                           f"{'no room in the KV cache' if code == 1 else 'decode error'}); try fewer --shots, a "
                           f"smaller --max-tokens or fewer --n-gpu-layers")
        return lasts

    def _log_probs(self, indices: list[int], label_tokens: tuple[int, int]) -> np.ndarray:
        """(len(indices), 2) log-softmax at the two label tokens, from the logits of those batch entries."""
        import llama_cpp

        rows = np.empty((len(indices), self.n_vocab), dtype=np.float32)
        for r, i in enumerate(indices):
            rows[r] = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, i), shape=(self.n_vocab,))
        peak = rows.max(axis=1, keepdims=True)
        log_norm = peak[:, 0].astype(np.float64) + np.log(np.exp(rows - peak).sum(axis=1, dtype=np.float64))
        return (rows[:, list(label_tokens)].astype(np.float64) - log_norm[:, None]).astype(np.float32)

    def _clear(self) -> None:
        import llama_cpp

        llama_cpp.llama_memory_clear(self._memory, True)
        self._prefix = None

    def decode_prefix(self, prefix: list[int]) -> bool:
        """Empty the cache and decode `prefix` into sequence 0 (in chunks of n_batch), no logits. False (nothing
        done) when sequence 0 holds it already: score_docs leaves only sequence 0 behind, and llama.cpp then
        places the next docs in the cells right after the prefix again, as after a fresh decode."""
        if prefix == self._prefix:
            return False
        if len(prefix) + 1 > self.n_ctx:
            raise W2SError(f"{self.model.name}: a prefix of {len(prefix)} tokens does not fit the {self.n_ctx}-token "
                           f"scoring context; use fewer --shots or a smaller --max-tokens")
        self._clear()
        self._prefix = None
        for start in range(0, len(prefix), self.n_batch):
            self._decode([(prefix[start : start + self.n_batch], 0, start)], logits=False)
        self._prefix = list(prefix)
        return True

    def score_docs(self, prefix_length: int, docs: list[list[int]], label_tokens: tuple[int, int]) -> np.ndarray:
        """Doc parts after the prefix already in sequence 0 (`decode_prefix`), in one batch: (n, 2) log-probs."""
        import llama_cpp

        if len(docs) > self.max_sequences:
            raise ValueError(f"{len(docs)} docs in one batch; at most {self.max_sequences}")
        for seq in range(1, len(docs) + 1):
            llama_cpp.llama_memory_seq_cp(self._memory, 0, seq, -1, -1)
        try:
            lasts = self._decode([(doc, seq, prefix_length) for seq, doc in enumerate(docs, 1)])
            return self._log_probs(lasts, label_tokens)
        finally:
            for seq in range(1, len(docs) + 1):
                llama_cpp.llama_memory_seq_rm(self._memory, seq, -1, -1)

    def score(self, prefix: list[int], batches: list[list[list[int]]], label_tokens: tuple[int, int]) -> np.ndarray:
        """Log-probs of every doc part after one shared prefix, decoded once; docs in the batches' order."""
        self.decode_prefix(prefix)
        out = [self.score_docs(len(prefix), batch, label_tokens) for batch in batches]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    def score_whole(self, prompts: list[list[int]], label_tokens: tuple[int, int]) -> np.ndarray:
        """Whole prompts decoded from an empty cache, together in one batch (the reference for `score`)."""
        self._clear()
        try:
            return self._log_probs(self._decode([(p, seq, 0) for seq, p in enumerate(prompts)]), label_tokens)
        finally:
            self._clear()

    def close(self) -> None:
        self._batch.close()
        self.llm.close()
