"""The weak-to-strong protocol (SPEC.md section 1), for a pair or a sweep of models.

For each seed: split the training docs into halves A and B by group; train
a ground-truth head per model on A (its test accuracy is the model's
ceiling, and its predictions on B are its weak labels); for every pair
weak -> strong and every loss, train a head on the strong model's features
of B against the weak model's soft labels. PGR compares the three test
accuracies. A scikit-learn logistic regression repeats the xent runs on the
same features and splits as an independent check.
"""

from __future__ import annotations

import io
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .embeddings import DEFAULT_MAX_TOKENS, DEFAULT_SHARD_DOCS, POOLINGS, EmbeddingResult, embed_texts
from .errors import W2SError
from .heads import LinearProbe
from .losses import LOSSES, make_loss
from .models import ResolvedModel, load_registry, resolve_model
from .stats import accuracy, agreement, auroc, bootstrap_pgr_ci, pgr, summarize_pgr
from .storage import atomic_write_bytes, atomic_write_json, check_writable_dir
from .tasks import Doc, TaskData, TaskOptions, load_task

SCHEMA_VERSION = 1
RESULTS_KIND = "w2s-gguf results"
SKLEARN_C = 0.01  # SPEC.md section 2: the best L2 strength in 10 of 12 cells measured here


@dataclass
class ExperimentConfig:
    """Every setting of a run; all of it goes into results.json."""

    models: list[str]  # weak to strong; `run` passes [weak, strong]
    task: str = "sentiment"
    n_train: int = 900
    n_test: int = 600
    seeds: int = 5
    losses: list[str] = field(default_factory=lambda: ["xent", "logconf", "product"])
    pooling: str = "last"
    max_tokens: int = DEFAULT_MAX_TOKENS
    n_gpu_layers: int = -1
    n_threads: int | None = None
    ceiling_half: str = "A"  # OAI's sweep trains the strong ceiling on A; its older script on B
    min_gap: float = 0.01
    balance: bool = False
    task_options: TaskOptions = field(default_factory=TaskOptions)
    logconf_schedule: str = "linear"
    data_seed: int = 0
    n_bootstrap: int = 1000
    self_pairs: bool = False  # also train strong-on-own-labels (W = S) runs, as OAI's sweep does
    sklearn_baseline: bool = True
    registry: str | None = None

    def validate(self) -> None:
        if len(self.models) < 2:
            raise W2SError("give at least two models (a weak and a strong one)")
        if len(set(self.models)) != len(self.models):
            raise W2SError(f"a model is listed twice in {', '.join(self.models)}; list each once, weak to strong")
        for name, value in (("--n-train", self.n_train), ("--n-test", self.n_test), ("--seeds", self.seeds)):
            if value <= 0:
                raise W2SError(f"{name} must be a positive number (got {value})")
        if self.n_train < 4:
            raise W2SError(f"--n-train must be at least 4 so both halves hold both labels (got {self.n_train})")
        unknown = [loss for loss in self.losses if loss not in LOSSES]
        if unknown or not self.losses:
            raise W2SError(f"unknown loss {', '.join(unknown) or '(none given)'}; choose from {', '.join(LOSSES)}")
        if self.max_tokens < 8:
            raise W2SError(f"--max-tokens must be at least 8 (got {self.max_tokens})")
        if self.pooling not in POOLINGS:
            raise W2SError(f"unknown pooling {self.pooling!r}; choose last or mean")
        if self.ceiling_half not in ("A", "B"):
            raise W2SError(f"--ceiling-half must be A or B (got {self.ceiling_half!r})")
        if self.logconf_schedule not in ("linear", "openai"):
            raise W2SError(f"--logconf-schedule must be linear or openai (got {self.logconf_schedule!r})")
        if not 0 <= self.min_gap < 1:
            raise W2SError(f"--min-gap must be in [0, 1) (got {self.min_gap})")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(range(self.seeds))
        data["task_options"] = {k: v for k, v in asdict(self.task_options).items() if v not in (None, (), {}, [])}
        return data


