"""Results as a tidy table for notebooks: one row per (pair or model, layer, method, seed, metric).

    df = load_results(folder).to_frame()
    df[(df.metric == "acc") & (df.kind == "transfer")].pivot_table(index="method", columns="seed", values="value")

Columns: kind ("ceiling": a model's head on true labels; "pair": the weak and strong
ceilings of a pair, method empty; "transfer": a method's student; "summary": a method
over seeds, seed empty; "text_baseline": the words alone, per seed and over seeds), model
(ceilings), weak, strong, layer, method, seed, metric, value.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import pandas

    from .schema import Results

COLUMNS = ["kind", "model", "weak", "strong", "layer", "method", "seed", "metric", "value"]


def _numbers(obj: Any, prefix: str = "") -> Iterator[tuple[str, float | None]]:
    """(metric, value) for every number field of a schema object; intervals as _low/_high, nested as a.b."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        name = prefix + f.name
        if isinstance(value, bool) or f.name in ("seed",):
            continue
        if isinstance(value, (int, float)) or (value is None and f.type in ("float | None", "int | None")):
            yield name, None if value is None else float(value)
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
            yield f"{name}_low", float(value[0])
            yield f"{name}_high", float(value[1])
        elif hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
            yield from _numbers(value, f"{name}.")


def results_frame(results: "Results") -> "pandas.DataFrame":
    import pandas

    rows = []

    def add(kind, layer, metric, value, model=None, weak=None, strong=None, method=None, seed=None):
        rows.append((kind, model, weak, strong, layer, method, seed, metric, value))

    for gt in results.ground_truth:
        for score in gt.per_seed:
            for metric, value in _numbers(score):
                add("ceiling", gt.layer, metric, value, model=gt.model, seed=score.seed)
    for pair in results.pairs:
        ids = dict(weak=pair.weak, strong=pair.strong)
        for row in pair.per_seed:
            for metric in ("weak_acc", "weak_auroc", "strong_acc", "strong_auroc"):
                add("pair", pair.layer, metric, getattr(row, metric), seed=row.seed, **ids)
            for method, score in row.transfer.items():
                for metric, value in _numbers(score):
                    add("transfer", pair.layer, metric, value, method=method, seed=row.seed, **ids)
        for method, summary in pair.summary.items():
            for metric, value in _numbers(summary):
                add("summary", pair.layer, metric, value, method=method, **ids)
    if results.text_baseline is not None:  # the words alone: per seed, then acc_mean with its interval
        for score in results.text_baseline.per_seed:
            for metric, value in _numbers(score):
                add("text_baseline", None, metric, value, seed=score.seed)
        for metric, value in _numbers(results.text_baseline):
            add("text_baseline", None, metric, value)
    frame = pandas.DataFrame(rows, columns=COLUMNS)
    frame["seed"] = frame["seed"].astype("Int64")
    return frame
