"""w2s-gguf: weak-to-strong generalization on frozen GGUF embeddings.

The package reads as the pipeline, one stage per subpackage; a stage imports
only the stages above it in this list (tests/test_layout.py checks it):

  errors       the exceptions a user sees (one line, exit code 2)
  common       files on disk, locks, the plugin registry, the hub check, PyPI package files
  models       a registry name or .gguf path -> a verified GGUF file
  tasks        a task name -> binary docs (one module per task)
  features     llama.cpp -> frozen features, cached and resumable (engine, layers, pipeline, cache, Ray)
  results      the typed results schema, written and read by every stage
  core         the weak-to-strong protocol on arrays (heads, methods, statistics)
  report       the table, report.md and plots, from results alone
  experiment   task -> models -> features -> protocol -> results folder; reproduce; export
  tools        doctor and bench
  cli          the typer command line (parsing and printing only)

Modules that moved here from the flat layout of 0.2 still import under their old names
(`w2s_gguf.protocol`, `w2s_gguf.heads`, ...), with a DeprecationWarning naming the new place.
"""

__version__ = "0.3.1"

from . import _moved  # noqa: E402,F401  (old module names -> their new places)
from .errors import SettingError, W2SError  # noqa: E402

__all__ = ["SettingError", "W2SError", "__version__"]
