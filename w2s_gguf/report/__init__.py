"""Rendering a run's results: the terminal table, report.md and plots, and comparing two runs.

Everything here works from `results.Results` alone (read from results.json
with `load_results`), so `w2s-gguf report DIR` can re-render a folder long
after the run, or on another machine.

May import: errors, common, results, features.layers (relative depth of a layer).
"""

from __future__ import annotations

from pathlib import Path

from ..results import Results, load_results
from ..common.storage import atomic_write_bytes, atomic_write_text
from .compare import compare_markdown, compare_plot
from .markdown import ACCURACY_PNG, LAYERS_PNG, MISFIT_PNG, PGR_PNG, figure_names, report_markdown
from .plots import accuracy_figure, layers_figure, misfit_figure, pgr_figure, png_bytes
from .salience import SALIENCE_PNG, salience_figure
from .table import summary_table

REPORT_NAME = "report.md"
__all__ = ["ACCURACY_PNG", "LAYERS_PNG", "MISFIT_PNG", "PGR_PNG", "REPORT_NAME", "accuracy_figure", "compare_markdown",
           "compare_plot", "layers_figure", "load_results", "misfit_figure", "pgr_figure", "report_markdown",
           "summary_table", "write_report"]


def write_report(folder: str | Path, results: Results | None = None) -> list[Path]:
    """Write report.md and the plots (accuracy.png, pgr.png, misfit.png, layers.png when layers are compared)
    into `folder`; return their paths.

    With `results` None the folder's results.json is loaded, so a report can
    be re-rendered from the file alone.
    """
    if results is None:
        results = load_results(folder)
    out = Path(folder)
    out = out.parent if out.is_file() else out
    written = []
    figures = {ACCURACY_PNG: accuracy_figure, PGR_PNG: pgr_figure, MISFIT_PNG: misfit_figure, LAYERS_PNG: layers_figure,
               SALIENCE_PNG: salience_figure}
    for name in figure_names(results):
        atomic_write_bytes(out / name, png_bytes(figures[name](results)))
        written.append(out / name)
    atomic_write_text(out / REPORT_NAME, report_markdown(results))
    return [out / REPORT_NAME, *written]
