"""The plain-text table printed after a run (ASCII, fits 100 columns)."""

from __future__ import annotations

import textwrap

from ..results import Difference, PairResult, Results
from .format import DASH, PGR_RULE, ci_text, f3, methods_of, pair_label, pgr_text, plan_text, sklearn_checked
from .text_only import text_only_line

WIDTH = 100
HOLM_NOTE = "* = differs from xent after Holm's correction over the pair's methods (family-wise 5%)"


def diff_text(d: Difference | None) -> str:
    """'+0.012 [-0.008,+0.031]', with a '*' where the difference stands after Holm's correction (files of
    schema <= 2, without Holm: where the interval excludes 0)."""
    if d is None:
        return DASH
    star = d.holm if d.holm is not None else (d.ci[0] > 0 or d.ci[1] < 0)
    return f"{d.diff:+.3f} [{d.ci[0]:+.3f},{d.ci[1]:+.3f}]{'*' if star else ''}"


def plan_lines(pair: PairResult, results: Results, indent: str = "  ") -> list[str]:
    """How many test docs would settle this pair's gap and xent's PGR (core/planning.py)."""
    available = results.task.n_test_available
    parts = []
    if pair.gap_plan is not None and not (pair.gap and pair.gap.distinguishable):
        parts.append(f"gap above min_gap: {plan_text(pair.gap_plan, available)}")
    method = "xent" if "xent" in pair.summary else next(iter(pair.summary), None)  # an ensemble row has no xent
    if method is not None and pair.summary[method].pgr_plan is not None:
        parts.append(f"{method} PGR +-0.1: {plan_text(pair.summary[method].pgr_plan, available)}")
    if not parts:
        return []
    return textwrap.wrap("plan: " + "; ".join(parts), width=WIDTH, initial_indent=indent,
                         subsequent_indent=indent + "  ")


def summary_table(results: Results) -> str:
    settings, task = results.settings, results.task
    lines = [f"{task.name}: {task.n_train} train / {task.n_test} test docs, {len(results.seeds)} seeds, "
             f"min_gap {settings.get('min_gap', DASH)}"]
    lines += textwrap.wrap(PGR_RULE + "; 95% intervals cover new seeds and new test docs.", width=WIDTH)
    lines += ["accuracies: mean over seeds; agree: with the weak teacher on test; misfit: mean squared",
              "distance of P(1) to the student's teacher on test (Charikar et al.); vs xent: paired difference;",
              HOLM_NOTE]
    lines += textwrap.wrap(text_only_line(results) or "", width=WIDTH, subsequent_indent="  ")
    if not results.pairs:
        return "\n".join(lines + ["", "no weak/strong pairs in this run"])
    checked = sklearn_checked(results)
    for pair in results.pairs:
        methods = methods_of(results, pair)
        width = max(len("method"), *map(len, methods))
        gap = f"   gap {f3(pair.mean_gap)}" + (f" {ci_text(pair.gap.ci)}" if pair.gap else "")
        half = " (ceiling on B)" if settings.get("ceiling_half") == "B" else ""
        lines += ["", f"{pair_label(pair, results, '->')}   weak {f3(pair.weak_acc)}   strong {f3(pair.strong_acc)}{half}"
                      f"{gap}",
                  f"  {'method':<{width}} {'transfer':>8} {'AUROC':>6} {'agree':>6} {'misfit':>6} {'vs xent':<23} "
                  + (f"{'sklearn':>7} " if checked else "") + "PGR [95% CI]"]
        sk = pair.sklearn_summary or {}
        # One reason shared by every method (a gap that cannot be told from zero, a self pair): say it once.
        nulls = [pair.summary[m].pgr_reason for m in methods if pgr_text(pair.summary[m]).startswith("n/a")]
        shared = nulls[0] if len(nulls) == len(methods) and len(set(nulls)) == 1 else None
        if shared and len(methods) > 1:
            lines += textwrap.wrap(f"no PGR for any method: {shared}", width=WIDTH, initial_indent="  ",
                                   subsequent_indent="    ")
        for method in methods:
            s = pair.summary[method]
            # The sklearn column is an independent probe of xent; only its value, to stay narrow.
            sk_pgr = pgr_text(sk[method], with_ci=False) if method in sk else DASH
            sk_pgr = "n/a" if sk_pgr.startswith("n/a") else sk_pgr
            row = (f"  {method:<{width}} {f3(s.transfer_acc_mean):>8} {f3(s.auroc_mean):>6} {f3(s.agreement_mean):>6} "
                   f"{f3(s.misfit_mean):>6} {diff_text(s.vs_xent):<23} " + (f"{sk_pgr:>7} " if checked else ""))
            # Long reasons wrap under the PGR column so the table stays within 100 columns.
            text = "n/a (above)" if shared and len(methods) > 1 else pgr_text(s)
            lines += textwrap.wrap(row + text, width=WIDTH, subsequent_indent=" " * len(row))
        lines += plan_lines(pair, results)
    if results.prompting:
        from .salience import salience_lines

        lines += salience_lines(results)
    return "\n".join(lines)
