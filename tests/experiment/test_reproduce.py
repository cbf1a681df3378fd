"""`w2s-gguf reproduce`: the comparison logic on fixtures, and a results.json from elsewhere as untrusted input
(the real rerun is in tests/cli/test_run_cli.py)."""

from __future__ import annotations

import copy
import json
import math
import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from conftest import invoke_cli
from w2s_gguf.errors import SettingError
from w2s_gguf.experiment import recipe, reproduce as reproduce_module
from w2s_gguf.experiment.config import ExperimentConfig
from w2s_gguf.experiment.reproduce import compare, numbers
from w2s_gguf.results import load_results, write_results

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_v1"


def test_results_read_back_from_disk_are_exact_and_one_ulp_is_not(tmp_path):
    a = load_results(FIXTURE)
    b = load_results(write_results(tmp_path, a))  # parsed again from the file it was written to
    comparison = compare(a, b)
    assert comparison.exact and comparison.verdict() == f"exact: all {len(numbers(a))} numbers match"
    assert len(numbers(a)) > 200  # every per-seed and summary number is compared
    # The smallest possible change of one number anywhere is found: "exact" means bit for bit.
    seed = b.pairs[0].per_seed[3].transfer["product"]
    seed.acc = math.nextafter(seed.acc, 1.0)
    comparison = compare(a, b)
    assert [m[0] for m in comparison.mismatches] == ["pairs[0].per_seed[3].transfer.product.acc"]
    assert comparison.largest()[1] == pytest.approx(math.ulp(seed.acc), rel=1)


def test_a_difference_is_located_and_the_environment_named():
    a = load_results(FIXTURE)
    b = copy.deepcopy(a)
    b.pairs[0].summary["logconf"].pgr_median += 0.25
    b.pairs[0].per_seed[1].transfer["xent"].acc -= 0.001
    b.versions["llama_cpp_python"] = "0.3.99"
    b.settings["n_threads"] = 16
    comparison = compare(a, b)
    assert not comparison.exact and len(comparison.mismatches) == 2
    where, difference = comparison.largest()
    assert where == "pairs[0].summary.logconf.pgr_median" and abs(difference - 0.25) < 1e-12
    verdict = comparison.verdict()
    assert "differs: 2 of" in verdict and "pairs[0].summary.logconf.pgr_median" in verdict
    assert "versions.llama_cpp_python '0.3.36' vs '0.3.99'" in verdict and "settings.n_threads 2 vs 16" in verdict


def test_a_file_that_does_not_record_decode_is_said_to_be_rerun_packed():
    a = load_results(FIXTURE)  # schema 1: no decode setting
    b = copy.deepcopy(a)
    b.settings["decode"] = "packed"
    assert compare(a, b).exact and "decode" not in compare(a, b).verdict()
    b.pairs[0].per_seed[1].transfer["xent"].acc -= 0.001
    verdict = compare(a, b).verdict()
    assert "does not record how texts shared a llama.cpp batch, so they were decoded packed" in verdict
    assert "--decode alone" in verdict and "settings.decode" not in verdict
    b.settings["decode"] = "alone"  # asked for: named like the other settings, and nothing is assumed
    verdict = compare(a, b).verdict()
    assert "settings.decode 'not recorded (packed before 0.3.1)' vs 'alone'" in verdict
    assert "does not record" not in verdict and "nondeterminism" not in verdict
    a.settings["decode"] = "auto"
    verdict = compare(a, b).verdict()
    assert "settings.decode 'auto' vs 'alone'" in verdict and "does not record" not in verdict


def test_the_settings_block_is_a_complete_recipe():
    results = load_results(FIXTURE)
    config = ExperimentConfig.from_json(results.settings)
    assert config.models == ["smollm2-135m", "gemma3-270m"] and config.seeds == 5
    assert config.methods == ["xent", "logconf", "product"] and config.n_train == 900
    # Through JSON text and back: nothing is lost or changes type.
    again = ExperimentConfig.from_json(json.loads(json.dumps(config.to_json())))
    assert again == config and again.to_json() == config.to_json()


# ---------------------------------------------------------------- someone else's results.json


def test_every_setting_has_a_type_and_bounds():
    # A new setting without a row here would reach the run unchecked when read from a file.
    assert {f.name for f in fields(ExperimentConfig)} == set(recipe.SETTINGS)
    for name in ("n_train", "n_test", "seeds", "max_tokens", "n_bootstrap", "n_threads", "data_seed"):
        assert recipe.SETTINGS[name].high is not None, name


