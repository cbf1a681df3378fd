"""Bad input for --prompting: one line, exit 2, before any model's weights are loaded."""

from __future__ import annotations

import pytest

from test_bad_input import FAST, cli, data, env, good_rows, one_error_line, run_args, write_jsonl  # noqa: F401


def test_negative_shots(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--prompting",
                                         "--shots", "-1"))[::2])
    assert line == "error: --shots must be 0 (zero-shot only) or a positive number of demonstrations (got -1)"


def test_shots_without_prompting(cli, data, tmp_path):
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", "smollm2-135m", "gemma3-270m", "--shots", "3"))[::2])
    assert "--shots only applies to the prompting baselines; add --prompting" in line


def test_a_task_without_a_prompting_form_says_so(cli, data, tmp_path, monkeypatch, smollm2, gemma3):
    from w2s_gguf.tasks.custom import Custom

    monkeypatch.setattr(Custom, "prompting_form", lambda self, options: None)
    line = one_error_line(*cli(*run_args(data, tmp_path / "out", smollm2.path, gemma3.path, "--prompting"))[::2])
    assert "task 'custom' has no prompting form" in line and "drop --prompting" in line


def test_more_shots_than_the_context_holds_is_refused_before_any_weights_load(cli, tmp_path, env, smollm2, gemma3):
    # Docs of about 1500 tokens each: 5 demonstrations and a test doc need about 9000, SmolLM2 holds 8192.
    rows = [{**row, "text": " ".join(f"word{i}-{j}" for j in range(500))} for i, row in enumerate(good_rows())]
    data = write_jsonl(tmp_path / "long.jsonl", rows)
    code, _, err = cli(*run_args(data, tmp_path / "out", smollm2.path, gemma3.path, "--prompting",
                                 "--max-tokens", "2000"))
    line = one_error_line(code, err)
    assert f"{smollm2.path.stem}: 5 demonstrations take" in line and "but the model's context holds 8192" in line
    assert "use fewer --shots or a smaller --max-tokens" in line
    tokens = [int(w) for w in line.replace(",", " ").split() if w.isdigit()]
    assert tokens[1] + tokens[2] == tokens[3] > 8192  # prefix + longest doc = the need, named in the line
    assert not (env / "embeddings").exists() and not (env / "scores").exists()  # nothing extracted or scored
    # The fix the message names works: with fewer shots the same prompts fit.
    from w2s_gguf.experiment import ExperimentConfig
    from w2s_gguf.experiment.prompting import check_prompting
    from w2s_gguf.tasks import TaskOptions, load_task

    config = ExperimentConfig(models=[str(smollm2.path), str(gemma3.path)], task="custom", n_train=8, n_test=4,
                              seeds=1, max_tokens=2000, prompting=True, shots=3,
                              task_options=TaskOptions(data=str(data)))
    check_prompting(config, load_task("custom", 8, 4, config.task_options), [smollm2, gemma3])


@pytest.mark.parametrize("shots", ["0", "2"])
def test_shots_parse_on_sweep_too(cli, data, tmp_path, shots):
    # sweep takes the same flags: a bad value elsewhere is still the first error, proving the flags parsed.
    line = one_error_line(*cli("sweep", "--models", "nosuchmodel,gemma3-270m", "--task", "custom", "--data", data, "--out",
                               tmp_path / "out", *FAST, "--prompting", "--shots", shots)[::2])
    assert "nosuchmodel" in line
