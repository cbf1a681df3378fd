"""The typer application and its sub-command groups; the commands register themselves on them."""

from __future__ import annotations

import shlex
import sys

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Weak-to-strong generalization on frozen GGUF embeddings (llama.cpp).")
models_app = typer.Typer(no_args_is_help=True, help="The model registry (models.toml).")
tasks_app = typer.Typer(no_args_is_help=True, help="The task registry.")
methods_app = typer.Typer(no_args_is_help=True, help="The weak-to-strong method registry.")
app.add_typer(methods_app, name="methods")
app.add_typer(models_app, name="models")
app.add_typer(tasks_app, name="tasks")


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["w2s-gguf", *sys.argv[1:]])
