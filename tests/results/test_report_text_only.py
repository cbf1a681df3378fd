"""The text-only baseline's line in the terminal table, its section in report.md and its rows in to_frame()."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from w2s_gguf.report import report_markdown, summary_table
from w2s_gguf.results import load_results

FIXTURES = Path(__file__).parents[1] / "fixtures"


def verdict(acc, ci):
    return "below what the words alone give" if acc < ci[0] else "above what the words alone give" if acc > ci[1] \
        else "within the text-only interval"


def test_the_table_says_where_each_probe_stands_against_the_words():
    results = load_results(FIXTURES / "results_v3")
    baseline = results.text_baseline
    table = summary_table(results)
    assert f"text-only {baseline.acc_mean:.3f} [{baseline.ci[0]:.3f},{baseline.ci[1]:.3f}]" in table
    flat = " ".join(table.split())
    for gt in results.ground_truth:
        assert f"{gt.model}'s probe {gt.acc_mean:.3f} is {verdict(gt.acc_mean, baseline.ci)}" in flat
    # The fixture's weak probe, 0.650, lies within [0.610, 0.910]: its 3 seeds disagree (0.70, 0.82, 0.76), so
    # the t interval at Satterthwaite's few df is wide.
    assert "smollm2-135m's probe 0.650 is within the text-only interval" in flat
    assert max(map(len, table.splitlines())) <= 100


def test_a_probe_above_the_interval_is_called_above_and_one_below_it_below():
    results = load_results(FIXTURES / "results_v3")
    low = dataclasses.replace(results.text_baseline, acc_mean=0.55, ci=[0.5, 0.6])
    table = " ".join(summary_table(dataclasses.replace(results, text_baseline=low)).split())
    assert "smollm2-135m's probe 0.650 is above what the words alone give" in table
    high = dataclasses.replace(results.text_baseline, acc_mean=0.75, ci=[0.7, 0.8])
    table = " ".join(summary_table(dataclasses.replace(results, text_baseline=high)).split())
    assert "smollm2-135m's probe 0.650 is below what the words alone give" in table


def test_report_md_has_the_section_with_per_seed_numbers():
    results = load_results(FIXTURES / "results_v3")
    md = report_markdown(results)
    section = md[md.index("## Text-only baseline"):md.index("![accuracy]")]
    assert f"**{results.text_baseline.acc_mean:.3f}**" in section and "half A" in section
    for seed in results.text_baseline.per_seed:
        assert f"| {seed.seed} | {seed.acc:.3f} |" in section
    assert "LogisticRegression" in section


def test_files_from_before_the_baseline_render_without_it():
    results = load_results(FIXTURES / "results_v2")
    assert results.text_baseline is None
    assert "text-only" not in summary_table(results)
    md = report_markdown(results)
    assert "## Text-only baseline\n\nnot recorded" in md


def test_the_frame_has_its_rows():
    results = load_results(FIXTURES / "results_v3")
    df = results.to_frame()
    rows = df[df.kind == "text_baseline"]
    per_seed = rows[rows.metric == "acc"].dropna(subset=["seed"])
    assert list(per_seed.value) == [s.acc for s in results.text_baseline.per_seed]
    over = rows[rows.seed.isna()].set_index("metric").value
    assert over["acc_mean"] == results.text_baseline.acc_mean and over["ci_low"] == results.text_baseline.ci[0]
    assert not load_results(FIXTURES / "results_v2").to_frame().kind.eq("text_baseline").any()
