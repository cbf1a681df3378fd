"""The results schema: one set of dataclasses that the writer and every reader use.

`results.json` is `Results` as JSON (files.py converts generically, so a
field added here is written and read with no other change).

Schema history:
  1  ground_truth keyed by model name; settings.losses; no layers
  2  ground_truth and pairs are lists, each with its feature layer; settings.methods
  3  optional blocks added with defaults (older files load unchanged): text_baseline (a logistic regression
     on the docs' text alone), prompting (--prompting), and other new optional fields
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .prompting import Prompting

SCHEMA_VERSION = 3
KIND = "w2s-gguf results"
RESULTS_NAME = "results.json"


@dataclass
class SeedScore:
    seed: int
    acc: float
    auroc: float | None = None


@dataclass
class SklearnScores:
    per_seed: list[SeedScore]
    acc_mean: float


@dataclass
class GroundTruth:
    """One model's head trained on true labels of half A: its ceiling, and as a teacher its weak accuracy."""

    model: str
    per_seed: list[SeedScore]
    acc_mean: float
    acc_median: float
    auroc_mean: float | None
    layer: str = "last"
    sklearn: SklearnScores | None = None


@dataclass
class TransferScore:
    """One method's student on one seed, scored on the test docs."""

    acc: float
    auroc: float | None
    agreement: float | None  # with the weak teacher's test predictions
    pgr: float | None
    pgr_reason: str | None = None
    misfit_train: float | None = None  # student's disagreement with its weak labels on B (Charikar et al. 2024)
    misfit_test: float | None = None  # ... with the weak teacher on the test docs (1 - agreement)


@dataclass
class Difference:
    """A paired difference of mean accuracies (a - b over the same seeds and test docs) with its bootstrap interval."""

    diff: float
    ci: list[float]
    level: float = 0.95
    threshold: float = 0.0
    distinguishable: bool = False  # the interval's lower end lies above the threshold


@dataclass
class SklearnPairSeed:
    weak_acc: float
    strong_acc: float
    transfer_acc: float
    pgr: float | None


@dataclass
class PairSeed:
    seed: int
    weak_acc: float
    weak_auroc: float | None
    strong_acc: float
    strong_auroc: float | None
    transfer: dict[str, TransferScore]  # method -> score
    sklearn: SklearnPairSeed | None = None


@dataclass
class Summary:
    """A method over all seeds: means, and PGR's median with its bootstrap interval or the reason it is null."""

    transfer_acc_mean: float
    transfer_acc_median: float
    auroc_mean: float | None
    agreement_mean: float | None
    pgr_median: float | None
    pgr_mean: float | None
    pgr_ci: list[float] | None
    pgr_reason: str | None
    n_valid_seeds: int
    misfit_train_mean: float | None = None
    misfit_test_mean: float | None = None
    vs_xent: Difference | None = None  # this method's accuracy minus xent's, paired


@dataclass
class PairResult:
    weak: str
    strong: str
    weak_acc: float | None  # means over seeds
    strong_acc: float | None
    per_seed: list[PairSeed]
    summary: dict[str, Summary]  # method -> summary, in the order the methods were asked for
    layer: str = "last"
    sklearn_summary: dict[str, Summary] | None = None
    gap: Difference | None = None  # strong minus weak accuracy, paired; absent in schema-1 files

    @property
    def mean_gap(self) -> float | None:
        return None if self.weak_acc is None or self.strong_acc is None else self.strong_acc - self.weak_acc


@dataclass
class TaskInfo:
    name: str
    source: str
    n_train: int
    n_test: int
    positive_rate_train: float
    positive_rate_test: float
    prompt_version: str = "1"
    balanced: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    docs_sha256: str | None = None  # every chosen doc in order (tasks.docs_fingerprint); absent in older files


@dataclass
class TextBaseline:
    """A logistic regression on the docs' text alone (core/text_baseline.py), trained on half A of each
    seed and scored on the run's test docs: what a probe could get from the words, without any model."""

    per_seed: list[SeedScore]
    acc_mean: float
    ci: list[float]  # normal interval over seeds and docs (core.intervals.accuracy_ci)
    level: float = 0.95
    settings: dict[str, Any] = field(default_factory=dict)  # features, classifier and version


@dataclass
class ModelInfo:
    """A model file and what extracting its features cost in this run."""

    name: str
    path: str
    sha256: str
    size: int
    architecture: str
    source: str
    dim: int
    pooling: str
    max_tokens: int
    gpu_offload: bool
    cache_dir: str
    n_computed: int
    n_tokens: int
    n_truncated: int
    seconds: float | None = None
    tokens_per_second: float | None = None
    model_loaded: bool | None = None
    n_layer: int | None = None  # transformer blocks
    layers: dict[str, str] = field(default_factory=dict)  # layer spec of the run -> "last" or the block index used


@dataclass
class Results:
    """Everything a run produced; `settings` is `ExperimentConfig.to_json()` (plus model specs and the head)."""

    settings: dict[str, Any]
    task: TaskInfo
    models: dict[str, ModelInfo]
    ground_truth: list[GroundTruth]
    pairs: list[PairResult]
    versions: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    text_baseline: TextBaseline | None = None  # absent in schema-2 files
    created: str = ""
    command: str = ""
    prompting: Prompting | None = None  # --prompting: prompting baselines and label-efficiency curves
    schema_version: int = SCHEMA_VERSION
    kind: str = KIND

    @property
    def methods(self) -> list[str]:
        return list(self.settings.get("methods") or [])

    @property
    def seeds(self) -> list[int]:
        return list(self.settings.get("seeds") or [])

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys([g.layer for g in self.ground_truth] + [p.layer for p in self.pairs]))

    def ground_truth_of(self, model: str, layer: str = "last") -> GroundTruth | None:
        return next((g for g in self.ground_truth if g.model == model and g.layer == layer), None)

    def to_frame(self):
        """A tidy pandas DataFrame: one row per pair (or model), layer, method, seed and metric (results/frame.py)."""
        from .frame import results_frame

        return results_frame(self)
