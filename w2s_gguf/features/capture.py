"""The extraction engine: any layer request from one forward pass that computes only what it needs.

llama.cpp calls an eval callback (`llama_context_params.cb_eval`) for each
node of its compute graph: asked first whether we want a tensor, then again
once that tensor is computed. `LayerEmbedder` wants the tensors the request
needs, `result_norm` for "last" (the final norm: llama.cpp's last-pooled
embedding is its row of each sequence's last token) and `l_out-N` for block N
(llama.cpp's tensor names), pools each one per sequence inside the callback (a batch
keeps n_seq x layers x dim floats), and returns False once it has them all:
ggml's scheduler then ends the graph there, so the blocks after the deepest
one and the LM head (vocabulary x dim per token) are never computed.

The scheduler ends only the current split (a run of nodes on one backend) on
False; later splits (partial GPU offload, ops a GPU backend leaves on the CPU)
would still run, on inputs never computed. So once finished the callback wants
the first node of every later split and ends that split right after it: each
later split computes one node.

Before it trusts a stopped graph the engine checks, on its first decode of the
whole graph, that what it read from result_norm is llama.cpp's own pooled
embedding; where that tensor is missing or differs, or stopping is unsafe, it
runs the whole graph and reads "last" from llama.cpp, after one warning line.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import signal
import threading
from typing import Iterable

import numpy as np

from ..common.llama_logs import quiet_llama_logs
from ..errors import W2SError
from ..models.modelfile import ResolvedModel
from .engine import DEFAULT_MAX_TOKENS, Embedder, warn_once
from .layers import LAST, resolve_layers

RESULT_NORM = b"result_norm"  # llama.cpp's name for the final norm's output (res->t_embd) in llama, gemma3, qwen2...
# Mean pooling: llama.cpp averages result_norm's rows with a matrix product, we with numpy (another summation
# order), so the check on the first decode allows float32 rounding, relative to the vector's largest entry.
# A GPU backend runs that product in its own precision (Vulkan on llvmpipe: 4.1e-4); reading another tensor
# than the one llama.cpp pools would differ by the size of the entries themselves.
MEAN_TOLERANCE = 1e-5
MEAN_TOLERANCE_GPU = 2e-3


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


def tensor_name(layer) -> bytes:
    return RESULT_NORM if layer == LAST else f"l_out-{layer}".encode()


def stop_unsafe(metadata: dict, architecture: str, gpu_offload: bool) -> str | None:
    """Why ending the graph early could go wrong for this model file and device, or None."""
    experts = metadata.get(f"{architecture}.expert_count", "0")
    if gpu_offload and experts not in ("0", ""):
        # Before a later split runs, the scheduler copies only the experts it uses, reading their ids from
        # an earlier split's output: after a stop those ids were never computed (ggml asserts their range).
        return f"a mixture-of-experts model ({experts} experts) offloaded to a GPU cannot end its graph early"
    return None


# ---------------------------------------------------------------- engine

class LayerEmbedder(Embedder):
    """The extraction engine: embed_batch -> (n_seq, len(layers), dim) float32, every requested layer.

    `graph` says how each decode runs: "probe" (the whole graph, once, to check result_norm against
    llama.cpp's pooled output), then "stopped" (ends after the deepest requested tensor) or "full"
    (the whole graph; "last" read from llama.cpp). A request without "last" stops from the first decode.
    """

    def __init__(self, model: ResolvedModel, pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                 layers: Iterable[str | int] = (LAST,), n_gpu_layers: int = -1, n_threads: int | None = None,
                 stop_early: bool = True, extra_buffers: bool = False):
        super().__init__(model, pooling, max_tokens, n_gpu_layers, n_threads, extra_buffers)
        import llama_cpp

        self.n_layer = int(llama_cpp.llama_model_n_layer(self.llm._model.model))
        try:
            self.layers = resolve_layers(layers, self.n_layer, model.name)
        except W2SError:
            self.close()
            raise
        self._slots = {tensor_name(layer): k for k, layer in enumerate(self.layers)}
        self.graph = "probe" if LAST in self.layers else "stopped"
        unsafe = stop_unsafe(self.llm.metadata, model.architecture, self.gpu_offload)
        if not stop_early or unsafe:
            self.graph = "full"
            if unsafe:
                warn_once(f"{model.name}: {unsafe}, so every decode computes the whole graph (slower, same features)")
        # Decodes run, decodes ended early, and nodes computed after the end (one per later split).
        self.stats = {"decodes": 0, "stopped": 0, "late_nodes": 0}
        self._out = np.zeros((0, len(self.layers), self.dim), np.float32)
        self._rows = np.empty((self.n_ctx, self.dim), np.float32)  # one tensor's rows (a whole batch), for mean pooling
        self._spans: list[tuple[int, int]] = []
        self._pending: set[int] = set()
        self._stopping = self._finished = False
        self._error: BaseException | None = None
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
        # Called from inside llama_decode for graph nodes: keep it cheap, and never raise
        # (an exception here would be lost; it is re-raised after llama_decode returns).
        try:
            if self._finished:  # everything read: take this split's first node and end the split after it
                self.stats["late_nodes"] += not ask
                return bool(ask)
            slot = self._slots.get(self._lib.ggml_get_name(tensor))
            if ask:
                return slot is not None
            if slot is not None:
                self._pool(tensor, slot)
                self._pending.discard(slot)
                if self._stopping and not self._pending:
                    self._finished = True
                    return False  # ends this split: nothing after the deepest tensor is computed
        except BaseException as exc:
            self._error = self._error or exc
        return True

    def _pool(self, tensor, slot: int) -> None:
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

    def embed_batch(self, token_lists: list[list[int]]) -> np.ndarray:
        """(n_seq, len(self.layers), dim): every requested layer of each sequence, from one decode."""
        ends = np.cumsum([len(t) for t in token_lists]).tolist()
        self._spans = [(end - len(t), end) for t, end in zip(token_lists, ends)]
        self._out = np.zeros((len(token_lists), len(self.layers), self.dim), np.float32)
        self._pending, self._error = set(self._slots.values()), None
        self._stopping, self._finished = self.graph == "stopped", False
        try:
            with ctrl_c_after_decode():
                self.decode(token_lists)
        finally:
            out, self._out = self._out, self._out[:0]
            self.stats["decodes"] += 1
            self.stats["stopped"] += self._finished
            self._finished = False
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        missing = [self.layers[k] for k in self._pending if self.layers[k] != LAST]
        if missing:
            raise W2SError(
                f"{self.model.name} (architecture {self.model.architecture!r}): llama.cpp computed no tensor "
                f"l_out-{missing[0]} ({len(missing)} requested blocks missing); this architecture names its block "
                f"outputs differently, so only --layer last works with it")
        if LAST not in self.layers:
            return out
        k = self.layers.index(LAST)
        if self.graph == "stopped":
            if k in self._pending:  # cannot happen once the probe passed; never return the zeros
                self._give_up_stopping("computed no tensor result_norm in a stopped decode")
                return self.embed_batch(token_lists)
            return out
        pooled = self.pooled(len(token_lists))  # the whole graph ran: llama.cpp's own vectors are valid
        if self.graph == "probe":
            why = "has no tensor named result_norm" if k in self._pending else self._disagreement(out[:, k], pooled)
            if why is None:
                self.graph = "stopped"
                return out  # our own pooling from now on, this batch included (mean: one summation order)
            self._give_up_stopping(why)
        out[:, k] = pooled
        return out

    def _disagreement(self, ours: np.ndarray, pooled: np.ndarray) -> str | None:
        if self.pooling == "last":
            return None if np.array_equal(ours, pooled) else "reads a result_norm that is not its pooled output"
        scale = np.abs(pooled).max(axis=1, keepdims=True)
        worst = float((np.abs(ours - pooled) / np.maximum(scale, 1e-30)).max())
        tolerance = MEAN_TOLERANCE_GPU if self.gpu_offload else MEAN_TOLERANCE
        return None if worst <= tolerance else f"averages result_norm to other vectors (relative difference {worst:.1e})"

    def _give_up_stopping(self, why: str) -> None:
        self.graph = "full"
        warn_once(f"{self.model.name} (architecture {self.model.architecture!r}): llama.cpp's graph {why}, so every "
                  f"decode computes the whole graph and reads 'last' from llama.cpp (slower, same features)")


@contextlib.contextmanager
def ctrl_c_after_decode():
    """Hold Ctrl-C (SIGINT) until llama_decode returns, then raise it as usual.

    Python runs a signal's handler at the next bytecode, which may be in the eval callback before its
    `try`: ctypes then prints the KeyboardInterrupt ("Exception ignored on calling ctypes callback") and
    drops it, and the callback's default return ends the graph, so the run went on, slower, and the Ctrl-C
    was lost (seen once by hand). Only the main thread can set handlers; an ignored SIGINT stays ignored.
    """
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if not callable(previous):
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        previous(signal.SIGINT, None)
