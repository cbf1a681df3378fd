"""The `w2s-gguf` command line: parses options, calls the library, prints.

Errors the user can fix (W2SError) print one line and exit with code 2;
Ctrl-C exits with 130 after saying how to resume.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from pathlib import Path
from typing import Optional

import click
import typer

from .errors import SettingError, W2SError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Weak-to-strong generalization on frozen GGUF embeddings (llama.cpp).")
models_app = typer.Typer(no_args_is_help=True, help="The model registry (models.toml).")
tasks_app = typer.Typer(no_args_is_help=True, help="The task registry.")
methods_app = typer.Typer(no_args_is_help=True, help="The weak-to-strong method registry.")
app.add_typer(methods_app, name="methods")
app.add_typer(models_app, name="models")
app.add_typer(tasks_app, name="tasks")

# Library parameter -> the flag a user typed (errors.SettingError names parameters).
FLAGS = {"n_train": "--n-train", "n_test": "--n-test", "seeds": "--seeds", "methods": "--methods",
         "pooling": "--pooling", "max_tokens": "--max-tokens", "ceiling_half": "--ceiling-half", "min_gap": "--min-gap",
         "logconf_schedule": "--logconf-schedule", "balance": "--balance", "models": "--models", "split": "--split",
         "limit": "--n", "shard_docs": "--shard-docs", "out": "--out", "n_docs": "--n-docs", "layers": "--layer",
         "store_dtype": "--store-dtype", "ray": "--ray"}
DEFAULT_WEAK = "smollm2-135m"
DEFAULT_STRONG = "gemma3-270m"
DEFAULT_TASK = "sentiment"


def _split_list(value: str, what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise W2SError(f"{what} is empty; give a comma-separated list")
    return items


def _task_options(data, min_rating, max_rating, themes):
    from .tasks import TaskOptions

    return TaskOptions(data=str(data) if data else None, min_rating=min_rating, max_rating=max_rating,
                       themes=tuple(_split_list(themes, "--themes")) if themes else ())


def _task_name(task: Optional[str], data: Optional[Path]) -> str:
    # A user's own file without --task is the `custom` task (text,label columns).
    return task or ("custom" if data else DEFAULT_TASK)


def _out_dir(out: Optional[Path], *parts: str) -> Path:
    return out if out is not None else Path("w2s-results") / "-".join(parts)


def _log(message: str) -> None:
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
MIN_GAP = typer.Option(0.01, "--min-gap", help="PGR is reported as null when strong - weak accuracy is below this.")
SCHEDULE = typer.Option("linear", "--logconf-schedule", help="linear (paper) or openai (OAI code) warm-up.")
REGISTRY = typer.Option(None, "--registry", help="Extra models.toml with your own entries.")
METHODS = typer.Option(None, "--methods", help="Comma-separated weak-to-strong methods, or all (see `methods list`); "
                       "overrides --losses.")
STORE_DTYPE = typer.Option("float32", "--store-dtype", help="Cache features as float32 or float16 (half the disk).")
RAY = typer.Option(None, "--ray", help="Extract on a Ray cluster: auto, HOST:PORT or ray://HOST:10001 "
                   "(pip install 'w2s-gguf[ray]'); the cache stays here.")
LAYER_HELP = ("last (final norm, default), middle, all, a block number N (0-based, negative from the end) or a "
              "fraction of depth like 0.5; comma-separated for several")
NO_PROGRESS = typer.Option(False, "--no-progress", help="Hide progress bars.")


def _config(models, task, data, n_train, n_test, seeds, losses, pooling, max_tokens, n_gpu_layers, threads,
            balance, min_rating, max_rating, themes, ceiling_half, min_gap, schedule, registry, self_pairs=False,
            methods=None, layers="last", store_dtype="float32", ray=None):
    from .config import ExperimentConfig

    return ExperimentConfig(
        models=models, task=task, n_train=n_train, n_test=n_test, seeds=seeds,
        methods=_split_list(methods, "--methods") if methods else _split_list(losses, "--losses"),
        layers=_split_list(layers.lower(), "--layer"), store_dtype=store_dtype, ray=ray, pooling=pooling,
        max_tokens=max_tokens,
        n_gpu_layers=n_gpu_layers, n_threads=threads, ceiling_half=ceiling_half.upper(), min_gap=min_gap,
        balance=balance, task_options=_task_options(data, min_rating, max_rating, themes),
        logconf_schedule=schedule, registry=str(registry) if registry else None, self_pairs=self_pairs,
    )


def _finish(results, out: Path) -> None:
    from . import report

    paths = report.write_report(out, results)
    typer.echo(report.summary_table(results))
    typer.echo(f"\nresults: {out / 'results.json'}")
    for path in paths:
        typer.echo(f"report:  {path}")


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
    store_dtype: str = STORE_DTYPE, ray: Optional[str] = RAY,
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (default w2s-results/TASK-WEAK-STRONG)."),
    no_progress: bool = NO_PROGRESS,
):
    """Weak ceiling, strong ceiling and weak-to-strong transfer for one pair; prints PGR per loss."""
    from .experiment import run_experiment

    task_name = _task_name(task, data)
    weaks = _split_list(weak, "--weak")
    config = _config([*weaks, strong], task_name, data, n_train, n_test, seeds, losses, pooling, max_tokens,
                     n_gpu_layers, threads, balance, min_rating, max_rating, themes, ceiling_half, min_gap,
                     logconf_schedule, registry, methods=methods, layers=layer, store_dtype=store_dtype, ray=ray)
    config.weak_models = len(weaks)
    out = _out_dir(out, task_name, "+".join(Path(w).stem for w in weaks), "to", Path(strong).stem)
    results = run_experiment(config, out, progress=not no_progress, command=_command_line(), log=_log)
    _finish(results, out)


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
    store_dtype: str = STORE_DTYPE, ray: Optional[str] = RAY,
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder (one subfolder per task)."),
    no_progress: bool = NO_PROGRESS,
):
    """Every model's ceiling and every weak -> strong pair (in the given order), per task."""
    from .experiment import run_experiment

    model_list = _split_list(models, "--models")
    tasks = _split_list(task, "--task")
    root = _out_dir(out, "sweep", *[Path(m).stem for m in model_list])
    for task_name in tasks:
        config = _config(model_list, task_name, data, n_train, n_test, seeds, losses, pooling, max_tokens,
                         n_gpu_layers, threads, balance, min_rating, max_rating, themes, ceiling_half, min_gap,
                         logconf_schedule, registry, self_pairs, methods=methods, layers=layers, store_dtype=store_dtype,
                         ray=ray)
        folder = root / task_name if len(tasks) > 1 or out is None else root
        results = run_experiment(config, folder, progress=not no_progress, command=_command_line(), log=_log)
        typer.echo(f"\n== {task_name} ==")
        _finish(results, folder)


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
    from .export import export_features

    if task is None and data is None:
        raise W2SError("give --task NAME or --data FILE")
    result = export_features(model, _task_name(task, data), out, _task_options(data, min_rating, max_rating, themes),
                             split, limit, pooling, max_tokens, n_gpu_layers, threads,
                             str(registry) if registry else None, progress=not no_progress, shard_docs=shard_docs,
                             layers=_split_list(layer.lower(), "--layer"), store_dtype=store_dtype, ray=ray)
    emb = result.embedding
    for problem in emb.problems:
        _log(problem)
    typer.echo(f"computed {emb.n_computed} docs ({emb.n_tokens} tokens, {emb.n_truncated} cut), "
               f"{result.n_docs - emb.n_computed} from the cache {emb.store_dir}")
    shape = (result.n_docs, len(result.layers), emb.dim) if len(result.layers) > 1 else emb.features.shape
    typer.echo(f"wrote {result.features_path} {shape} and {result.docs_path} ({result.source})")


