"""Ray workers: reserving their resources before starting them, so a run never waits forever for
them, what every worker does first (`ModelWorker`), and the driver's loop that feeds them shards and
writes their results in plan order (`run_in_plan_order`), for extraction and scoring alike.

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
import re
from pathlib import Path
from typing import Callable

from ..errors import W2SError
from ..models import ModelEntry, ResolvedModel, ensure_model, resolve_model

MAX_RESTARTS = 3  # a dead actor process is restarted this often (model reloaded) ...
MAX_TASK_RETRIES = 3  # ... and its unfinished shards are sent again this often
IN_FLIGHT = 2  # shards queued per actor, so it never waits for the driver between shards
LOOKAHEAD = 8  # shards sent ahead of the oldest unwritten one, per actor (bounds what a straggler holds back)
INSTALL_HINT = "install it with pip install 'w2s-gguf[ray]'"
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


def import_ray():
    try:
        import ray
    except ImportError:
        raise W2SError(f"--ray needs Ray, which is not installed; {INSTALL_HINT}") from None
    return ray


def connect(ray, address: str) -> bool:
    """Join the cluster; True when this call made the connection (and so closes it)."""
    if ray.is_initialized():
        return False
    if not (address == "auto" or address.startswith("ray://") or re.fullmatch(r"[\w.\-\[\]:]+:\d+", address)):
        raise W2SError(f"Ray address {address!r} is not auto, ray://HOST:PORT or HOST:PORT; pass the head node's address")
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise W2SError(f"cannot join the Ray cluster at {address} ({first}); start one with `ray start --head` "
                       f"or check the address") from None
    return True


def place_actors(ray, worker: type, args: tuple, n_threads: int | None, use_gpus: bool,
                 **options) -> tuple[list, object]:
    """One `worker(*args, threads, **options)` actor per GPU; on CPUs, one per `n_threads` cores of each node.

    Their resources are reserved first (ray_schedule.reserve): what the cluster cannot hold, or cannot
    free in time, fails with one line instead of waiting forever. Returns the actors and their group.
    """
    remote = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(worker)
    workers: list[tuple[dict, int | None, str | None]] = []  # (resources, threads, node) per actor
    if use_gpus:
        workers = [({"GPU": 1.0, "CPU": 1.0}, n_threads, None)] * int(ray.cluster_resources()["GPU"])
    for node in [] if use_gpus else ray.nodes():
        cpus = int(node["Resources"].get("CPU", 0)) if node["Alive"] else 0
        threads = min(n_threads or (cpus if cpus <= 4 else max(4, cpus // 2)), cpus)
        workers += [({"CPU": float(threads)}, threads, node["NodeID"])] * (cpus // threads if cpus else 0)
    if not workers:
        raise W2SError("the Ray cluster has no CPUs or GPUs to run on; start workers with `ray start --address HEAD:PORT`")
    group = reserve(ray, [w[0] for w in workers], [w[2] for w in workers], "GPU worker" if use_gpus else "CPU worker")
    return [remote.options(num_cpus=res["CPU"], num_gpus=res.get("GPU", 0), scheduling_strategy=in_group(group, i))
            .remote(*args, threads, **options) for i, (res, threads, _) in enumerate(workers)], group


def run_in_plan_order(ray, actors: list, n_shards: int, submit: Callable[[object, int], object],
                      check: Callable[[int, dict], None], write: Callable[[int, dict], None], doing: str,
                      store_dir: Path, problems: list[str]) -> None:
    """Shards 0..n_shards-1 computed by the actors and written in plan order, whatever order they finish in.

    `submit(actor, i)` sends shard i (to the least loaded actor, IN_FLIGHT at a time each, at most LOOKAHEAD
    per actor ahead of the oldest unwritten one), `check(i, out)` refuses a wrong result, `write(i, out)`
    stores it: the store then always holds a prefix of the plan. A worker that came back with another pid
    was restarted by Ray; that goes into `problems`.
    """
    pending: dict = {}  # ObjectRef -> (shard index, actor index)
    finished: dict[int, dict] = {}
    load = [0] * len(actors)
    node = ["a Ray worker (starting)"] * len(actors)
    pid: list[int | None] = [None] * len(actors)
    sent = written = 0
    while written < n_shards:
        while sent < n_shards and sent < written + LOOKAHEAD * len(actors) and min(load) < IN_FLIGHT:
            j = load.index(min(load))
            pending[submit(actors[j], sent)] = (sent, j)
            load[j] += 1
            sent += 1
        [ref], _ = ray.wait(list(pending), num_returns=1)
        index, j = pending.pop(ref)
        load[j] -= 1
        out = fetch_shard(ray, ref, f"worker on {node[j]}", doing, written, store_dir)
        node[j] = out["node"]
        if pid[j] is not None and out["pid"] != pid[j]:
            problems.append(f"Ray worker on {out['node']} was restarted (pid {pid[j]} -> {out['pid']}); "
                            f"its unfinished shards were computed again")
        pid[j] = out["pid"]
        check(index, out)
        finished[index] = out
        while written in finished:
            write(written, finished.pop(written))
            written += 1


def fetch_shard(ray, ref, worker: str, doing: str, written: int, store_dir: Path) -> dict:
    """One shard's result from a Ray worker, or a one-line W2SError (finished shards stay cached).
    `worker` names it in the message ("worker on NODE"), `doing` says what it was at ("embedding")."""
    from ray.exceptions import RayActorError, RayError, RayTaskError

    resume = f"{written} shard(s) of this run are cached in {store_dir}; run the same command again to resume"
    try:
        return ray.get(ref)
    except RayTaskError as exc:
        if isinstance(exc.cause, W2SError):
            raise W2SError(str(exc.cause.args[0] if exc.cause.args else exc.cause)) from None
        raise W2SError(f"Ray {worker} failed while {doing} ({type(exc.cause).__name__}: {exc.cause}); {resume}") from None
    except RayActorError as exc:
        first = (str(exc).strip().splitlines() or ["no reason given"])[0]
        raise W2SError(f"Ray {worker} died after {MAX_RESTARTS} restarts ({first}); {resume}") from None
    except RayError as exc:
        raise W2SError(f"Ray failed while {doing} on its {worker} ({type(exc).__name__}); {resume}") from None


def check_worker(out: dict, model: ResolvedModel, settings) -> None:
    """Refuse a worker whose model file, llama-cpp-python or device differs from the driver's store
    settings (a StoreSettings or a ScoreSettings: both record the version and the device)."""
    if out["sha256"] != model.sha256:
        raise W2SError(f"Ray worker on {out['node']} has a different {model.name} file (sha256 {out['sha256'][:16]}..., "
                       f"driver {model.sha256[:16]}...); delete its cached copy so it fetches the same file")
    if out["llama_cpp"] != settings.llama_cpp_version:
        raise W2SError(f"Ray worker on {out['node']} runs llama-cpp-python {out['llama_cpp']}, the driver "
                       f"{settings.llama_cpp_version}; install the same version on every node")
    if out["gpu_offload"] != settings.gpu_offload:
        raise W2SError(f"Ray worker on {out['node']} has a GPU but its llama-cpp-python cannot offload; install the "
                       f"GPU build there (see README), or pass --n-gpu-layers 0 to run on CPUs")
