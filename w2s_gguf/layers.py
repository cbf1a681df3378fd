"""Features from any transformer block, every requested block in one forward pass.

llama.cpp calls an eval callback (`llama_context_params.cb_eval`) for each
node of its compute graph: asked first whether we want a tensor, then again
once that tensor is computed. Block outputs are named `l_out-0` ..
`l_out-{L-1}` (SPEC.md section 8). `LayerEmbedder` asks for the blocks
requested and pools each one per sequence inside the callback, so a batch
keeps only n_seq x layers x dim floats. "last" (the pooled output of the final
norm, exactly what `Embedder` gives) is read from the same decode.

Layer specs, as a user types them: "last"; "middle" (block (L+1)//2 - 1,
i.e. EleutherAI's hidden state (L+1)//2); a block number N (0-based, negative
from the end); a fraction f in (0, 1] (hidden state round(f*L), i.e. block
round(f*L) - 1); "all" (every block, then "last").
"""

from __future__ import annotations

import ctypes
import functools
import math
from typing import Iterable, Union

import numpy as np

from .engine import DEFAULT_MAX_TOKENS, Embedder
from .llama_logs import quiet_llama_logs
from .errors import SettingError, W2SError
from .modelfile import ResolvedModel

LAST = "last"
Layer = Union[int, str]  # a 0-based block index, or LAST


# ---------------------------------------------------------------- specs

def parse_layers(text: str) -> list[str]:
    """'middle, -1,0.5' -> ['middle', '-1', '0.5']."""
    specs = [part.strip().lower() for part in str(text).split(",")]
    specs = [s for s in specs if s]
    if not specs:
        raise W2SError(f"--layer {text!r} names no layer; give last, middle, all, a block number or a fraction, comma-separated")
    return specs


def resolve_layers(specs: Iterable[str | int], n_layer: int, model_name: str) -> list[Layer]:
    """Specs -> block indices (0..n_layer-1) and/or LAST, duplicates dropped, order kept."""
    out: list[Layer] = []
    for spec in specs:
        for layer in _resolve_one(str(spec).strip().lower(), n_layer, model_name):
            if layer not in out:
                out.append(layer)
    if not out:
        raise W2SError("no layer requested; give --layer last, middle, all, a block number or a fraction")
    return out


def _resolve_one(spec: str, n_layer: int, model_name: str) -> list[Layer]:
    limit = f"{model_name} has {n_layer} blocks (0..{n_layer - 1})"
    if spec == LAST:
        return [LAST]
    if spec == "middle":
        return [max((n_layer + 1) // 2 - 1, 0)]
    if spec == "all":
        return [*range(n_layer), LAST]
    try:
        index = int(spec)
    except ValueError:
        pass
    else:
        if not -n_layer <= index < n_layer:
            raise W2SError(f"{limit}; --layer {spec} is out of range (negative numbers count from the end, down to -{n_layer})")
        return [index % n_layer]
    try:
        frac = float(spec)
    except ValueError:
        raise W2SError(f"--layer {spec!r} is not a layer; use last, middle, all, a block number "
                       f"(0..{n_layer - 1}, negative from the end) or a fraction in (0, 1]") from None
    if not (0 < frac <= 1) or not math.isfinite(frac):
        raise W2SError(f"{limit}; --layer {spec} is not a fraction in (0, 1] (0.5 = the middle, 1.0 = the last block)")
    # Hidden state round(f*L) (half rounds up, unlike Python's round) is the output of block round(f*L) - 1.
    return [max(math.floor(frac * n_layer + 0.5) - 1, 0)]


def check_layer_spec(spec: str) -> None:
    """The form of one spec, before any model is known (the range is checked per model later)."""
    if spec in (LAST, "middle", "all"):
        return
    try:
        int(spec)
        return
    except ValueError:
        pass
    try:
        frac = float(spec)
    except ValueError:
        frac = float("nan")
    if not (0 < frac <= 1):
        raise SettingError("layers", f"has {spec!r}, which is not a layer; use last, middle, all, a block number "
                                     f"(0-based, negative from the end) or a fraction in (0, 1]")


def expand_all(specs: list[str], n_layers: list[int]) -> list[str]:
    """"all" for several models of different depth: one relative depth per block of the shallowest
    model (k/L for k = 1..L), then last, so every spec names one layer in every model."""
    shallowest = min(n_layers)
    out: list[str] = []
    for spec in specs:
        extra = [_fraction(k / shallowest) for k in range(1, shallowest + 1)] + [LAST] if spec == "all" else [spec]
        out += [e for e in extra if e not in out]
    return out


def _fraction(f: float) -> str:
    """A relative depth as a spec that reads as a fraction: "1" would mean block 1, so 1.0 is "1.0"."""
    text = f"{f:.4g}"
    return text if "." in text else f"{text}.0"


def layer_label(layer: Layer) -> str:
    return "last (final norm)" if layer == LAST else f"block {layer}"


def relative_depth(layer: Layer, n_layer: int) -> float:
    """Block N of L sits at (N+1)/L; LAST (the final norm) at 1.0."""
    return 1.0 if layer == LAST else (int(layer) + 1) / n_layer


def layer_depths(layers: Iterable[Layer], n_layer: int) -> list[dict]:
    """Relative depth of each layer for plots, LAST marked as the final norm."""
    return [{"layer": layer, "label": layer_label(layer), "depth": relative_depth(layer, n_layer),
             "final_norm": layer == LAST} for layer in layers]


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
