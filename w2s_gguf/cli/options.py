"""Options shared by several commands, and turning them into library settings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import W2SError
from ..features.layers import parse_layers

DEFAULT_WEAK = "smollm2-135m"
DEFAULT_STRONG = "gemma3-270m"
DEFAULT_TASK = "sentiment"


def split_list(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise W2SError(f"{what} is empty; give a comma-separated list")
    return items


def task_options(data, min_rating, max_rating, themes):
    from ..tasks import TaskOptions

    return TaskOptions(data=str(data) if data else None, min_rating=min_rating, max_rating=max_rating,
                       themes=tuple(split_list(themes, "--themes")) if themes else ())


def default_task_name(task: Optional[str], data: Optional[Path]) -> str:
    # A user's own file without --task is the `custom` task (text,label columns).
    return task or ("custom" if data else DEFAULT_TASK)


def out_dir(out: Optional[Path], *parts: str) -> Path:
    return out if out is not None else Path("w2s-results") / "-".join(parts)


def log(message: str) -> None:
    typer.echo(f"[w2s-gguf] {message}", err=True)


# Options shared by run and sweep.
N_TRAIN = typer.Option(900, "--n-train", help="Training docs (split into halves A and B).")
N_TEST = typer.Option(600, "--n-test", help="Test docs, from the task's held-out split.")
SEEDS = typer.Option(5, "--seeds", help="Number of seeds (0..k-1): split, head init and shuffling follow each.")
LOSSES = typer.Option("xent,logconf,product", "--losses", help="Comma-separated transfer losses (methods that are losses).")
POOLING = typer.Option("last", "--pooling", help="last (OAI: final hidden state at the last token) or mean.")
MAX_TOKENS = typer.Option(512, "--max-tokens", help="Longer texts are cut from the left (counted).")
GPU_LAYERS = typer.Option(-1, "--n-gpu-layers", help="-1 offloads every layer when llama.cpp has CUDA/Metal; 0 = CPU.")
THREADS = typer.Option(None, "--threads", help="CPU threads for llama.cpp (default: the cores).")
DATA = typer.Option(None, "--data", help="Your own CSV/JSONL (text,label), or a Lichess CSV for --task chess.")
BALANCE = typer.Option(False, "--balance", help="Undersample train and test to 50/50 labels.")
MIN_RATING = typer.Option(None, "--min-rating", help="chess: lowest puzzle rating.")
MAX_RATING = typer.Option(None, "--max-rating", help="chess: highest puzzle rating.")
THEMES = typer.Option(None, "--themes", help="chess: keep puzzles with any of these comma-separated themes.")
CEILING_HALF = typer.Option("A", "--ceiling-half", help="Train the strong ceiling on half A (OAI sweep) or B.")
MIN_GAP = typer.Option(0.01, "--min-gap", help="A PGR is reported only when the 95% interval of strong - weak "
                       "accuracy lies above this.")
SCHEDULE = typer.Option("linear", "--logconf-schedule", help="linear (paper) or openai (OAI code) warm-up.")
REGISTRY = typer.Option(None, "--registry", help="Extra models.toml with your own entries.")
METHODS = typer.Option(None, "--methods", help="Comma-separated weak-to-strong methods, or all (see `methods list`); "
                       "overrides --losses.")
STORE_DTYPE = typer.Option("float32", "--store-dtype", help="Cache features as float32 or float16 (half the disk).")
RAY = typer.Option(None, "--ray", help="Extract on a Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                   r"(pip install 'w2s-gguf\[ray]'); the cache stays here.")
LAYER_HELP = ("last (final norm, default), middle, all, a block number N (0-based, negative from the end) or a "
              "fraction of depth like 0.5; comma-separated for several")
PROMPTING = typer.Option(False, "--prompting", help="Also measure how much each model already knows: zero- and "
                         "k-shot prompting accuracy (true and weak labels, prompting PGR) and label-efficiency curves.")
SHOTS = typer.Option(5, "--shots", help="Demonstrations per few-shot prompt with --prompting; 0 = zero-shot only.")
DECODE_HELP = ("How texts share a llama.cpp batch: auto (alone on the CPU, packed on a GPU), alone (a vector is "
               "a function of its text) or packed (faster on the CPU, but a vector moves in its last digits with "
               "its batch neighbours; how versions before 0.3.1 decoded)")
DECODE = typer.Option("auto", "--decode", help=DECODE_HELP + ".")
NO_PROGRESS = typer.Option(False, "--no-progress", help="Hide progress bars.")
SKLEARN = typer.Option(False, "--sklearn-check/--no-sklearn-check", help="Also repeat the xent runs with "
                       "scikit-learn's LogisticRegression, an independent check of the torch heads (adds about 3 s).")


def build_config(models, task, data, n_train, n_test, seeds, losses, pooling, max_tokens, n_gpu_layers, threads,
            balance, min_rating, max_rating, themes, ceiling_half, min_gap, schedule, registry, self_pairs=False,
            methods=None, layers="last", store_dtype="float32", ray=None, sklearn_check=False, prompting=False,
            shots=5, decode="auto"):
    from ..experiment.config import ExperimentConfig

    return ExperimentConfig(
        models=models, task=task, n_train=n_train, n_test=n_test, seeds=seeds,
        methods=split_list(methods, "--methods") if methods else split_list(losses, "--losses"),
        layers=parse_layers(layers), store_dtype=store_dtype, ray=ray, pooling=pooling,
        max_tokens=max_tokens,
        n_gpu_layers=n_gpu_layers, n_threads=threads, ceiling_half=ceiling_half.upper(), min_gap=min_gap,
        balance=balance, task_options=task_options(data, min_rating, max_rating, themes),
        logconf_schedule=schedule, registry=str(registry) if registry else None, self_pairs=self_pairs,
        sklearn_baseline=sklearn_check, prompting=prompting, shots=shots, decode=decode,
    )


def finish(results, out: Path, reports) -> None:
    """Print the table, then write report.md and the plots with `reports` (a report.background.ReportWriter)."""
    from .. import report

    typer.echo(report.summary_table(results))
    paths = reports.write(out, results)
    typer.echo(f"\nresults: {out / 'results.json'}")
    for path in paths:
        typer.echo(f"report:  {path}")