@pytest.fixture
def crafted(tmp_path, monkeypatch, capsys):
    """Write the fixture with one settings field replaced; run `reproduce` on it in-process.

    Any attempt to resolve or load a model fails the test: bad fields must be refused before that.
    """
    def no_model(*args, **kwargs):
        raise AssertionError("a model was resolved before the recipe was checked")

    monkeypatch.setattr(reproduce_module, "resolve_model", no_model)
    monkeypatch.setattr(reproduce_module, "run_experiment", no_model)

    def run(**changes):
        data = json.loads((FIXTURE / "results.json").read_text())
        for key, value in changes.items():
            if value is KeyError:
                del data["settings"][key]
            else:
                data["settings"][key] = value
        folder = tmp_path / "from-elsewhere"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        (folder / "results.json").write_text(json.dumps(data))
        code, out, err = invoke_cli(monkeypatch, capsys, "reproduce", folder, "--out", tmp_path / "rerun", "--no-progress")
        assert code == 2 and "Traceback" not in err, err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        return err.strip().removeprefix("error: "), str(folder / "results.json")

    return run


@pytest.mark.parametrize("changes, message", [
    # A wrong type for a size setting (TypeError in config.py before).
    ({"n_train": "900"}, "settings.n_train in {} must be an integer (got str '900')"),
    ({"n_test": 600.5}, "settings.n_test in {} must be an integer (got float 600.5)"),
    ({"seeds": "five"}, "settings.seeds in {} must be an integer (got str 'five')"),
    ({"seeds": [0, 2, 7]}, "settings.seeds in {} must list the seeds 0, 1, ..., k-1 (got [0, 2, 7])"),
    ({"balance": "yes"}, "settings.balance in {} must be true or false (got str 'yes')"),
    ({"min_gap": None}, "settings.min_gap in {} must be a number (got null)"),
    # An unknown task option (TypeError in TaskOptions before).
    ({"task_options": {"max_rating": 2000, "colour": "white"}},
     "settings.task_options in {} has an unknown option 'colour'; known: data, min_rating, max_rating, themes, extra"),
    ({"task_options": {"extra": {"max_items": -3}}}, "settings.task_options.extra.max_items in {} must be an integer from 1 to"),
    ({"task_options": {"extra": {"shuffle": True}}}, "settings.task_options.extra in {} has an unknown option 'shuffle'"),
    ({"task_options": ["data.csv"]}, "settings.task_options in {} must be an object (got list"),
    # A method as an object instead of a string (AttributeError in methods before).
    ({"losses": [{"name": "xent"}]}, "settings.methods in {} must be a list of strings (got dict {{'name': 'xent'}} in it)"),
    ({"losses": "xent"}, "settings.methods in {} must be a list (got str 'xent')"),
    # Absurd sizes (memory or hours after extraction before).
    ({"n_bootstrap": 10**9}, "settings.n_bootstrap in {} must be an integer from 100 to 10000 (got 1000000000)"),
    ({"seeds": list(range(1000))}, "settings.seeds in {} must be an integer from 1 to 100 (got 1000)"),
    ({"max_tokens": 10**8}, "settings.max_tokens in {} must be an integer from 8 to 131072 (got 100000000)"),
    ({"n_train": 10**12}, "settings.n_train in {} must be an integer from 4 to 1000000"),
    # The protocol's own checks, named as in the file too.
    ({"ceiling_half": "C"}, "settings.ceiling_half in {} must be A or B (got 'C')"),
    ({"losses": ["xent", "nope"]}, "settings.methods in {} has a problem: unknown method 'nope'"),
    ({"models": KeyError}, "settings.models in {} is missing"),
    ({"decode": "fast"}, "settings.decode in {} must be one of auto, alone, packed (got 'fast')"),
])
def test_a_crafted_field_is_one_line_naming_it_before_any_model_is_loaded(crafted, changes, message):
    line, path = crafted(**changes)
    assert line.startswith(message.format(path)), line


def test_bounds_hold_for_settings_made_in_code_and_for_the_protocol():
    from w2s_gguf.core.protocol import ProtocolSettings

    for field, value in (("n_train", "900"), ("n_bootstrap", 10**9), ("seeds", True), ("n_threads", 0)):
        config = ExperimentConfig(models=["a", "b"], **{field: value})
        with pytest.raises(SettingError) as info:
            config.validate()
        assert info.value.param == field
    # run_protocol is public on its own: the bound is in its settings too, checked before any head trains.
    with pytest.raises(SettingError, match=r"^n_bootstrap must be an integer from 100 to 10000 \(got 1000000000\)"):
        ProtocolSettings(n_bootstrap=10**9).validate()
