"""Features from any transformer block, every requested block in one forward pass.

llama.cpp calls an eval callback (`llama_context_params.cb_eval`) for each
node of its compute graph: asked first whether we want a tensor, then again
once that tensor is computed. Block outputs are named `l_out-0` ..
`l_out-{L-1}` (SPEC.md section 8). `LayerEmbedder` asks for the blocks
requested and pools each one per sequence inside the callback, so a batch
keeps only n_seq x layers x dim floats. "last" (the pooled output of the final
norm, exactly what `Embedder` gives) is read from the same decode.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Iterable

import numpy as np

from ..common.llama_logs import quiet_llama_logs
from ..errors import W2SError
from ..models.modelfile import ResolvedModel
from .engine import DEFAULT_MAX_TOKENS, Embedder
from .layers import LAST, resolve_layers


# ---------------------------------------------------------------- ggml access

@functools.cache
def _ggml() -> ctypes.CDLL:
    """ggml's tensor accessors: from libllama where it re-exports them, else libggml-base beside it."""
    import llama_cpp.llama_cpp as lc

    lib = lc._lib
    if not hasattr(lib, "ggml_backend_tensor_get"):
        from llama_cpp._ctypes_extensions import load_shared_library

        lib = load_shared_library("ggml-base", lc._base_path)
    ptr = ctypes.c_void_p
    for name, restype, argtypes in [
        ("ggml_get_name", ctypes.c_char_p, [ptr]),
        ("ggml_nbytes", ctypes.c_size_t, [ptr]),
        ("ggml_nrows", ctypes.c_int64, [ptr]),
        ("ggml_nelements", ctypes.c_int64, [ptr]),
        ("ggml_is_contiguous", ctypes.c_bool, [ptr]),
        # Copies from any backend's buffer (CPU or GPU), so offloaded layers work too.
        ("ggml_backend_tensor_get", None, [ptr, ptr, ctypes.c_size_t, ctypes.c_size_t]),
    ]:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    return lib


# ---------------------------------------------------------------- engine

class LayerEmbedder(Embedder):
    """`Embedder` that also returns block outputs: embed_batch -> (n_seq, len(layers), dim) float32."""

    def __init__(self, model: ResolvedModel, pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                 layers: Iterable[str | int] = (LAST,), n_gpu_layers: int = -1, n_threads: int | None = None):
        super().__init__(model, pooling, max_tokens, n_gpu_layers, n_threads)
        import llama_cpp

        self.n_layer = int(llama_cpp.llama_model_n_layer(self.llm._model.model))
        try:
            self.layers = resolve_layers(layers, self.n_layer, model.name)
        except W2SError:
            self.close()
            raise
        # Tensor name -> slot in the output; LAST's slot is filled from llama_get_embeddings_seq.
        self._slots = {f"l_out-{layer}".encode(): k for k, layer in enumerate(self.layers) if layer != LAST}
        self._out = np.zeros((0, len(self.layers), self.dim), np.float32)
        self._rows = np.empty((self.n_ctx, self.dim), np.float32)  # one block's rows (a whole batch), for mean pooling
        self._spans: list[tuple[int, int]] = []
        self._seen: set[int] = set()
        self._error: BaseException | None = None
        if self._slots:
            self._lib = _ggml()
            self._install_callback()

    def _install_callback(self) -> None:
        """Swap Llama's context for one with our eval callback (Llama() takes no cb_eval)."""
        import llama_cpp
        from llama_cpp import _internals

        llm = self.llm
        params = type(llm.context_params).from_buffer_copy(llm.context_params)
        # Kept on self: ctypes does not keep the callback object alive for the C side.
        self._callback = llama_cpp.ggml_backend_sched_eval_callback(self._on_eval)
        params.cb_eval = self._callback
        params.cb_eval_user_data = None
        llm._ctx.close()  # free the first context before allocating its replacement
        try:
            with quiet_llama_logs():
                llm._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        except ValueError as exc:
            self.llm.close()
            raise W2SError(f"llama.cpp could not create a context for {self.model.name} with layer capture ({exc}); "
                           f"try a smaller --max-tokens or fewer --n-gpu-layers") from None
        llm.context_params = params

    def _on_eval(self, tensor, ask, _user_data) -> bool:
        # Called from inside llama_decode for every graph node: keep it cheap, and never raise
        # (an exception here would be lost; returning False would silently stop the computation).
        try:
            slot = self._slots.get(self._lib.ggml_get_name(tensor))
            if ask:
                return slot is not None
            if slot is not None:
                self._pool_block(tensor, slot)
        except BaseException as exc:  # re-raised after llama_decode returns
            self._error = self._error or exc
        return True

    def _pool_block(self, tensor, slot: int) -> None:
        lib, dim = self._lib, self.dim
        n_rows, n_tokens = lib.ggml_nrows(tensor), self._spans[-1][1]
        if (n_rows != n_tokens or lib.ggml_nelements(tensor) != n_rows * dim
                or lib.ggml_nbytes(tensor) != 4 * n_rows * dim or not lib.ggml_is_contiguous(tensor)):
            raise W2SError(f"{self.model.name}: llama.cpp's tensor {lib.ggml_get_name(tensor).decode()} is not "
                           f"f32 [{dim}, {n_tokens}] (got {n_rows} rows); layer capture cannot read it")
        row = 4 * dim
        if self.pooling == "last":  # copy only each sequence's last row
            base, stride = self._out.ctypes.data, self._out.strides[0]
            for s, (_, end) in enumerate(self._spans):
                lib.ggml_backend_tensor_get(tensor, base + s * stride + slot * row, (end - 1) * row, row)
        else:
            rows = self._rows[:n_rows]
            lib.ggml_backend_tensor_get(tensor, rows.ctypes.data, 0, n_rows * row)
            for s, (start, end) in enumerate(self._spans):
                self._out[s, slot] = rows[start:end].mean(0)
        self._seen.add(slot)

    def embed_batch(self, token_lists: list[list[int]]) -> np.ndarray:
        """(n_seq, len(self.layers), dim): every requested layer of each sequence, from one decode."""
        ends = np.cumsum([len(t) for t in token_lists]).tolist()
        self._spans = [(end - len(t), end) for t, end in zip(token_lists, ends)]
        self._out = np.zeros((len(token_lists), len(self.layers), self.dim), np.float32)
        self._seen, self._error = set(), None
        last = super().embed_batch(token_lists)  # the decode; the callback fills the block slots
        out, self._out = self._out, self._out[:0]
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        missing = [self.layers[k] for k in self._slots.values() if k not in self._seen]
        if missing:
            raise W2SError(
                f"{self.model.name} (architecture {self.model.architecture!r}): llama.cpp computed no tensor "
                f"l_out-{missing[0]} ({len(missing)} requested blocks missing); this architecture names its block "
                f"outputs differently, so only --layer last works with it")
        if LAST in self.layers:
            out[:, self.layers.index(LAST)] = last
        return out
