"""The plain-text table printed after a run (ASCII, fits 100 columns)."""

from __future__ import annotations

import textwrap

from ..results import Difference, Results
from .format import DASH, ci_text, f3, methods_of, pair_label, pgr_text, sklearn_checked
from .text_only import text_only_line


def diff_text(d: Difference | None) -> str:
    """'+0.012 [-0.008,+0.031]', with a '*' where the interval excludes 0 (better or worse)."""
    if d is None:
        return DASH
    return f"{d.diff:+.3f} [{d.ci[0]:+.3f},{d.ci[1]:+.3f}]{'*' if d.ci[0] > 0 or d.ci[1] < 0 else ''}"


def summary_table(results: Results) -> str:
    settings, task = results.settings, results.task
    lines = [
        f"{task.name}: {task.n_train} train / {task.n_test} test docs, {len(results.seeds)} seeds, "
        f"min_gap {settings.get('min_gap', DASH)}",
        "accuracies: mean over seeds; misfit: student vs its weak labels on B; vs xent: accuracy difference,",
        "paired over seeds and docs, * = its 95% interval excludes 0; PGR: median over seeds [95% interval]",
    ]
    lines += textwrap.wrap(text_only_line(results) or "", width=100, subsequent_indent="  ")
    if not results.pairs:
        return "\n".join(lines + ["", "no weak/strong pairs in this run"])
    checked = sklearn_checked(results)
    for pair in results.pairs:
        methods = methods_of(results, pair)
        width = max(len("method"), *map(len, methods))
        gap = f"   gap {f3(pair.mean_gap)}" + (f" {ci_text(pair.gap.ci)}" if pair.gap else "")
        lines += ["", f"{pair_label(pair, results, '->')}   weak {f3(pair.weak_acc)}   strong {f3(pair.strong_acc)}{gap}",
                  f"  {'method':<{width}} {'transfer':>8} {'AUROC':>6} {'agree':>6} {'misfit':>6} {'vs xent':<23} "
                  + (f"{'sklearn':>7}  " if checked else "") + "PGR median [95% CI]"]
        sk = pair.sklearn_summary or {}
        # One reason shared by every method (a gap that cannot be told from zero, a self pair): say it once.
        reasons = {pair.summary[m].pgr_reason for m in methods if pair.summary[m].pgr_median is None}
        shared = reasons.pop() if len(reasons) == 1 and all(pair.summary[m].pgr_median is None for m in methods) else None
        if shared and len(methods) > 1:
            lines += textwrap.wrap(f"no PGR for any method: {shared}", width=100, initial_indent="  ",
                                   subsequent_indent="    ")
        for method in methods:
            s = pair.summary[method]
            # The sklearn column is an independent probe of xent; only its median, to stay narrow.
            sk_pgr = pgr_text(sk[method], with_ci=False) if method in sk else DASH
            sk_pgr = "n/a" if sk_pgr.startswith("n/a") else sk_pgr
            row = (f"  {method:<{width}} {f3(s.transfer_acc_mean):>8} {f3(s.auroc_mean):>6} {f3(s.agreement_mean):>6} "
                   f"{f3(s.misfit_train_mean):>6} {diff_text(s.vs_xent):<23} " + (f"{sk_pgr:>7}  " if checked else ""))
            # Long reasons wrap under the PGR column so the table stays within 100 columns.
            text = "n/a (above)" if shared and len(methods) > 1 else pgr_text(s)
            lines += textwrap.wrap(row + text, width=100, subsequent_indent=" " * len(row))
    if results.prompting:
        from .salience import salience_lines

        lines += salience_lines(results)
    return "\n".join(lines)
