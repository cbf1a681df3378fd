"""w2s-gguf: weak-to-strong generalization on frozen GGUF embeddings.

One module per concern:
  models      registry (models.toml), fetching and verifying GGUF files
  embeddings  llama.cpp feature extraction and its resumable on-disk cache
  tasks       dataset registry (one module per task) producing binary docs
  losses      xent, product and logconf losses
  heads       linear probe heads and their training
  experiment  the weak-to-strong protocol: splits, runs, PGR
  stats       PGR, bootstrap intervals
  report      results.json, report.md and plots
  cli         the typer command line (parsing and printing only)
"""

__version__ = "0.1.0"

from .errors import W2SError  # noqa: E402

__all__ = ["W2SError", "__version__"]
