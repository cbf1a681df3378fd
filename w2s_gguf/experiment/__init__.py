"""Orchestration: one experiment end to end, and the commands built from it.

  config.py     ExperimentConfig: every setting, validated once
  recipe.py     each setting's type and bounds, also for a results.json from elsewhere
  run.py        task -> models -> features -> protocol -> results folder (run_experiment)
  prompting.py  --prompting: prompting baselines and label-efficiency curves beside the probes
  reproduce.py  rerun a results file's recipe and compare number by number
  export.py     `embed`: a task's features in the file's order

    from w2s_gguf.experiment import ExperimentConfig, run_experiment
    results = run_experiment(ExperimentConfig(models=["smollm2-135m", "gemma3-270m"], task="sciq"), "out/")

May import: every stage below (models, tasks, features, results, core).
"""

from .config import ExperimentConfig
from .run import PREDICTIONS_NAME, extract_features, library_versions, run_experiment

__all__ = ["ExperimentConfig", "PREDICTIONS_NAME", "extract_features", "library_versions", "run_experiment"]
