"""A test hook: stop a process at an exact point of its work, whatever the machine's speed.

Tests of kills, Ctrl-C and locks need the signal to land at a known point
(after shard 2 is on disk, between two shards, while the lock is held); a
wall-clock delay lands elsewhere on a faster machine. The variable

    W2S_GGUF_TEST_STOP=WHERE:N:ACTION[:FIFO]

stops the process the N-th time the pipeline reaches WHERE, counted in this
process: `shard` (after shard N is written, manifest included; shard:0 is
right after the model is loaded, before the first batch) or `batch` (after
batch N is computed and any shard it completed is written). ACTION `kill`
SIGKILLs the process; `hold` blocks until a writer opens FIFO and closes it
(a named pipe the test made). Either first prints one line to stderr, so a
test can wait for it. Unset (always, outside tests) it costs one lookup.
"""

from __future__ import annotations

import os
import signal
import sys

STOP_ENV = "W2S_GGUF_TEST_STOP"


def stop_point(where: str, count: int, detail: str = "") -> None:
    spec = os.environ.get(STOP_ENV)
    if not spec:
        return
    kind, n, action, *fifo = spec.split(":", 3)
    if kind != where or int(n) != count:
        return
    print(f"[w2s-gguf] test hook: {action} after {where} {count}{detail}", file=sys.stderr, flush=True)
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "hold":
        with open(fifo[0], "rb") as pipe:  # blocks until the test opens the other end, then reads to its close
            pipe.read()
    else:
        raise ValueError(f"{STOP_ENV}: unknown action {action!r} (kill or hold)")
