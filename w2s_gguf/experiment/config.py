"""Every setting of an experiment, validated once where it enters the library.

`ExperimentConfig` is flat on purpose: `to_json()` is the `settings` block
of results.json and `from_json()` reads it back, so a results file is a
complete recipe (`w2s-gguf reproduce`). Messages name the parameters; the
CLI shows its own flags instead (errors.SettingError).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..features.cache import STORE_DTYPES
from ..features.engine import DEFAULT_MAX_TOKENS, POOLINGS, check_decode
from ..features.layers import check_layer_spec
from ..errors import SettingError, W2SError
from ..core.protocol import ProtocolSettings
from ..tasks import TaskOptions
from .recipe import SETTINGS, check, check_recipe, check_task_options


@dataclass
class ExperimentConfig:
    models: list[str]  # weak to strong; `run` passes [weak, strong]
    task: str = "sentiment"
    n_train: int = 900
    n_test: int = 600
    seeds: int = 5
    methods: list[str] = field(default_factory=lambda: ["xent", "logconf", "product"])
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
    n_bootstrap: int = 1000  # accuracies and PGR use analytic intervals; only --prompting's AUROC and labels-to-90 draw this many
    self_pairs: bool = False  # also train strong-on-own-labels (W = S) runs, as OAI's sweep does
    sklearn_baseline: bool = False  # the independent scikit-learn check (opt-in: it doubles a warm run)
    registry: str | None = None
    weak_models: int | None = None  # run: the first k models are weak (teachers), the rest strong; sweep: None
    layers: list[str] = field(default_factory=lambda: ["last"])  # last, middle, all, block N, fraction of depth
    store_dtype: str = "float32"
    ray: str | None = None  # a Ray cluster address ("auto", "host:port", "ray://host:10001") for extraction
    prompting: bool = False  # prompting baselines (zero- and k-shot) and label-efficiency curves beside the probes
    shots: int = 5  # demonstrations per few-shot prompt; 0 = zero-shot only
    decode: str = "auto"  # texts per llama.cpp batch: auto (alone on the CPU, packed on a GPU), alone, packed

    def protocol(self) -> ProtocolSettings:
        names = {f.name for f in fields(ProtocolSettings)}
        return ProtocolSettings(**{k: v for k, v in asdict(self).items() if k in names})

    def validate(self) -> None:
        if isinstance(self.shots, bool) or not isinstance(self.shots, int) or self.shots < 0:  # before the bounds: say what 0 means
            raise SettingError("shots", f"must be 0 (zero-shot only) or a positive number of demonstrations (got {self.shots!r})")
        for name, rule in SETTINGS.items():  # types and bounds first: the checks below compare values
            if name != "task_options":
                check(name, getattr(self, name), rule)
        check_task_options(asdict(self.task_options))
        if len(self.models) < 2:
            raise SettingError("models", "needs at least two models (a weak and a strong one)")
        if len(set(self.models)) != len(self.models):
            raise W2SError(f"a model is listed twice in {', '.join(self.models)}; list each once, weak to strong")
        if self.pooling not in POOLINGS:
            raise SettingError("pooling", f"must be last or mean (got {self.pooling!r})")
        if not self.layers:
            raise SettingError("layers", "is empty; give last, middle, all, a block number or a fraction")
        for spec in self.layers:
            check_layer_spec(spec)
        if self.ray and self.layers != ["last"]:
            raise SettingError("ray", "works with --layer last only (layer capture on a cluster is not built yet); "
                                      "drop --ray, or extract the layers locally")
        check_decode(self.decode)
        if self.store_dtype not in STORE_DTYPES:
            raise SettingError("store_dtype", f"must be float32 or float16 (got {self.store_dtype!r})")
        if self.shots != 5 and not self.prompting:
            raise SettingError("shots", "only applies to the prompting baselines; add --prompting")
        self.protocol().validate(len(self.models))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(range(self.seeds))
        data["task_options"] = {k: v for k, v in asdict(self.task_options).items() if v not in (None, (), {}, [])}
        return data

    @classmethod
    def from_json(cls, settings: dict[str, Any], where: str = "in results.json") -> "ExperimentConfig":
        """The config a results file's `settings` describe (schema 1 and 2), each field checked first:
        a wrong type or size is a SettingError naming it as in the file (settings.n_train)."""
        check_recipe(settings, where)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in settings.items() if k in known}
        data["models"] = list(settings.get("model_specs") or settings["models"])
        data["seeds"] = len(settings["seeds"]) if isinstance(settings.get("seeds"), list) else settings.get("seeds", 5)
        if "losses" in settings and "methods" not in settings:
            data["methods"] = settings["losses"]
        options = dict(settings.get("task_options") or {})
        if "themes" in options:
            options["themes"] = tuple(options["themes"])
        data["task_options"] = TaskOptions(**options)
        return cls(**data)
