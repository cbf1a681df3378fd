"""The statistics as the reader sees them: one PGR rule printed the same everywhere, Holm's star, the
planning line, which half a ceiling came from, and older files still reported as they were."""

from __future__ import annotations

import dataclasses
import json
import importlib.util
from pathlib import Path

import numpy as np

from w2s_gguf.core.protocol import ProtocolSettings, run_protocol
from w2s_gguf.report.format import PGR_RULE
from w2s_gguf.report.markdown import report_markdown
from w2s_gguf.report.table import HOLM_NOTE, summary_table
from w2s_gguf.results import load_results

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def one_line(text: str) -> str:
    return " ".join(text.split())


def fixture_results(**protocol):
    """The schema-3 contract file's run (tests/fixtures/make_results_v3.py), with other protocol settings."""
    spec = importlib.util.spec_from_file_location("make_results_v3", FIXTURES / "make_results_v3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.build()
    if protocol:
        rng = np.random.default_rng(0)
        y_train, y_test = rng.integers(0, 2, 400), rng.integers(0, 2, 300)
        features = {}
        for name, signal in (("smollm2-135m", 0.5), ("gemma3-270m", 1.5)):
            x = rng.standard_normal((700, 8)).astype(np.float32)
            x[:, 0] += signal * (2 * np.r_[y_train, y_test] - 1)
            features[name] = (x[:400], x[400:])
        out = run_protocol(features, y_train, y_test, settings=ProtocolSettings(seeds=3, **protocol))
        results = dataclasses.replace(results, ground_truth=out.ground_truth, pairs=out.pairs,
                                      settings={**results.settings, **protocol},
                                      task=dataclasses.replace(results.task, n_test=300, n_test_available=300))
    return results


def test_one_pgr_rule_printed_the_same_in_the_table_the_report_and_the_docs():
    results = fixture_results()
    assert PGR_RULE in one_line(summary_table(results))
    assert PGR_RULE in one_line(report_markdown(results))
    for page in ("README.md", "docs/design.md"):
        assert PGR_RULE in one_line((REPO / page).read_text()), page
    # The old wording contradicted the code ("null when the mean gap is below min_gap").
    assert "mean gap over seeds is below min_gap" not in report_markdown(results)


def test_the_table_says_how_many_docs_would_settle_it_within_100_columns():
    results = fixture_results(methods=["all"], sklearn_baseline=True)
    table = summary_table(results)
    assert max(map(len, table.splitlines())) <= 100
    assert HOLM_NOTE in table
    plan = one_line(table[table.index("plan:"):])
    assert "xent PGR +-0.1:" in plan and ("test docs at 3 seeds" in plan or "out of reach at 3 seeds" in plan)
    report = report_markdown(results)
    assert "## How many docs would settle it" in report and "The task can supply 300 test docs." in report
    for method in results.pairs[0].summary:
        assert f" {method} " in report[report.index("## How many docs"):]


def test_a_plan_beyond_the_task_says_so():
    results = fixture_results()
    pair = results.pairs[0]
    assert pair.gap_plan.n_test is not None and pair.gap_plan.n_test > results.task.n_test_available
    assert f", more than the {results.task.n_test_available} the task has" in one_line(summary_table(results))


def test_the_ground_truth_table_says_which_half_each_ceiling_learnt_from():
    report = report_markdown(fixture_results(ceiling_half="B"))
    section = report[report.index("## Ground truth"):report.index("## Per seed")]
    assert "| A: teacher (weak acc) |" in section and "| B: ceiling (strong acc) |" in section
    assert "trained on half B" in report


def test_older_files_still_report_their_median_and_its_old_interval():
    results = load_results(FIXTURES / "results_v1")  # v1 and v2 go through the same upgrade
    s = results.pairs[0].summary["logconf"]
    assert s.pgr is None and s.pgr_ci is None and s.pgr_median == 0.5949715549404055
    assert s.pgr_median_ci == [0.25632022587473, 0.6719704010992136]
    assert "0.595 [0.256, 0.672]" in report_markdown(results)
    v2 = load_results(FIXTURES / "results_v2").pairs[0].summary["logconf"]
    assert v2.disagree_train_mean is not None  # its misfit_train: the 0-1 disagreement with the weak labels


def test_a_schema_3_file_with_the_old_statistics_reads_its_median_as_the_median(tmp_path):
    # The text-only baseline reached schema 3 before these statistics did: such a file keeps the v2
    # summaries (pgr_mean, misfit_train_mean, pgr_ci of the median) and must not pass that interval off
    # as Fieller's interval of the ratio of means.
    data = json.loads((FIXTURES / "results_v2" / "results.json").read_text())
    data["schema_version"] = 3
    (tmp_path / "results.json").write_text(json.dumps(data))
    s = load_results(tmp_path).pairs[0].summary["logconf"]
    old = data["pairs"][0]["summary"]["logconf"]
    assert s.pgr is None and s.pgr_ci is None and s.pgr_median_ci == old["pgr_ci"]
    assert s.disagree_train_mean == old["misfit_train_mean"]
