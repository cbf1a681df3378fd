"""Commands that run and read experiments: run, sweep, report, reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, command_line
from .options import (BALANCE, SKLEARN, CEILING_HALF, DATA, DECODE, DECODE_HELP, DEFAULT_STRONG, DEFAULT_TASK, DEFAULT_WEAK, GPU_LAYERS, LAYER_HELP,
                      LOSSES, MAX_RATING, MAX_TOKENS, METHODS, MIN_GAP, MIN_RATING, N_TEST, N_TRAIN, NO_PROGRESS,
                      POOLING, PROMPTING, RAY, REGISTRY, SCHEDULE, SEEDS, SHOTS, STORE_DTYPE, THEMES, THREADS, build_config,
                      finish, log, out_dir, split_list, default_task_name)


@app.command()
def run(
    weak: str = typer.Option(DEFAULT_WEAK, "--weak", help="Registry name or path to a .gguf file; several "
                             "comma-separated weak models each teach the strong one (and `ensemble` averages them)."),
    strong: str = typer.Option(DEFAULT_STRONG, "--strong", help="Registry name or path to a .gguf file."),
    task: Optional[str] = typer.Option(None, "--task", help=f"Task name (default {DEFAULT_TASK}); see `tasks list`."),
    data: Optional[Path] = DATA,
    n_train: int = N_TRAIN, n_test: int = N_TEST, seeds: int = SEEDS, losses: str = LOSSES,
    pooling: str = POOLING, max_tokens: int = MAX_TOKENS, n_gpu_layers: int = GPU_LAYERS,
    threads: Optional[int] = THREADS, balance: bool = BALANCE, min_rating: Optional[int] = MIN_RATING,
    max_rating: Optional[int] = MAX_RATING, themes: Optional[str] = THEMES, ceiling_half: str = CEILING_HALF,
    min_gap: float = MIN_GAP, logconf_schedule: str = SCHEDULE, registry: Optional[Path] = REGISTRY,
    methods: Optional[str] = METHODS,
    layer: str = typer.Option("last", "--layer", "--layers", help=f"Feature layer(s): {LAYER_HELP}."),
    store_dtype: str = STORE_DTYPE, ray: Optional[str] = RAY, sklearn_check: bool = SKLEARN,
    prompting: bool = PROMPTING, shots: int = SHOTS, decode: str = DECODE,
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default w2s-results/TASK-WEAK-STRONG)."),
    no_progress: bool = NO_PROGRESS,
):
    """Weak ceiling, strong ceiling and weak-to-strong transfer for one pair; prints PGR per method."""
    from ..report.background import ReportWriter

    # First: the helper imports matplotlib on the other core while this process imports torch and trains.
    with ReportWriter() as reports:
        from ..experiment.run import run_experiment

        task_name = default_task_name(task, data)
        weaks = split_list(weak, "--weak")
        config = build_config([*weaks, strong], task_name, data, n_train, n_test, seeds, losses, pooling, max_tokens,
                              n_gpu_layers, threads, balance, min_rating, max_rating, themes, ceiling_half, min_gap,
                              logconf_schedule, registry, methods=methods, layers=layer, store_dtype=store_dtype,
                              ray=ray, sklearn_check=sklearn_check, prompting=prompting, shots=shots, decode=decode)
        config.weak_models = len(weaks)
        out = out_dir(out, task_name, "+".join(Path(w).stem for w in weaks), "to", Path(strong).stem)
        results = run_experiment(config, out, progress=not no_progress, command=command_line(), log=log)
        finish(results, out, reports)


@app.command()
def sweep(
    models: str = typer.Option(..., "--models", help="Comma-separated models, weak to strong."),
    task: str = typer.Option(DEFAULT_TASK, "--task", help="Task, or several comma-separated."),
    data: Optional[Path] = DATA,
    n_train: int = N_TRAIN, n_test: int = N_TEST, seeds: int = SEEDS, losses: str = LOSSES,
    pooling: str = POOLING, max_tokens: int = MAX_TOKENS, n_gpu_layers: int = GPU_LAYERS,
    threads: Optional[int] = THREADS, balance: bool = BALANCE, min_rating: Optional[int] = MIN_RATING,
    max_rating: Optional[int] = MAX_RATING, themes: Optional[str] = THEMES, ceiling_half: str = CEILING_HALF,
    min_gap: float = MIN_GAP, logconf_schedule: str = SCHEDULE, registry: Optional[Path] = REGISTRY,
    self_pairs: bool = typer.Option(False, "--self-pairs", help="Also train each model on its own weak labels."),
    methods: Optional[str] = METHODS,
    layers: str = typer.Option("last", "--layers", "--layer", help=f"Feature layers, all captured in one forward pass: {LAYER_HELP}."),
    store_dtype: str = STORE_DTYPE, ray: Optional[str] = RAY, sklearn_check: bool = SKLEARN,
    prompting: bool = PROMPTING, shots: int = SHOTS, decode: str = DECODE,
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (one subfolder per task)."),
    no_progress: bool = NO_PROGRESS,
):
    """Every model's ceiling and every weak -> strong pair (in the given order), per task."""
    from ..report.background import ReportWriter

    with ReportWriter() as reports:  # see run
        from ..experiment.run import run_experiment

        model_list = split_list(models, "--models")
        tasks = split_list(task, "--task")
        root = out_dir(out, "sweep", *[Path(m).stem for m in model_list])
        for task_name in tasks:
            config = build_config(model_list, task_name, data, n_train, n_test, seeds, losses, pooling, max_tokens,
                                  n_gpu_layers, threads, balance, min_rating, max_rating, themes, ceiling_half, min_gap,
                                  logconf_schedule, registry, self_pairs, methods=methods, layers=layers,
                                  store_dtype=store_dtype, ray=ray, sklearn_check=sklearn_check,
                                  prompting=prompting, shots=shots, decode=decode)
            folder = root / task_name if len(tasks) > 1 or out is None else root
            results = run_experiment(config, folder, progress=not no_progress, command=command_line(), log=log)
            typer.echo(f"\n== {task_name} ==")
            finish(results, folder, reports)