# ---------------------------------------------------------------- splitting

def split_halves(groups: list[str], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of halves A and B, whole groups on one side, about half the docs each."""
    unique = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(unique))
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    half_a: list[int] = []
    half_b: list[int] = []
    for k in order:
        members = by_group[unique[k]]
        (half_a if len(half_a) <= len(half_b) else half_b).extend(members)
    return np.array(sorted(half_a)), np.array(sorted(half_b))


# ---------------------------------------------------------------- heads

class SklearnProbe:
    """scikit-learn's LogisticRegression (C = 0.01) on standardised features: the independent check.

    Soft targets enter as each doc twice, once per class, weighted by its
    target probability, which is exactly soft cross-entropy.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def fit(self, x: np.ndarray, targets: np.ndarray) -> "SklearnProbe":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        self.scaler = StandardScaler().fit(x)
        xs = self.scaler.transform(x)
        self.clf = LogisticRegression(C=SKLEARN_C, max_iter=2000, random_state=self.seed)
        if targets.ndim == 1:  # hard labels
            self.clf.fit(xs, targets)
        else:
            n = len(xs)
            self.clf.fit(np.concatenate([xs, xs]), np.r_[np.zeros(n, int), np.ones(n, int)],
                         sample_weight=np.r_[targets[:, 0], targets[:, 1]])
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.clf.predict_proba(self.scaler.transform(x))


@dataclass
class _Run:
    """Test-set predictions of one trained head."""

    proba: np.ndarray

    def metrics(self, labels: np.ndarray) -> dict[str, float | None]:
        return {"acc": accuracy(labels, self.proba), "auroc": auroc(labels, self.proba)}

    def correct(self, labels: np.ndarray) -> np.ndarray:
        return np.argmax(self.proba, axis=1) == labels


# ---------------------------------------------------------------- the protocol

def run_experiment(
    config: ExperimentConfig,
    out_dir: str | Path,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the whole protocol, write results.json (and predictions.npz) into `out_dir`, return the results."""
    log = log or (lambda msg: print(f"[w2s-gguf] {msg}", file=sys.stderr, flush=True))
    start = time.perf_counter()
    config.validate()
    out = check_writable_dir(out_dir)
    _refuse_newer_results(out)

    data = load_task(config.task, config.n_train, config.n_test, config.task_options, config.balance, config.data_seed)
    registry = load_registry(config.registry)
    resolved = [resolve_model(name, registry) for name in config.models]  # fetch + verify all before any long work
    names = _unique_names(resolved)
    # Logged only once the models are resolved, so bad input gets just its one-line error on stderr.
    log(f"task {data.name}: {len(data.train)} train / {len(data.test)} test docs from {data.source} "
        f"(positive rate {data.positive_rate_train:.2f} / {data.positive_rate_test:.2f})")
    for reason, count in data.skipped.items():
        log(f"skipped {count} source rows: {reason}")

    texts = [d.text for d in data.train] + [d.text for d in data.test]
    features: dict[str, EmbeddingResult] = {}
    for name, model in zip(names, resolved):
        result = embed_texts(model, texts, config.pooling, config.max_tokens, config.n_gpu_layers,
                             config.n_threads, progress=progress)
        for problem in result.problems:
            log(problem)
        if result.n_truncated:
            log(f"{name}: {result.n_truncated} texts were longer than {config.max_tokens} tokens and were cut from the left")
        features[name] = result
    extraction_seconds = time.perf_counter() - start

    train_start = time.perf_counter()
    results = _train_and_evaluate(config, data, names, features, log)
    results.update(
        schema_version=SCHEMA_VERSION,
        kind=RESULTS_KIND,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        command=command or "",
        settings={**config.to_json(), "models": names, "model_specs": list(config.models), "head": results.pop("head")},
        task=data.info(),
        models={name: features[name].info() for name in names},
        versions=library_versions(),
    )
    results["timings"] = {
        "extraction_seconds": round(extraction_seconds, 3),
        "training_seconds": round(time.perf_counter() - train_start, 3),
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    predictions = results.pop("_predictions")
    atomic_write_bytes(out / "predictions.npz", _npz_bytes(predictions))
    atomic_write_json(out / "results.json", _ordered(results))
    return results


def _unique_names(models: list[ResolvedModel]) -> list[str]:
    names = [m.name for m in models]
    if len(set(names)) != len(names):  # two files with the same stem: fall back to short hashes
        names = [f"{m.name}-{m.sha256[:8]}" for m in models]
    if len({m.sha256 for m in models}) != len(models):
        raise W2SError("two of the models are the same file (same sha256); give different weak and strong models")
    return names


def _train_and_evaluate(config: ExperimentConfig, data: TaskData, names: list[str],
                        features: dict[str, EmbeddingResult], log) -> dict[str, Any]:
    n_train = len(data.train)
    y_train = np.array([d.label for d in data.train])
    y_test = np.array([d.label for d in data.test])
    groups = [d.group for d in data.train]
    x_train = {m: features[m].features[:n_train] for m in names}
    x_test = {m: features[m].features[n_train:] for m in names}
    seeds = list(range(config.seeds))
    loss_options = {"logconf": {"schedule": config.logconf_schedule}}

    pairs = [(w, s) for i, w in enumerate(names) for s in names[i + (0 if config.self_pairs else 1):]]
    gt: dict[tuple[str, int], _Run] = {}
    ceiling: dict[tuple[str, int], _Run] = {}
    transfer: dict[tuple[str, str, str, int], _Run] = {}
    weak_on_test: dict[tuple[str, int], _Run] = {}
    sk: dict[tuple, _Run] = {}
    predictions: dict[str, np.ndarray] = {}
    head_config: dict[str, Any] = {}

    for seed in seeds:
        half_a, half_b = split_halves(groups, seed)
        ceiling_half = half_a if config.ceiling_half == "A" else half_b
        weak_labels: dict[str, np.ndarray] = {}
        for m in names:
            head = LinearProbe(loss="xent", seed=seed).fit(x_train[m][half_a], y_train[half_a])
            head_config = {k: v for k, v in head.get_params().items() if k not in ("loss", "seed", "loss_options")}
            gt[m, seed] = weak_on_test[m, seed] = _Run(head.predict_proba(x_test[m]))
            weak_labels[m] = head.predict_proba(x_train[m][half_b]).astype(np.float32)
            if config.ceiling_half == "A":
                ceiling[m, seed] = gt[m, seed]
            else:
                ceiling[m, seed] = _Run(LinearProbe(loss="xent", seed=seed).fit(
                    x_train[m][ceiling_half], y_train[ceiling_half]).predict_proba(x_test[m]))
            if config.sklearn_baseline:
                probe = SklearnProbe(seed).fit(x_train[m][half_a], y_train[half_a])
                sk["gt", m, seed] = _Run(probe.predict_proba(x_test[m]))
                sk["weak_labels", m, seed] = probe.predict_proba(x_train[m][half_b])
                sk["ceiling", m, seed] = sk["gt", m, seed] if config.ceiling_half == "A" else _Run(
                    SklearnProbe(seed).fit(x_train[m][ceiling_half], y_train[ceiling_half]).predict_proba(x_test[m]))
            predictions[f"gt|{m}|{seed}"] = gt[m, seed].proba
        for w, s in pairs:
            for loss in config.losses:
                head = LinearProbe(loss=loss, seed=seed, loss_options=loss_options.get(loss))
                head.fit(x_train[s][half_b], weak_labels[w])
                transfer[w, s, loss, seed] = _Run(head.predict_proba(x_test[s]))
                predictions[f"transfer|{w}|{s}|{loss}|{seed}"] = transfer[w, s, loss, seed].proba
            if config.sklearn_baseline:
                sk["transfer", w, s, seed] = _Run(SklearnProbe(seed).fit(
                    x_train[s][half_b], sk["weak_labels", w, seed]).predict_proba(x_test[s]))
        log(f"seed {seed}: " + ", ".join(f"{m} {gt[m, seed].metrics(y_test)['acc']:.3f}" for m in names))

    ground_truth = {}
    for m in names:
        per_seed = [{"seed": seed, **gt[m, seed].metrics(y_test)} for seed in seeds]
        accs = [r["acc"] for r in per_seed]
        entry = {"per_seed": per_seed, "acc_mean": float(np.mean(accs)), "acc_median": float(np.median(accs)),
                 "auroc_mean": _mean([r["auroc"] for r in per_seed])}
        if config.sklearn_baseline:
            sk_accs = [sk["gt", m, seed].metrics(y_test)["acc"] for seed in seeds]
            entry["sklearn"] = {"per_seed": [{"seed": seed, "acc": a} for seed, a in zip(seeds, sk_accs)],
                                "acc_mean": float(np.mean(sk_accs))}
        ground_truth[m] = entry

    pair_results = [
        _pair_result(config, w, s, seeds, y_test, ceiling, weak_on_test, transfer, sk) for w, s in pairs
    ]
    # Every option each loss ran with, defaults filled in (e.g. logconf's warm-up for its schedule).
    config_head = {**head_config, "losses": {loss: make_loss(loss, **loss_options.get(loss, {})).config()
                                             for loss in config.losses}}
    return {"ground_truth": ground_truth, "pairs": pair_results, "head": config_head, "_predictions": predictions}


def _pair_result(config, w, s, seeds, y_test, ceiling, weak_on_test, transfer, sk) -> dict[str, Any]:
    same = w == s
    per_seed = []
    for seed in seeds:
        weak_m, strong_m = weak_on_test[w, seed].metrics(y_test), ceiling[s, seed].metrics(y_test)
        row: dict[str, Any] = {"seed": seed, "weak_acc": weak_m["acc"], "weak_auroc": weak_m["auroc"],
                               "strong_acc": strong_m["acc"], "strong_auroc": strong_m["auroc"], "transfer": {}}
        for loss in config.losses:
            run = transfer[w, s, loss, seed]
            metrics = run.metrics(y_test)
            value, reason = (None, "weak and strong are the same model") if same else pgr(
                weak_m["acc"], strong_m["acc"], metrics["acc"], config.min_gap)
            row["transfer"][loss] = {**metrics, "agreement": agreement(run.proba, weak_on_test[w, seed].proba),
                                     "pgr": value, "pgr_reason": reason}
        if config.sklearn_baseline:
            sw, ss, st = (sk[k].metrics(y_test)["acc"] for k in (("gt", w, seed), ("ceiling", s, seed), ("transfer", w, s, seed)))
            sk_pgr = None if same else pgr(sw, ss, st, config.min_gap)[0]
            row["sklearn"] = {"weak_acc": sw, "strong_acc": ss, "transfer_acc": st, "pgr": sk_pgr}
        per_seed.append(row)

    weak_correct = np.stack([weak_on_test[w, seed].correct(y_test) for seed in seeds])
    strong_correct = np.stack([ceiling[s, seed].correct(y_test) for seed in seeds])
    summary = {}
    for loss in config.losses:
        rows = [r["transfer"][loss] for r in per_seed]
        transfer_correct = np.stack([transfer[w, s, loss, seed].correct(y_test) for seed in seeds])
        summary[loss] = _summary(config, same, rows, weak_correct, strong_correct, transfer_correct)
    result = {"weak": w, "strong": s, "weak_acc": _mean([r["weak_acc"] for r in per_seed]),
              "strong_acc": _mean([r["strong_acc"] for r in per_seed]), "per_seed": per_seed, "summary": summary}
    if config.sklearn_baseline:
        rows = [{"acc": r["sklearn"]["transfer_acc"], "auroc": None, "agreement": None, "pgr": r["sklearn"]["pgr"],
                 "pgr_reason": None} for r in per_seed]
        sk_correct = {k: np.stack([sk[k + (seed,)].correct(y_test) for seed in seeds])
                      for k in (("gt", w), ("ceiling", s), ("transfer", w, s))}
        result["sklearn_summary"] = {"xent": _summary(config, same, rows, sk_correct["gt", w],
                                                      sk_correct["ceiling", s], sk_correct["transfer", w, s])}
    return result


def _summary(config, same, rows, weak_correct, strong_correct, transfer_correct) -> dict[str, Any]:
    accs = [r["acc"] for r in rows]
    median, mean, n_valid = summarize_pgr([r["pgr"] for r in rows])
    reason = None
    ci = None
    mean_gap = float(strong_correct.mean() - weak_correct.mean())
    if same:
        reason = "weak and strong are the same model"
    elif mean_gap < config.min_gap:
        # A few seeds with a lucky gap must not stand for a pair whose ceiling is not above the weak model.
        median = mean = None
        reason = f"mean gap over seeds {mean_gap:+.3f} < min_gap {config.min_gap}"
    elif median is None:
        reason = next((r["pgr_reason"] for r in rows if r["pgr_reason"]), None) or "no seed had a usable gap"
        reason = f"no seed has a usable gap ({reason})"
    else:
        ci, ci_reason = bootstrap_pgr_ci(weak_correct, strong_correct, transfer_correct,
                                         config.min_gap, config.n_bootstrap, seed=0)
        if ci is None:
            reason = ci_reason
    return {"transfer_acc_mean": float(np.mean(accs)), "transfer_acc_median": float(np.median(accs)),
            "auroc_mean": _mean([r["auroc"] for r in rows]), "agreement_mean": _mean([r["agreement"] for r in rows]),
            "pgr_median": median, "pgr_mean": mean, "pgr_ci": ci, "pgr_reason": reason, "n_valid_seeds": n_valid}


def _mean(values: list[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None


# ---------------------------------------------------------------- files

def _refuse_newer_results(out: Path) -> None:
    import json

    existing = out / "results.json"
    if not existing.is_file():
        return
    try:
        version = json.loads(existing.read_text()).get("schema_version", 0)
    except (ValueError, AttributeError):
        return  # unreadable old file: it will be replaced atomically
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise W2SError(f"{existing} was written by a newer w2s-gguf (schema {version} > {SCHEMA_VERSION}); "
                       f"upgrade w2s-gguf or choose another --out folder")


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _ordered(results: dict[str, Any]) -> dict[str, Any]:
    first = ["schema_version", "kind", "created", "command", "settings", "task", "models", "versions",
             "ground_truth", "pairs", "timings"]
    return {k: results[k] for k in first if k in results} | {k: v for k, v in results.items() if k not in first}


def library_versions() -> dict[str, str]:
    versions = {"w2s_gguf": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for dist in ("llama-cpp-python", "torch", "numpy", "scikit-learn", "datasets", "chess"):
        try:
            versions[dist.replace("-", "_")] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist.replace("-", "_")] = None
    return versions


def embed_task_docs(model_spec: str, docs: list[Doc], pooling: str = "last", max_tokens: int = DEFAULT_MAX_TOKENS,
                    n_gpu_layers: int = -1, n_threads: int | None = None, registry: str | None = None,
                    progress: bool = True, shard_docs: int = DEFAULT_SHARD_DOCS) -> EmbeddingResult:
    """Features of `docs` (rows in their order) for `w2s-gguf embed`."""
    model = resolve_model(model_spec, load_registry(registry))
    return embed_texts(model, [d.text for d in docs], pooling, max_tokens, n_gpu_layers, n_threads,
                       shard_docs=shard_docs, progress=progress)
