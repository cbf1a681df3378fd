"""Tool commands: embed, bench, doctor, the model, method and task registries, and `tasks audit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ..errors import W2SError
from ..features.layers import parse_layers
from .app import app, methods_app, models_app, tasks_app
from .options import (BALANCE, DATA, DEFAULT_TASK, DEFAULT_WEAK, GPU_LAYERS, LAYER_HELP, MAX_RATING, MAX_TOKENS,
                      MIN_RATING, N_TEST, N_TRAIN, NO_PROGRESS, POOLING, RAY, REGISTRY, SEEDS, STORE_DTYPE, THEMES, THREADS,
                      log, default_task_name, task_options)


@app.command()
def embed(
    model: str = typer.Option(..., "--model", help="Registry name or path to a .gguf file."),
    out: Path = typer.Option(..., "--out", help="Output .npy file (float32, one row per doc)."),
    task: Optional[str] = typer.Option(None, "--task", help="Task whose docs to embed."),
    data: Optional[Path] = DATA,
    split: str = typer.Option("all", "--split", help="train, test or all (train rows first; with --data, the file's order)."),
    limit: Optional[int] = typer.Option(None, "--n", help="Embed at most this many docs per split."),
    pooling: str = POOLING, max_tokens: int = MAX_TOKENS, n_gpu_layers: int = GPU_LAYERS,
    threads: Optional[int] = THREADS, min_rating: Optional[int] = MIN_RATING,
    max_rating: Optional[int] = MAX_RATING, themes: Optional[str] = THEMES, registry: Optional[Path] = REGISTRY,
    shard_docs: int = typer.Option(128, "--shard-docs", help="Docs per cache shard (a kill loses at most one shard)."),
    layer: str = typer.Option("last", "--layer", help=f"{LAYER_HELP}; several (or all) give docs x layers x dim."),
    store_dtype: str = STORE_DTYPE, ray: Optional[str] = RAY,
    no_progress: bool = NO_PROGRESS,
):
    """Export features for use elsewhere: OUT.npy plus OUT.docs.jsonl (row, label, group, split, text per row).

    With --data, row i of OUT.npy is the i-th usable row of your file."""
    from ..experiment.export import export_features

    if task is None and data is None:
        raise W2SError("give --task NAME or --data FILE")
    result = export_features(model, default_task_name(task, data), out, task_options(data, min_rating, max_rating, themes),
                             split, limit, pooling, max_tokens, n_gpu_layers, threads,
                             str(registry) if registry else None, progress=not no_progress, shard_docs=shard_docs,
                             layers=parse_layers(layer), store_dtype=store_dtype, ray=ray)
    emb = result.embedding
    for problem in emb.problems:
        log(problem)
    typer.echo(f"computed {emb.n_computed} docs ({emb.n_tokens} tokens, {emb.n_truncated} cut), "
               f"{result.n_docs - emb.n_computed} from the cache {emb.store_dir}")
    shape = (result.n_docs, len(result.layers), emb.dim) if len(result.layers) > 1 else emb.features.shape
    typer.echo(f"wrote {result.features_path} {shape} and {result.docs_path} ({result.source})")


@app.command()
def bench(
    model: str = typer.Option(DEFAULT_WEAK, "--model", help="Registry name or path to a .gguf file."),
    task: str = typer.Option(DEFAULT_TASK, "--task", help="Docs to embed."),
    n_docs: int = typer.Option(300, "--n-docs", help="How many docs to embed (fresh, not from the cache)."),
    max_tokens: int = MAX_TOKENS, n_gpu_layers: int = GPU_LAYERS, threads: Optional[int] = THREADS,
    registry: Optional[Path] = REGISTRY,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    layers: Optional[List[str]] = typer.Option(None, "--layers", help="A layer request to time (default: last); "
                                               "repeat for several, e.g. --layers last --layers middle --layers all."),
    pooling: str = POOLING,
    rounds: int = typer.Option(2, "--rounds", help="Passes over the docs (each on a fresh cache)."),
    warm_run: bool = typer.Option(False, "--warm-run", help="Instead: wall time of a warm default `run` "
                                  "(imports included), three times each: as is, with --sklearn-check, with --methods all."),
):
    """Extraction throughput against llama.cpp's own embedding mode on the same batches, per layer request;
    head training time, peak memory."""
    from ..tools.bench import format_bench, format_warm_runs, run_bench, warm_runs

    if warm_run:
        runs = warm_runs()
        typer.echo(json.dumps(runs, indent=2) if as_json else format_warm_runs(runs))
        return
    for request in layers or []:
        parse_layers(request)
    result = run_bench(model, task, n_docs, max_tokens, n_gpu_layers, threads, str(registry) if registry else None,
                       list(layers) if layers else None, pooling, rounds)
    typer.echo(json.dumps(result, indent=2) if as_json else format_bench(result))


@models_app.command("list")
def models_list(registry: Optional[Path] = REGISTRY):
    """Registry entries and whether each is downloaded."""
    from ..models import load_registry, model_cache_path

    for name, entry in sorted(load_registry(registry).items()):
        here = model_cache_path(entry).exists() if entry.source != "path" else Path(entry.path or "").exists()
        size = f"{entry.size / 1e9:.2f} GB" if entry.size else "size ?"
        typer.echo(f"{name:22} {'downloaded' if here else 'not yet':11} {size:10} {entry.location()}")
        if entry.description:
            typer.echo(f"{'':22} {entry.description}")


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="Registry name."), registry: Optional[Path] = REGISTRY):
    """Download (or assemble) a model and verify its size and sha256."""
    from ..models import ensure_model, load_registry

    entries = load_registry(registry)
    if name not in entries:
        raise W2SError(f"unknown model {name!r}; choose one of: {', '.join(sorted(entries))}")
    model = ensure_model(entries[name])
    typer.echo(f"{name}: {model.path} ({model.size} bytes, sha256 {model.sha256[:16]}..., {model.architecture})")


@models_app.command("verify")
def models_verify(registry: Optional[Path] = REGISTRY):
    """Re-hash every downloaded model file (ignores the remembered hashes) and report mismatches."""
    from ..models import load_registry, model_cache_path, verify_file

    bad = 0
    for name, entry in sorted(load_registry(registry).items()):
        path = model_cache_path(entry) if entry.source != "path" else Path(entry.path or "")
        if not path.is_file():
            continue
        ok, detail = verify_file(entry, path)
        bad += not ok
        typer.echo(f"{name:22} {'ok' if ok else 'MISMATCH':9} {detail}")
    if bad:
        raise W2SError(f"{bad} model file(s) do not match their sha256; run `w2s-gguf models pull NAME` to fetch them again")


@app.command()
def doctor(
    model: str = typer.Option(DEFAULT_WEAK, "--model", help="Model for the GPU-vs-CPU feature check."),
    no_features: bool = typer.Option(False, "--no-features", help="Skip the GPU-vs-CPU feature check."),
):
    """Check this installation: llama.cpp build and devices, an unused GPU, the cache, GPU features vs CPU."""
    from ..tools.doctor import doctor_report, exit_code, format_report

    rows = doctor_report(model, check_features=not no_features)
    typer.echo(format_report(rows))
    raise typer.Exit(exit_code(rows))


@methods_app.command("list")
def methods_list():
    """Every weak-to-strong method: name, default form, what it does and its source."""
    from ..core.methods import describe

    for line in describe():
        typer.echo(line)


@tasks_app.command("list")
def tasks_list():
    """Every task: name, source, size, license and whether it works offline here."""
    from ..tasks import get_task, task_names

    typer.echo(f"{'task':22} {'offline':8} {'size':22} {'license':18} source")
    for name in task_names():
        t = get_task(name)
        typer.echo(f"{name:22} {'yes' if t.available_offline() else 'no':8} {t.size:22} {t.license:18} {t.source}")




@tasks_app.command("audit")
def tasks_audit(
    task: str = typer.Argument(..., help="Task name (see `tasks list`)."),
    data: Optional[Path] = DATA, n_train: int = N_TRAIN, n_test: int = N_TEST, seeds: int = SEEDS,
    balance: bool = BALANCE, min_rating: Optional[int] = MIN_RATING, max_rating: Optional[int] = MAX_RATING,
    themes: Optional[str] = THEMES,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Check a task's docs without any model: labels per split, groups shared between splits and between halves
    A and B, duplicate and near-duplicate texts, and the text-only baseline (the docs a `run` with the same
    options would use)."""
    from ..tools.audit import as_json as audit_json, audit_task, format_audit

    if seeds <= 0:
        raise W2SError(f"--seeds must be a positive number (got {seeds})")
    audit = audit_task(task, n_train, n_test, task_options(data, min_rating, max_rating, themes), balance, seeds)
    typer.echo(json.dumps(audit_json(audit), indent=2) if as_json else format_audit(audit))
