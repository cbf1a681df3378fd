"""Silence llama.cpp's own logging while a model loads.

Its Python log callback prints even errors that we already turn into a
one-line W2SError, and its C code writes to fd 2 directly.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_llama_logs():
    """Silence llama.cpp's load logs: its Python log callback (which prints even errors,
    already turned into our one-line W2SError) and C code writing to fd 2 directly."""
    import logging

    logger = logging.getLogger("llama-cpp-python")
    level = max(logger.level, logging.ERROR)  # afterwards: errors only, as Llama(verbose=False) sets it
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with _stderr_to_devnull():
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _stderr_to_devnull():
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. captured): nothing to redirect
        yield
        return
    saved = os.dup(fd)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)

