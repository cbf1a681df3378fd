"""One loaded GGUF model in llama.cpp's embedding mode: a thin wrapper over llama-cpp-python.

It tokenizes, cuts long texts from the left (last-token pooling needs the
end), decodes several texts in one llama.cpp batch and reads the pooled
vector of each sequence. Decoding the whole graph this way is llama.cpp's own
embedding throughput: `w2s-gguf bench` measures against it. Extraction runs
`capture.LayerEmbedder`, which loads the model through this class and then
computes only what the features need.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

import numpy as np

from ..errors import SettingError, W2SError
from ..common.llama_logs import quiet_llama_logs
from ..models.modelfile import ResolvedModel

POOLINGS = ("last", "mean")
DECODES = ("auto", "alone", "packed")  # how texts share a llama.cpp batch (texts_per_batch)
DEFAULT_MAX_TOKENS = 512
# Tokens per llama.cpp batch, per backend. CPU: texts are now decoded one at a
# time (texts_per_batch), so this only bounds a context; when several were
# packed, 256 ran 5-7% faster than 512 here (2 cores, SmolLM2, short and long
# docs), and larger batches slower still (embed(): 264 tok/s at n_batch 2048, 368 at 512). GPU (NOT
# measured: no GPU was lent to this project): llama.cpp's own default n_batch,
# 2048, since a GPU is starved by small batches. A longer text gets a batch alone.
BATCH_TOKENS = 256
GPU_BATCH_TOKENS = 2048


def batch_tokens(max_tokens: int, gpu_offload: bool = False) -> int:
    if gpu_offload:
        return max(GPU_BATCH_TOKENS, max_tokens)
    return min(BATCH_TOKENS, max_tokens)


def texts_per_batch(gpu_offload: bool = False, decode: str = "auto") -> int | None:
    """1: each text is decoded alone; None: as many as fit in a batch. `decode` "auto" is 1 on the CPU and
    None on a GPU; "alone" and "packed" ask for one or the other anywhere (versions before 0.3.1 packed
    on the CPU too, and `reproduce` reruns their files packed, which gets their numbers back).

    llama.cpp's attention sums over the KV cells of the whole batch in SIMD lanes, so packed with other
    texts a text's vector moved with the lengths of the texts before it (up to 8e-2 of gemma-3's
    largest entry, cosine 0.9981), and a cached vector with whichever docs happened to be computed
    together. Alone, a vector is a function of its text; on the CPU that cost 2-13% of packed
    throughput on short docs (docs/performance.md#batch-independent-features). A GPU needs batches.
    """
    check_decode(decode)
    if decode == "auto":
        return None if gpu_offload else 1
    return 1 if decode == "alone" else None


def check_decode(decode: str) -> None:
    if decode not in DECODES:
        raise SettingError("decode", f"must be one of {', '.join(DECODES)} (got {decode!r})")


def extra_buffers(per_batch: int | None) -> bool:
    """llama.cpp's extra weight buffers for packed decoding only (weight_buffers says why)."""
    return per_batch is None


def gpu_offload(n_gpu_layers: int, warn: bool = False) -> bool:
    """Whether layers go to a GPU: this llama.cpp build has a GPU backend and --n-gpu-layers is not 0.
    `warn`: a layer count asked of a build without one says once that it has no effect (the engines do)."""
    import llama_cpp

    supported = bool(llama_cpp.llama_supports_gpu_offload())
    if warn and n_gpu_layers > 0 and not supported:
        warn_once("this llama-cpp-python build has no GPU backend, so --n-gpu-layers has no effect and "
                  "everything runs on the CPU; `w2s-gguf doctor` says how to install a GPU build")
    return supported and n_gpu_layers != 0


def op_offload(n_gpu_layers: int) -> bool | None:
    """False where layers stay on the CPU (--n-gpu-layers 0 or a count), else llama.cpp's default.

    With op offload llama.cpp runs a large batch's matmuls of CPU-held weights on the GPU, copying the
    weights over. On the Vulkan stand-in (scripts/vulkan_check.sh, SmolLM2): at --n-gpu-layers 10 a
    260-token batch then crashed in llama_decode (segfault: the layer engine's first stopped decode, and
    a plain context's once the engine beside it had decoded); at --n-gpu-layers 0 the device still ran
    the blocks' matmuls (a graph stopped after block 8: 1.27x the whole graph with op offload, 3.55x
    and the CPU build's features without). Without it CPU layers run on the CPU, where they were placed.
    """
    return None if n_gpu_layers < 0 else False


_warned: set[str] = set()


@functools.cache
def cpu_amx_matmuls() -> bool:
    """Whether this llama.cpp build multiplies with the CPU's AMX tiles (built natively on Sapphire Rapids or newer)."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


@contextlib.contextmanager
def weight_buffers(extra: bool):
    """Load models inside this block with llama.cpp's extra CPU weight buffers on (its default) or off.

    The extra buffers hold weights repacked for kernels whose result for a row depends on how many rows a
    decode holds: on a 2-core AMD EPYC, gemma-3 Q4_K_M's score of a 5-shot prompt differed by up to 0.11
    between the prefix decoded first and the whole prompt at once, and its features by 4e-2 of the
    largest entry from the plain kernels', at the same speed (plain 1.02x). Off, the weights stay in the
    ordinary CPU buffer and the plain kernels run: decoded alone, a vector or score is then the same
    however its tokens are split into decodes. Packed decoding keeps llama.cpp's default, as before 0.3.1.
    They are off wherever the build has AMX: its matmul segfaults on the first decode of these models
    (llama.cpp#20824, seen on a Sapphire Rapids VM with SmolLM2 Q4_1 and gemma-3 Q4_K_M). `Llama()` takes no
    argument for this field of llama_model_params, so its defaults are changed for the duration of the load.
    """
    if extra and not cpu_amx_matmuls():
        yield
        return
    import llama_cpp.llama as high_level

    original = high_level.llama_cpp.llama_model_default_params

    def defaults():
        params = original()
        params.use_extra_bufts = False
        return params

    high_level.llama_cpp.llama_model_default_params = defaults
    try:
        yield
    finally:
        high_level.llama_cpp.llama_model_default_params = original


def warn_once(message: str) -> None:
    """A warning printed once per process, however many models are loaded."""
    if message not in _warned:
        _warned.add(message)
        print(f"[w2s-gguf] warning: {message}", file=sys.stderr, flush=True)


class Embedder:
    """One loaded GGUF model in embedding mode (one load per model per run)."""

    def __init__(self, model: ResolvedModel, pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                 n_gpu_layers: int = -1, n_threads: int | None = None, extra_buffers: bool = False):
        if pooling not in POOLINGS:
            raise SettingError("pooling", f"must be last or mean (got {pooling!r})")
        if max_tokens < 8:
            raise SettingError("max_tokens", f"must be at least 8 (got {max_tokens})")
        import llama_cpp

        pooling_type = {"last": llama_cpp.LLAMA_POOLING_TYPE_LAST, "mean": llama_cpp.LLAMA_POOLING_TYPE_MEAN}[pooling]
        if n_threads is None:
            n_threads = default_threads()
        self.model = model
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.gpu_offload = gpu_offload(n_gpu_layers, warn=True)
        self.extra_buffers = extra_buffers
        self.batch_tokens = batch_tokens(max_tokens, self.gpu_offload)
        # One batch's tokens: batch_tokens (2048 on a GPU), or one text of up to max_tokens alone.
        self.n_ctx = context = max(max_tokens, self.batch_tokens)
        try:
            with quiet_llama_logs(), weight_buffers(extra_buffers):
                # n_ctx = n_batch = n_ubatch: a batch is decoded in one pass, and one text fits in it.
                self.llm = llama_cpp.Llama(
                    model_path=str(model.path), embedding=True, pooling_type=pooling_type,
                    n_ctx=context, n_batch=context, n_ubatch=context,
                    n_gpu_layers=n_gpu_layers, n_threads=n_threads, n_threads_batch=n_threads, verbose=False,
                    op_offload=op_offload(n_gpu_layers),
                )
        except (ValueError, RuntimeError, OSError) as exc:
            fix = ("try --n-gpu-layers 0 (CPU) or a smaller --max-tokens; `w2s-gguf doctor` checks the GPU setup"
                   if self.gpu_offload else "the file may be damaged or need a newer llama-cpp-python "
                   f"(have {llama_cpp.__version__})")
            raise W2SError(f"llama.cpp could not load {model.path} (architecture {model.architecture!r}: {exc}); {fix}") from None
        self.dim = int(self.llm.n_embd())
        # Batches run on n_threads_batch (Llama() would default it to every core, whatever n_threads says).
        self.n_threads = int(self.llm.context_params.n_threads_batch)

    def tokenize(self, text: str) -> tuple[list[int], bool]:
        """Tokens of `text` cut to max_tokens from the left, keeping BOS; and whether it was cut."""
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        if len(tokens) <= self.max_tokens:
            return tokens, False
        bos = self.llm.token_bos()
        if tokens and tokens[0] == bos:
            return [bos] + tokens[-(self.max_tokens - 1):], True
        return tokens[-self.max_tokens:], True

    def embed_batch(self, token_lists: list[list[int]]) -> np.ndarray:
        """Pooled vectors of sequences decoded together in one llama.cpp batch (the whole graph)."""
        self.decode(token_lists)
        return self.pooled(len(token_lists))

    def decode(self, token_lists: list[list[int]], outputs: str = "all") -> None:
        """One llama_decode of the sequences, a fresh KV cache each time.

        outputs="all" marks every token an output (embedding mode forces it anyway); "last" marks
        each sequence's last token only (a context in logits mode then computes the final block's
        feed-forward and norm for those rows alone).
        """
        if sum(map(len, token_lists)) > self.n_ctx:
            raise ValueError(f"batch of {sum(map(len, token_lists))} tokens exceeds the context of {self.n_ctx}")
        llm = self.llm
        llm._batch.reset()
        for seq_id, tokens in enumerate(token_lists):
            llm._batch.add_sequence(tokens, seq_id, outputs == "all")  # the last token is always an output
        llm._ctx.kv_cache_clear()
        try:
            llm._ctx.decode(llm._batch)
        except RuntimeError as exc:  # llama_decode's return code, e.g. out of memory on the GPU
            raise W2SError(f"llama.cpp failed to decode a batch of {self.model.name} ({exc}); "
                           f"try a smaller --max-tokens or fewer --n-gpu-layers") from None
        finally:
            llm._batch.reset()

    def pooled(self, n_seq: int) -> np.ndarray:
        """llama.cpp's pooled vector of each sequence of the last decode (valid only after the whole graph)."""
        import llama_cpp

        out = np.empty((n_seq, self.dim), dtype=np.float32)
        for seq_id in range(n_seq):
            ptr = llama_cpp.llama_get_embeddings_seq(self.llm._ctx.ctx, seq_id)
            out[seq_id] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
        return out

    def engine_tokens_per_second(self, n_tokens: int | None = None, repeats: int = 3) -> float:
        """llama.cpp's own throughput on one sequence of `n_tokens` (the benchmark's yardstick)."""
        n = min(n_tokens or self.max_tokens, self.max_tokens)
        vocab = int(self.llm.n_vocab())
        rng = np.random.default_rng(0)
        tokens = [self.llm.token_bos()] + rng.integers(100, min(vocab, 30000), n - 1).tolist()
        self.embed_batch([tokens])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self.embed_batch([tokens])
            times.append(time.perf_counter() - start)
        return n / float(np.median(times))  # the median, like a typical batch of the pipeline (not the best)

    def close(self) -> None:
        self.llm.close()


def default_threads() -> int:
    """All cores on small machines; about the physical cores on big ones (SMT does not help llama.cpp)."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return n if n <= 4 else max(4, n // 2)


