"""w2s-gguf: weak-to-strong generalization on frozen GGUF embeddings.

The pipeline, one job per module (README "Layout" has the full list):
  tasks        one module per task -> binary docs
  models       registry (models.toml), fetching and verifying GGUF files
  embeddings   llama.cpp extraction (engine, layers) into a resumable cache
  protocol     the weak-to-strong protocol on arrays (the pure core)
  methods      one module per way of learning from weak labels
  results      the typed results schema, written and read by everyone
  experiment   task -> models -> features -> protocol -> results folder
  report       table, report.md and plots from results.json
  cli          the typer command line (parsing and printing only)
"""

__version__ = "0.2.0"

from .errors import SettingError, W2SError  # noqa: E402

__all__ = ["SettingError", "W2SError", "__version__"]