@app.command()
def report(
    folder: Path = typer.Argument(..., help="A results folder (with results.json)."),
    compare: Optional[Path] = typer.Option(None, "--compare", help="A second results folder to put beside it."),
):
    """Re-render report.md and plots from results.json; or compare two runs."""
    from . import report as rep

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
    no_progress: bool = NO_PROGRESS,
):
    """Rerun a results file's recipe (same model files, docs and settings) and say number by number whether it matches."""
    from .reproduce import reproduce as rerun

    name = (source.parent if source.is_file() else source).resolve().name
    out = _out_dir(out, "reproduce", name)
    _, _, comparison = rerun(source, out, progress=not no_progress, log=_log)
    typer.echo(comparison.verdict())
    for path, a, b in comparison.mismatches[:20]:
        typer.echo(f"  {path}: {a} -> {b}")
    if len(comparison.mismatches) > 20:
        typer.echo(f"  ... and {len(comparison.mismatches) - 20} more")
    typer.echo(f"rerun: {out / 'results.json'}")


@app.command()
def bench(
    model: str = typer.Option(DEFAULT_WEAK, "--model", help="Registry name or path to a .gguf file."),
    task: str = typer.Option(DEFAULT_TASK, "--task", help="Docs to embed."),
    n_docs: int = typer.Option(300, "--n-docs", help="How many docs to embed (fresh, not from the cache)."),
    max_tokens: int = MAX_TOKENS, n_gpu_layers: int = GPU_LAYERS, threads: Optional[int] = THREADS,
    registry: Optional[Path] = REGISTRY,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    layers: Optional[str] = typer.Option(None, "--layers", help="Also time capturing these layers (e.g. all) in the "
                                         "same forward pass against plain extraction."),
    pooling: str = POOLING,
    warm_run: bool = typer.Option(False, "--warm-run", help="Instead: wall time of a warm default `run` "
                                  "(imports included), with its 3 losses and with --methods all."),
):
    """Extraction throughput against llama.cpp's own single-sequence throughput, head training time, peak memory."""
    from .bench import format_bench, run_bench, warm_run_seconds

    if warm_run:
        result = {"warm_default_run_seconds": round(warm_run_seconds(), 2),
                  "warm_all_methods_run_seconds": round(warm_run_seconds("all"), 2)}
        typer.echo(json.dumps(result, indent=2) if as_json else
                   f"warm default run {result['warm_default_run_seconds']} s; with --methods all "
                   f"{result['warm_all_methods_run_seconds']} s (wall, imports included)")
        return
    result = run_bench(model, task, n_docs, max_tokens, n_gpu_layers, threads, str(registry) if registry else None,
                       _split_list(layers.lower(), "--layers") if layers else None, pooling)
    typer.echo(json.dumps(result, indent=2) if as_json else format_bench(result))


