"""The results schema: one set of dataclasses for the writer and every reader, and older files still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from w2s_gguf.errors import W2SError
from w2s_gguf.results import SCHEMA_VERSION, Results, load_results, to_json, write_results

FIXTURES = Path(__file__).parent / "fixtures"


def shape(value, path=""):
    """Every key path with the JSON type of its value (lists by their first item)."""
    if isinstance(value, dict):
        return {k2: t for k, v in value.items() for k2, t in shape(v, f"{path}.{k}").items()} or {path: "{}"}
    if isinstance(value, list):
        return shape(value[0], f"{path}[]") if value else {path: "[]"}
    return {path: "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__}


def test_the_v2_fixture_is_what_the_real_writer_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_results_v2", FIXTURES / "make_results_v2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = json.loads(write_results(tmp_path, module.build()).read_text())
    checked_in = json.loads((FIXTURES / "results_v2" / "results.json").read_text())
    # Same keys with the same types: a writer change that alters the file must regenerate the fixture
    # (python tests/fixtures/make_results_v2.py) and, if readers must change too, bump SCHEMA_VERSION.
    # Numbers may move in the last bits across torch builds, so they are not compared.
    assert shape(written) == shape(checked_in)
    assert written["schema_version"] == SCHEMA_VERSION == 2


@pytest.mark.parametrize("version", ["results_v1", "results_v2"])
def test_every_fixture_loads_into_the_current_schema(version, tmp_path):
    results = load_results(FIXTURES / version)
    assert isinstance(results, Results) and results.schema_version == SCHEMA_VERSION
    assert results.methods == ["xent", "logconf", "product"]
    assert [g.model for g in results.ground_truth] == ["smollm2-135m", "gemma3-270m"]
    assert all(g.layer == "last" for g in results.ground_truth) and results.pairs[0].layer == "last"
    assert results.pairs[0].summary["xent"].transfer_acc_mean > 0.5
    # Written back, it reads the same.
    assert load_results(write_results(tmp_path, results)) == results


def test_a_wrong_type_is_one_line_naming_the_place(tmp_path):
    data = json.loads((FIXTURES / "results_v2" / "results.json").read_text())
    data["pairs"][0]["summary"]["logconf"]["n_valid_seeds"] = "three"
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(W2SError, match=r"pairs\[0\]\.summary\.logconf\.n_valid_seeds should be a int") as info:
        load_results(tmp_path)
    assert "\n" not in str(info.value)


def test_to_json_orders_the_file_top_down():
    results = load_results(FIXTURES / "results_v2")
    assert list(to_json(results))[:5] == ["schema_version", "kind", "created", "command", "settings"]


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    import os
    import stat

    path = write_results(tmp_path, load_results(FIXTURES / "results_v2"))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
