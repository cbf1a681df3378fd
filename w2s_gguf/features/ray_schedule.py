"""Ray workers: reserving their resources before starting them, so a run never waits forever for
them, and what every worker does first (`ModelWorker`).

An actor that asks for more than any node has (a GPU on a CPU cluster, more
CPUs than a node holds) stays pending forever, and so would the run. The
workers' resources are therefore reserved first, as one placement group:
a request no node could ever hold fails at once, and one the cluster cannot
free (other jobs hold the CPUs or GPUs) fails after SCHEDULE_TIMEOUT; each
with one line naming what could not be scheduled and what the cluster has.
The workers then run in the reserved bundles.
"""

from __future__ import annotations

import os
from typing import Callable

from ..errors import W2SError
from ..models import ModelEntry, ResolvedModel, ensure_model, resolve_model

SCHEDULE_TIMEOUT = 60.0  # seconds for the cluster to make room for every worker (model loading comes after)
NODE_ID = "ray.io/node-id"  # Ray's own label of each node, to pin a bundle to the node it was planned for


def describe(resources: dict) -> str:
    """{"CPU": 2.0, "GPU": 1.0} -> "1 GPU, 2 CPUs"; memory and node labels left out."""
    parts = []
    for name in sorted(resources, key=lambda k: ({"GPU": 0, "CPU": 1}.get(k, 2), k)):  # GPU first: the scarce one
        amount = resources[name]
        if name in ("memory", "object_store_memory") or name.startswith("node:") or not amount:
            continue
        count = f"{amount:g}"
        parts.append(f"{count} {name}" + ("s" if name in ("CPU", "GPU") and amount != 1 else ""))
    return ", ".join(parts) or "nothing"


def unschedulable(bundles: list[dict], nodes: list[dict]) -> list[dict]:
    """The bundles no alive node could ever hold, whatever else runs (`nodes` as `ray.nodes()` lists them)."""
    totals = [node["Resources"] for node in nodes if node.get("Alive")]
    return [b for b in bundles if not any(all(t.get(k, 0) >= v for k, v in b.items()) for t in totals)]


def reserve(ray, bundles: list[dict], pinned: list[str | None], what: str, timeout: float | None = None):
    """A placement group holding `bundles` (bundle i on node `pinned[i]` where given), or a one-line W2SError."""
    from ray.util.placement_group import placement_group, remove_placement_group

    timeout = SCHEDULE_TIMEOUT if timeout is None else timeout
    nodes = ray.nodes()
    have = "; ".join(describe(n["Resources"]) for n in nodes if n.get("Alive")) or "no alive nodes"
    impossible = unschedulable(bundles, nodes)
    if impossible:
        raise W2SError(f"no node of the Ray cluster has {describe(impossible[0])} for a {what} (its nodes have: {have}); "
                       f"add such a node, or pass --n-gpu-layers 0 / fewer --threads")
    selectors = [{NODE_ID: node} if node else {} for node in pinned]
    group = placement_group(bundles, strategy="PACK", bundle_label_selector=selectors if any(pinned) else None)
    if not group.wait(timeout_seconds=timeout):
        remove_placement_group(group)
        free = describe(ray.available_resources())
        raise W2SError(f"the Ray cluster could not make room for {len(bundles)} {what}(s) of {describe(bundles[0])} "
                       f"each within {timeout:g} s (free now: {free}; in total: {have}); other jobs hold its resources: "
                       f"wait for them, or pass --threads to ask for less")
    return group


def in_group(group, index: int):
    """The scheduling strategy that runs an actor in bundle `index` of a reserved group."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)


class ModelWorker:
    """What every Ray actor here does first: resolve the model on its own node and load it once (`_start`).
    A load error is kept and raised by every call (`ready`): a failed __init__ would read as a crash."""

    def _start(self, spec: ModelEntry | str, load: Callable[[ResolvedModel], object]):
        import socket

        import llama_cpp
        import ray

        self.node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
        self.error = None
        try:
            model = ensure_model(spec) if isinstance(spec, ModelEntry) else resolve_model(spec)
            engine = load(model)
        except W2SError as exc:
            self.error = f"{exc} (on Ray worker {self.node})"
            return None
        self.meta = {"sha256": model.sha256, "llama_cpp": llama_cpp.__version__,
                     "gpu_offload": engine.gpu_offload, "node": self.node, "pid": os.getpid()}
        return engine

    def ready(self) -> dict:
        if self.error:
            raise W2SError(self.error)
        return self.meta
