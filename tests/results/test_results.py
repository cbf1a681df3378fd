"""The results schema: one set of dataclasses for the writer and every reader, and older files still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from w2s_gguf.errors import W2SError
from w2s_gguf.results import SCHEMA_VERSION, Results, load_results, to_json, write_results

FIXTURES = Path(__file__).parents[1] / "fixtures"


def shape(value, path=""):
    """Every key path with the JSON type of its value (lists by their first item)."""
    if isinstance(value, dict):
        return {k2: t for k, v in value.items() for k2, t in shape(v, f"{path}.{k}").items()} or {path: "{}"}
    if isinstance(value, list):
        return shape(value[0], f"{path}[]") if value else {path: "[]"}
    return {path: "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__}


def test_the_v3_fixture_is_what_the_real_writer_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_results_v3", FIXTURES / "make_results_v3.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = json.loads(write_results(tmp_path, module.build()).read_text())
    checked_in = json.loads((FIXTURES / "results_v3" / "results.json").read_text())
    # Same keys with the same types: a writer change that alters the file must regenerate the fixture
    # (python tests/fixtures/make_results_v3.py) and, if readers must change too, bump SCHEMA_VERSION.
    # Numbers may move in the last bits across torch builds, so they are not compared.
    assert shape(written) == shape(checked_in)
    assert written["schema_version"] == SCHEMA_VERSION == 3


def test_a_v2_file_loads_with_no_prompting_block():
    results = load_results(FIXTURES / "results_v2")
    assert results.prompting is None and results.schema_version == SCHEMA_VERSION


def test_the_prompting_block_round_trips_typed():
    results = load_results(FIXTURES / "results_v3")
    p = results.prompting
    assert p.shots == 5 and [m.model for m in p.models] == ["smollm2-135m", "gemma3-270m"]
    assert p.models[1].curve.points[-1].full and p.models[1].few_shot.acc.ci[0] <= p.models[1].few_shot.acc.value
    assert p.pairs[0].weak == "smollm2-135m" and p.pairs[0].gap.ci is not None


def test_a_wrong_type_in_the_prompting_block_names_its_place(tmp_path):
    data = json.loads((FIXTURES / "results_v3" / "results.json").read_text())
    data["prompting"]["models"][0]["zero_shot"]["auroc"]["value"] = "high"
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(W2SError, match=r"prompting\.models\[0\]\.zero_shot\.auroc\.value should be a number"):
        load_results(tmp_path)


@pytest.mark.parametrize("version", ["results_v1", "results_v2", "results_v3"])
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


def test_to_frame_is_tidy_and_every_number_is_the_schema_one():
    results = load_results(FIXTURES / "results_v2")
    df = results.to_frame()
    assert list(df.columns) == ["kind", "model", "weak", "strong", "layer", "method", "seed", "metric", "value"]
    pair = results.pairs[0]
    # A per-seed transfer score and a summary, read back from the frame, are the schema's own numbers.
    row = pair.per_seed[1]
    method = next(iter(row.transfer))
    got = df[(df.kind == "transfer") & (df.weak == pair.weak) & (df.strong == pair.strong) & (df.layer == pair.layer)
             & (df.method == method) & (df.seed == row.seed) & (df.metric == "acc")]
    assert len(got) == 1 and got.value.iloc[0] == row.transfer[method].acc
    summary = pair.summary[method]
    s = df[(df.kind == "summary") & (df.weak == pair.weak) & (df.method == method) & (df.layer == pair.layer)]
    assert s.set_index("metric").value["transfer_acc_mean"] == summary.transfer_acc_mean
    assert s.seed.isna().all()
    ceilings = df[(df.kind == "ceiling") & (df.metric == "acc")]
    assert len(ceilings) == sum(len(g.per_seed) for g in results.ground_truth)
    assert sorted(ceilings.value) == sorted(s.acc for g in results.ground_truth for s in g.per_seed)
    # One row per (kind, model, pair, layer, method, seed, metric): nothing is counted twice.
    keys = ["kind", "model", "weak", "strong", "layer", "method", "seed", "metric"]
    assert not df.duplicated(subset=keys).any()
    first = df[(df.kind == "transfer") & (df.metric == "acc") & (df.weak == pair.weak) & (df.strong == pair.strong)
               & (df.layer == pair.layer)]
    pivot = first.pivot_table(index="method", columns="seed", values="value")
    assert pivot.shape == (len(pair.summary), len(pair.per_seed))
