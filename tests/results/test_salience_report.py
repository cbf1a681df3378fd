"""The prompting block in report.md, salience.png, the terminal table and `report --compare` (from results alone)."""

from __future__ import annotations

from pathlib import Path

from w2s_gguf import report
from w2s_gguf.report.salience import salient
from w2s_gguf.results import load_results

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_report_md_says_which_models_find_the_task_salient():
    results = load_results(FIXTURES / "results_v3")
    text = report.report_markdown(results)
    section = text.split("## How much does each model already know?")[1].split("\n## ")[0]
    for m in results.prompting.models:
        verdict = "salient" if salient(m, 5)[0] else "not salient by prompting"
        assert f"- {m.model}: {verdict}: " in section
    assert "| smollm2-135m | gemma3-270m |" in section and "prompting PGR" in section
    assert "floor: weak probe acc" in section and "labels to 90% of probe gain" in section
    assert "![salience](salience.png)" in text
    assert "How much does each model" not in report.report_markdown(load_results(FIXTURES / "results_v2"))


def test_salience_png_and_the_terminal_block(tmp_path):
    results = load_results(FIXTURES / "results_v3")
    paths = report.write_report(tmp_path, results)
    png = tmp_path / "salience.png"
    assert png in paths and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = report.summary_table(results)
    assert "prompting (5 shots; score = log p(' yes') - log p(' no')):" in table
    assert "smollm2-135m -> gemma3-270m: 5-shot with weak labels" in table
    assert max(map(len, table.splitlines())) <= 100


def test_compare_shows_the_prompting_numbers_of_both_runs():
    v2, v3 = load_results(FIXTURES / "results_v2"), load_results(FIXTURES / "results_v3")
    both = report.compare_markdown(v3, v3, "a", "b")
    section = both.split("## How much does each model already know?")[1]
    auroc = f"{v3.prompting.models[0].zero_shot.auroc.value:.3f}"
    assert f"| smollm2-135m | {auroc}" in section and "prompting PGR (a / b)" in section
    assert "Only a ran --prompting." in report.compare_markdown(v3, v2, "a", "b")
    assert "already know" not in report.compare_markdown(v2, v2, "a", "b")


def test_a_model_biased_to_one_word_is_not_called_ignorant():
    results = load_results(FIXTURES / "results_v3")
    m = results.prompting.models[1]
    m.zero_shot.acc.value, m.zero_shot.acc.ci = 0.5, [0.45, 0.55]  # threshold 0: all one word
    m.zero_shot.auroc.value, m.zero_shot.auroc.ci = 0.8, [0.74, 0.86]  # but it ranks by the label
    yes, why = salient(m, 5)
    assert yes and "AUROC 0.800 [0.740, 0.860], above 0.5" in why
    m.zero_shot.auroc.ci = [0.45, 0.6]
    m.few_shot.auroc.ci, m.few_shot.acc.ci = [0.4, 0.6], [0.4, 0.55]
    assert not salient(m, 5)[0]
