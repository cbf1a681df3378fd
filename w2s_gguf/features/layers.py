"""Layer specs, as a user types them, and the blocks they name in a model.

Specs: "last"; "middle" (block (L+1)//2 - 1,
i.e. EleutherAI's hidden state (L+1)//2); a block number N (0-based, negative
from the end); a fraction f in (0, 1] (hidden state round(f*L), i.e. block
round(f*L) - 1); "all" (every block, then "last").
"""

from __future__ import annotations

import math
from typing import Iterable, Union

from ..errors import SettingError, W2SError

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
