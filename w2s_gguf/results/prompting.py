"""The results of `--prompting`: how much each model already knows, without a probe or with few labels.

Per model: zero-shot accuracy and AUROC of the score log p(word 1) - log p(word 0); k-shot accuracy
with ground-truth demonstrations (per seed); and the label-efficiency curve of its probe. Per pair: the
strong model's k-shot accuracy with the weak model's labels as demonstrations, and its prompting PGR
(floor: the weak probe's accuracy, ceiling: the strong model's k-shot accuracy with true labels).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Estimate:
    """A mean (over seeds and test docs, or over test docs) with its bootstrap interval."""

    value: float | None
    ci: list[float] | None = None
    level: float = 0.95


@dataclass
class ZeroShot:
    acc: Estimate  # at threshold 0: predicts label 1 when word 1 is the likelier
    auroc: Estimate  # threshold-free: a model biased towards one word is not called ignorant
    mean_score: float  # mean of log p(word 1) - log p(word 0): its bias
    predicted_positive: float  # share of test docs it calls label 1


@dataclass
class PromptSeed:
    seed: int
    acc: float
    auroc: float | None = None


@dataclass
class FewShot:
    """k-shot with ground-truth demonstrations from half A, chosen per seed."""

    acc: Estimate
    auroc: Estimate  # mean over seeds, interval resampling seeds and test docs
    per_seed: list[PromptSeed]


@dataclass
class CurvePoint:
    n_labels: float  # ground-truth labels the probe saw (the mean size of half A for the last point)
    acc_mean: float
    acc_ci: list[float] | None
    auroc_mean: float | None
    per_seed_acc: list[float]
    full: bool = False  # the last point: every doc of half A (the protocol's own ground-truth head)


@dataclass
class LabelCurve:
    """Probe accuracy against the number of ground-truth labels from half A (nested subsets, every seed)."""

    layer: str
    chance: float  # the majority-label rate of the test docs: what a probe gets from no features at all
    points: list[CurvePoint]
    labels_to_90: float | None  # labels needed for 90% of the full probe's gain over chance (log-interpolated)
    labels_to_90_ci: list[float] | None = None
    labels_to_90_reason: str | None = None  # why it is null, or why its interval is


@dataclass
class ModelPrompting:
    model: str
    zero_shot: ZeroShot
    few_shot: FewShot | None  # None with --shots 0
    curve: LabelCurve | None = None
    n_prompts: int = 0
    n_computed: int = 0  # prompts scored in this run (0 = all from the cache)
    n_tokens: int = 0  # tokens decoded in this run (doc parts and each shared prefix once)
    n_truncated: int = 0
    seconds: float | None = None
    tokens_per_second: float | None = None
    cache_dir: str = ""


@dataclass
class PromptPairSeed:
    seed: int
    floor_acc: float  # the weak model's probe on the test docs
    ceiling_acc: float  # the strong model, k shots with true labels
    acc: float  # the strong model, k shots with the weak model's labels
    auroc: float | None
    pgr: float | None
    pgr_reason: str | None = None
    demo_label_acc: float | None = None  # share of the weak demonstrations whose weak label is right


@dataclass
class PairPrompting:
    """The strong model's k-shot run with the weak model's labels, summarised like a probe's W2S run."""

    weak: str
    strong: str
    floor_acc: float  # means over seeds
    ceiling_acc: float
    acc: Estimate  # k-shot accuracy with the weak labels
    auroc_mean: float | None
    agreement_mean: float | None  # with the weak probe's test predictions
    gap: Estimate  # ceiling minus floor, paired over seeds and test docs
    gap_clears_min_gap: bool  # a PGR is given only when the gap's interval lies above min_gap
    pgr: float | None  # mean gain / mean gap over seeds and docs, as the probes' Summary.pgr
    pgr_ci: list[float] | None  # Fieller's interval of pgr (None when the gap cannot be told from zero)
    pgr_median: float | None  # OAI's median of per-seed PGRs, beside it
    pgr_reason: str | None
    n_valid_seeds: int
    per_seed: list[PromptPairSeed] = field(default_factory=list)


@dataclass
class Prompting:
    shots: int
    prompt_version: str
    suffix: str
    label_words: list[str]  # the word for label 0, the word for label 1
    models: list[ModelPrompting]
    pairs: list[PairPrompting] = field(default_factory=list)
    curve_sizes: list[int] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def model(self, name: str) -> ModelPrompting | None:
        return next((m for m in self.models if m.model == name), None)