@models_app.command("list")
def models_list(registry: Optional[Path] = REGISTRY):
    """Registry entries and whether each is downloaded."""
    from .models import load_registry, model_cache_path

    for name, entry in sorted(load_registry(registry).items()):
        here = model_cache_path(entry).exists() if entry.source != "path" else Path(entry.path or "").exists()
        size = f"{entry.size / 1e9:.2f} GB" if entry.size else "size ?"
        typer.echo(f"{name:22} {'downloaded' if here else 'not yet':11} {size:10} {entry.location()}")
        if entry.description:
            typer.echo(f"{'':22} {entry.description}")


@models_app.command("pull")
def models_pull(name: str = typer.Argument(..., help="Registry name."), registry: Optional[Path] = REGISTRY):
    """Download (or assemble) a model and verify its size and sha256."""
    from .models import ensure_model, load_registry

    entries = load_registry(registry)
    if name not in entries:
        raise W2SError(f"unknown model {name!r}; choose one of: {', '.join(sorted(entries))}")
    model = ensure_model(entries[name])
    typer.echo(f"{name}: {model.path} ({model.size} bytes, sha256 {model.sha256[:16]}..., {model.architecture})")


@models_app.command("verify")
def models_verify(registry: Optional[Path] = REGISTRY):
    """Re-hash every downloaded model file (ignores the remembered hashes) and report mismatches."""
    from .models import load_registry, model_cache_path, verify_file

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
    from .doctor import doctor_report, exit_code, format_report

    rows = doctor_report(model, check_features=not no_features)
    typer.echo(format_report(rows))
    raise typer.Exit(exit_code(rows))


@methods_app.command("list")
def methods_list():
    """Every weak-to-strong method: name, default form, what it does and its source."""
    from .methods import describe

    for line in describe():
        typer.echo(line)


@tasks_app.command("list")
def tasks_list():
    """Every task: name, source, size, license and whether it works offline here."""
    from .tasks import get_task, task_names

    typer.echo(f"{'task':22} {'offline':8} {'size':22} {'license':18} source")
    for name in task_names():
        t = get_task(name)
        typer.echo(f"{name:22} {'yes' if t.available_offline() else 'no':8} {t.size:22} {t.license:18} {t.source}")


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in ["w2s-gguf", *sys.argv[1:]])


def main() -> None:
    from .embeddings import ExtractionInterrupted

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

if __name__ == "__main__":
    main()
