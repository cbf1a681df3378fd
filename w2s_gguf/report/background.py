"""report.md and the plots, written by a helper process that gets ready while the heads train.

A warm run is mostly imports: torch for the heads, and matplotlib plus its
fonts for the plots (about 1 s of a 4 s run here). A spawned helper (a fresh
interpreter, so no fork of torch's or llama.cpp's threads) imports
matplotlib on the other core meanwhile, then renders each results folder
from its results.json alone. Where the helper cannot start, dies, or fails,
the report is written in this process instead: the same files, and the
same error if there is one.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from pathlib import Path

from ..common.testhooks import stop_point
from ..results import Results
from . import write_report


def _serve(conn) -> None:
    """The helper: warm up, then write one folder's report per message until told to stop."""
    stop_point("report-helper", 0)  # test hook (common/testhooks.py): SIGINT is still blocked here
    # Ctrl-C is the main process's to handle; it stops us. SIGINT was blocked since before this process
    # existed (ReportWriter), so one that came while it started up stays pending and is dropped here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # Never outlive the main process: if it is killed (SIGKILL, out of memory) it cannot stop us.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(0)), daemon=True).start()
    from .plots import new_figure, png_bytes

    fig = new_figure(1, 1)  # what the first figure would pay for: matplotlib's imports and the font
    fig.text(0.5, 0.5, "w2s")
    png_bytes(fig)
    while (folder := conn.recv()) is not None:
        try:
            conn.send((True, [str(path) for path in write_report(folder)]))
        except Exception:  # the main process writes it again and meets the error itself
            conn.send((False, None))


def _start_deaf_to_ctrl_c(process) -> None:
    """Start `process` with SIGINT blocked from its first instruction (the mask survives fork and exec).

    Until the helper runs its first line it cannot ignore SIGINT itself, and a
    Ctrl-C in that window (its interpreter starting, ~0.2 s) would print its
    traceback beside the main process's message.
    """
    if not hasattr(signal, "pthread_sigmask"):
        process.start()
        return
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()  # when it first starts it unblocks SIGINT itself: start it before blocking
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class ReportWriter:
    """`with ReportWriter() as reports: ... reports.write(folder, results)` -> the paths written."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._writing = False
        self._conn, child = context.Pipe()
        self._helper: multiprocessing.process.BaseProcess | None = context.Process(
            target=_serve, args=(child,), name="w2s-gguf report", daemon=True)
        try:
            _start_deaf_to_ctrl_c(self._helper)
        except OSError:  # no processes here (a sandbox, a process limit): write in this process
            self._helper = None
        child.close()

    def write(self, folder: Path, results: Results) -> list[Path]:
        if self._helper is not None:
            ok, paths, died = False, None, False
            self._writing = True
            try:
                self._conn.send(str(folder))
                ok, paths = self._conn.recv()
            except (EOFError, OSError):
                died = True
            finally:
                self._writing = False
            if died:
                self.close()
            if ok:
                return [Path(p) for p in paths]
        return write_report(folder, results)

    def close(self) -> None:
        """Stop the helper; one interrupted mid-report (Ctrl-C here) finishes that report first."""
        if self._helper is not None:
            if self._writing:  # interrupted while waiting for it: let it finish that report, then stop
                with contextlib.suppress(OSError):
                    self._conn.send(None)
                self._helper.join(timeout=10)
            self._helper.terminate()
            self._helper.join()
            self._helper = None
        self._conn.close()

    def __enter__(self) -> "ReportWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
