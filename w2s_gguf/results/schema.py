"""The results schema: one set of dataclasses that the writer and every reader use.

`results.json` is `Results` as JSON (files.py converts generically, so a
field added here is written and read with no other change).

Schema history:
  1  ground_truth keyed by model name; settings.losses; no layers
  2  ground_truth and pairs are lists, each with its feature layer; settings.methods
  3  intervals from variance components instead of the crossed bootstrap (core/intervals.py);
     Summary.pgr (mean gain / mean gap) with pgr_ci its Fieller interval, pgr_mean gone; misfit in
     Charikar et al.'s sense (squared distance, sq_gain beside it), the 0-1 share renamed
     disagree_train; Holm over a pair's methods (Difference.holm); Plan (docs and seeds that would
     settle the gap and PGR); ensemble rows (PairResult.teachers); GroundTruth.half; a v2 file's
     pgr_ci (a bootstrap interval of the median) is read as pgr_median_ci, its misfit_train as
     disagree_train (against the weak labels), its misfit_test (1 - agreement) is dropped
     text_baseline (a logistic regression on the docs' text alone, with accuracy_ci's interval)
     prompting (--prompting: zero- and k-shot prompting baselines, prompting PGR, label-efficiency curves)
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
    half: str = "A"  # the training half the head learnt from: A (ceiling and teacher) or B (--ceiling-half B)


@dataclass
class TransferScore:
    """One method's student on one seed, scored on the test docs."""

    acc: float
    auroc: float | None
    agreement: float | None  # with the weak teacher's test predictions
    pgr: float | None
    pgr_reason: str | None = None
    # Charikar et al. 2024, on the test docs, against the teacher whose labels the student learnt from:
    misfit: float | None = None  # mean (student P(1) - teacher P(1))^2
    sq_gain: float | None = None  # teacher's mean squared error minus the student's, against the true labels
    disagree_train: float | None = None  # share of B's training docs where the student's class is not its target's


@dataclass
class Difference:
    """A paired difference of mean accuracies (a - b over the same seeds and test docs) with its interval
    (core/intervals.py: over new seeds and new test docs; schema <= 2: a crossed bootstrap)."""

    diff: float
    ci: list[float]
    level: float = 0.95
    threshold: float = 0.0
    distinguishable: bool = False  # the interval's lower end lies above the threshold
    se: float | None = None
    df: float | None = None  # Satterthwaite's degrees of freedom of the t quantile
    p_value: float | None = None  # two-sided, of a zero difference
    holm: bool | None = None  # method vs xent: different after Holm's correction over the pair's methods
    covers: str | None = None  # what a rerun may change: "new seeds and new test docs"
    n_seeds: int | None = None
    n_test: int | None = None
    var_seed: float | None = None  # per-cell variance components (seed, doc, seed x doc)
    var_doc: float | None = None
    var_inter: float | None = None


@dataclass
class Plan:
    """How many test docs (at n_seeds seeds) would settle a question, projected from the run's own
    variance (core/planning.py); None where no number of docs is enough at these seeds."""

    target: str  # e.g. "gap interval above min_gap 0.01", "PGR interval +-0.1"
    n_seeds: int
    n_test: int | None
    seeds_min: int | None = None  # seeds that reach the target with unlimited test docs
    reason: str | None = None  # set where no size reaches it (the observed gap is not above the threshold)
    more_seeds: int | None = None  # where only more seeds help: n_test_more_seeds test docs at more_seeds seeds
    n_test_more_seeds: int | None = None


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
    """A method over all seeds: means; PGR as mean gain / mean gap with its interval, or the reason it is null;
    OAI's median of per-seed PGRs."""

    transfer_acc_mean: float
    transfer_acc_median: float
    auroc_mean: float | None
    agreement_mean: float | None
    pgr_median: float | None  # median over the seeds whose own gap reaches min_gap
    pgr_ci: list[float] | None  # Fieller's interval of pgr
    pgr_reason: str | None
    n_valid_seeds: int  # seeds in pgr_median
    pgr: float | None = None  # mean gain / mean gap over every seed and test doc (core/stats.py)
    pgr_median_ci: list[float] | None = None  # schema <= 2 only: a crossed bootstrap interval of the median
    misfit_mean: float | None = None
    sq_gain_mean: float | None = None
    disagree_train_mean: float | None = None
    vs_xent: Difference | None = None  # this method's accuracy minus xent's, paired
    pgr_plan: Plan | None = None  # test docs for a PGR interval of +-0.1


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
    gap_plan: Plan | None = None  # test docs for the gap's interval to clear min_gap
    teachers: list[str] | None = None  # an ensemble row: the weak models whose mean test predictions are `weak`

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
    n_test_available: int | None = None  # test docs the task could supply (caps how many a plan can ask for)


@dataclass
class TextBaseline:
    """A logistic regression on the docs' text alone (core/text_baseline.py), trained on half A of each
    seed and scored on the run's test docs: what a probe could get from the words, without any model."""

    per_seed: list[SeedScore]
    acc_mean: float
    ci: list[float]  # t interval over new seeds and new test docs (core.intervals.accuracy_ci)
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

    def ground_truth_of(self, model: str, layer: str = "last", half: str = "A") -> GroundTruth | None:
        return next((g for g in self.ground_truth if g.model == model and g.layer == layer and g.half == half), None)

    def to_frame(self):
        """A tidy pandas DataFrame: one row per pair (or model), layer, method, seed and metric (results/frame.py)."""
        from .frame import results_frame

        return results_frame(self)