@app.command()
def report(
    folder: Path = typer.Argument(..., help="A results folder (with results.json)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="A second results folder to put beside it."),
):
    """Re-render report.md and plots from results.json; or compare two runs."""
    from .. import report as rep

    results = rep.load_results(folder)
    if compare is None:
        paths = rep.write_report(folder, results)
        typer.echo(rep.summary_table(results))
        for path in paths:
            typer.echo(f"report:  {path}")
        return
    other = rep.load_results(compare)
    typer.echo(rep.compare_markdown(results, other, str(folder), str(compare)))


@app.command()
def reproduce(
    source: Path = typer.Argument(..., help="A results folder or its results.json (yours or someone else's)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the rerun (default w2s-results/reproduce-NAME)."),
    decode: Optional[str] = typer.Option(None, "--decode", help=DECODE_HELP + "; default: the file's setting, or "
                                         "packed for a file that does not record one."),
    no_progress: bool = NO_PROGRESS,
):
    """Rerun a results file's recipe (same model files, docs and settings) and say number by number whether it matches."""
    from ..experiment.reproduce import reproduce as rerun

    name = (source.parent if source.is_file() else source).resolve().name
    out = out_dir(out, "reproduce", name)
    _, _, comparison = rerun(source, out, progress=not no_progress, log=log, decode=decode)
    typer.echo(comparison.verdict())
    for path, a, b in comparison.mismatches[:20]:
        typer.echo(f"  {path}: {a} -> {b}")
    if len(comparison.mismatches) > 20:
        typer.echo(f"  ... and {len(comparison.mismatches) - 20} more")
    typer.echo(f"rerun: {out / 'results.json'}")


