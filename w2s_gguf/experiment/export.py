"""`w2s-gguf embed`: a task's features as OUT.npy plus OUT.docs.jsonl, for use elsewhere.

Row i of the array is line i of the sidecar. With a user's `--data` file the
rows follow the file's own order, so row i is the file's i-th usable row
(each sidecar line also names its `row` in the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..features.pipeline import DEFAULT_SHARD_DOCS, EmbeddingResult, embed_layers
from ..features.engine import DEFAULT_MAX_TOKENS
from ..errors import SettingError, W2SError
from ..features.layers import LAST, check_layer_spec, resolve_layers
from ..models import load_registry, resolve_model
from ..common.storage import atomic_save_npy, atomic_write_text, check_writable_dir
from ..tasks import Doc, TaskOptions, get_task

SPLITS = ("train", "test", "all")


@dataclass
class ExportResult:
    features_path: Path
    docs_path: Path
    n_docs: int
    source: str
    embedding: EmbeddingResult  # the first layer's (counts and timings are shared by all layers)
    layers: list[str]


def export_features(model: str, task: str, out: str | Path, options: TaskOptions | None = None, split: str = "all",
                    limit: int | None = None, pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                    n_gpu_layers: int = -1, n_threads: int | None = None, registry: str | None = None,
                    progress: bool = True, shard_docs: int = DEFAULT_SHARD_DOCS, layers: list[str] | None = None,
                    store_dtype: str = "float32", ray: str | None = None) -> ExportResult:
    """Features of a task's docs (a user's file: in its order) at one layer (docs x dim) or several
    (docs x layers x dim, the layer list in OUT.layers.json)."""
    out = Path(out)
    if split not in SPLITS:
        raise SettingError("split", f"must be train, test or all (got {split!r})")
    if limit is not None and limit <= 0:
        raise SettingError("limit", f"must be positive (got {limit})")
    if shard_docs <= 0:
        raise SettingError("shard_docs", f"must be positive (got {shard_docs})")
    if out.suffix != ".npy":
        raise SettingError("out", f"must end in .npy (got {out.name})")
    check_writable_dir(out.parent if str(out.parent) else Path("."))
    options = options or TaskOptions()
    loaded = get_task(task).load(options)
    rows: list[tuple[str, Doc]] = []
    for name in (("train", "test") if split == "all" else (split,)):
        rows += [(name, d) for d in getattr(loaded, name)[:limit]]
    if not rows:
        raise W2SError("no docs to embed; check the task, the data file and the split")
    if all(d.row is not None for _, d in rows):  # a user's file: keep its order
        rows.sort(key=lambda r: r[1].row)
    resolved = resolve_model(model, load_registry(registry))
    specs = layers or [LAST]
    for spec in specs:
        check_layer_spec(spec)
    chosen = [LAST] if specs == [LAST] else resolve_layers(specs, resolved.n_layer or 0, resolved.name)
    texts = [d.text for _, d in rows]
    if ray:
        if chosen != [LAST]:
            raise SettingError("ray", "works with --layer last only (layer capture on a cluster is not built yet)")
        from ..features.cluster import embed_texts_ray

        by_layer = {LAST: embed_texts_ray(resolved, texts, pooling, max_tokens, n_gpu_layers, n_threads, shard_docs,
                                          address=ray, progress=progress)}
    else:
        by_layer = embed_layers(resolved, texts, chosen, pooling, max_tokens, n_gpu_layers, n_threads,
                                shard_docs=shard_docs, progress=progress, store_dtype=store_dtype)
    result = by_layer[chosen[0]]
    if len(chosen) == 1:
        atomic_save_npy(out, result.features)
    else:
        atomic_save_npy(out, np.stack([by_layer[layer].features for layer in chosen], axis=1))
        atomic_write_text(out.with_suffix(".layers.json"), json.dumps(
            {"layers": [str(layer) for layer in chosen], "n_layer": resolved.n_layer,
             "axis": "docs x layers x dim; 'last' is the pooled final norm, numbers are 0-based blocks"}) + "\n")
    docs_path = out.with_suffix(".docs.jsonl")
    atomic_write_text(docs_path, "".join(
        json.dumps({"row": d.row, "split": s, "label": d.label, "group": d.group, "text": d.text}) + "\n" for s, d in rows))
    return ExportResult(out, docs_path, len(rows), loaded.source, result, [str(layer) for layer in chosen])
