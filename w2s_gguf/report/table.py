"""The plain-text table printed after a run (ASCII, fits 100 columns)."""

from __future__ import annotations

import textwrap

from ..results import Results
from .format import DASH, ci_text, f3, methods_of, pair_label, pgr_text


def summary_table(results: Results) -> str:
    settings, task = results.settings, results.task
    lines = [
        f"{task.name}: {task.n_train} train / {task.n_test} test docs, {len(results.seeds)} seeds, "
        f"min_gap {settings.get('min_gap', DASH)}",
        "accuracies: mean over seeds; PGR: median over valid seeds [95% bootstrap interval]",
    ]
    if not results.pairs:
        return "\n".join(lines + ["", "no weak/strong pairs in this run"])
    header = (f"  {'method':<9} {'transfer':>8} {'AUROC':>6} {'agree':>6} {'seeds':>5} {'sklearn PGR':>11}"
              "  PGR median [95% CI]")
    for pair in results.pairs:
        gap = f"   gap {f3(pair.mean_gap)}" + (f" {ci_text(pair.gap.ci)}" if pair.gap else "")
        lines += ["", f"{pair_label(pair, results, '->')}   weak {f3(pair.weak_acc)}   strong {f3(pair.strong_acc)}{gap}",
                  header]
        sk = pair.sklearn_summary or {}
        for method in methods_of(results, pair):
            s = pair.summary[method]
            # The sklearn column is an independent probe; show only its median to stay narrow.
            sk_pgr = pgr_text(sk[method], with_ci=False) if method in sk else DASH
            sk_pgr = "n/a" if sk_pgr.startswith("n/a") else sk_pgr
            seeds = f"{s.n_valid_seeds}/{len(results.seeds)}"
            row = (f"  {method:<9} {f3(s.transfer_acc_mean):>8} {f3(s.auroc_mean):>6} "
                   f"{f3(s.agreement_mean):>6} {seeds:>5} {sk_pgr:>11}  ")
            # Long reasons wrap under the PGR column so the table stays within 100 columns.
            lines += textwrap.wrap(row + pgr_text(s), width=100, subsequent_indent=" " * len(row))
    return "\n".join(lines)
