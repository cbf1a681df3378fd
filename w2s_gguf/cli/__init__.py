"""The `w2s-gguf` command line: parses options, calls the library, prints.

Errors the user can fix (W2SError) print one line and exit with code 2;
Ctrl-C exits with 130 after saying how to resume. The commands live in
`experiments.py` (run, sweep, report, reproduce) and `tools.py` (embed,
bench, doctor, the registries); their shared options in `options.py`.
"""

from __future__ import annotations

import signal
import sys

import click
import typer

from ..errors import SettingError, W2SError
from . import experiments, tools  # noqa: F401  (they register the commands on `app`)
from .app import app

# Library parameter -> the flag a user typed (errors.SettingError names parameters).
FLAGS = {"n_train": "--n-train", "n_test": "--n-test", "seeds": "--seeds", "methods": "--methods",
         "pooling": "--pooling", "max_tokens": "--max-tokens", "ceiling_half": "--ceiling-half", "min_gap": "--min-gap",
         "logconf_schedule": "--logconf-schedule", "balance": "--balance", "models": "--models", "split": "--split",
         "limit": "--n", "shard_docs": "--shard-docs", "out": "--out", "n_docs": "--n-docs", "layers": "--layer",
         "store_dtype": "--store-dtype", "ray": "--ray",
         "shots": "--shots", "prompting": "--prompting", "decode": "--decode"}


def main() -> None:
    from ..features.pipeline import ExtractionInterrupted

    # A process started in the background of a non-interactive shell (CI, `cmd &` in a script)
    # inherits SIGINT as ignored, and Python then never raises KeyboardInterrupt: Ctrl-C or
    # `kill -INT` would be lost and the run would go on. Take SIGINT back explicitly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupted = "\ninterrupted; finished work is saved, run the same command again to resume"
    try:
        code = app(standalone_mode=False)
    except SettingError as exc:
        flag = FLAGS.get(exc.param, exc.param)
        typer.echo(f"error: {flag} {exc.problem}", err=True)
        sys.exit(2)
    except W2SError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except ExtractionInterrupted as exc:
        typer.echo(f"\n{exc}", err=True)
        sys.exit(130)
    except (KeyboardInterrupt, click.exceptions.Abort, typer.Abort):
        typer.echo(interrupted, err=True)
        sys.exit(130)
    except Exception as exc:
        # Usage errors (unknown option, bad value): click's, or the copy of click that newer typer
        # versions carry; both show a one-line usage message and carry their exit code (2).
        if not (hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int)):
            raise
        exc.show()
        sys.exit(exc.exit_code)
    if code == 130:  # newer typer turns a KeyboardInterrupt into exit code 130 itself
        typer.echo(interrupted, err=True)
    sys.exit(code if isinstance(code, int) else 0)

