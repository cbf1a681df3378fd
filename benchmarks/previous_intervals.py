"""The previous statistics' intervals on a finished run's own predictions, against the current ones.

  python benchmarks/previous_intervals.py RESULTS_DIR                      # width ratios over every pair and layer
  python benchmarks/previous_intervals.py RESULTS_DIR --pair WEAK STRONG LAYER   # and each method's vs-xent interval

Before the two-way variance-component intervals (core/intervals.py), every gap and method-vs-xent
interval was one crossed bootstrap: each draw resampled seeds and test docs together (commit 7267463,
core/intervals.paired_diff_ci, copied below). This script recomputes that interval from predictions.npz
and the run's test labels (the task reloaded with the run's settings, so row i is test doc i) and prints
it beside the interval in results.json, and the previous width over the current one. Used for the
"What moved" paragraphs of docs/results.md. Ensemble rows are skipped (the previous statistics scored
them against a single weak model).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def crossed_bootstrap_ci(correct_a, correct_b, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> list[float]:
    """7267463's paired_diff_ci: seeds and docs resampled in one crossed draw, the same draw for a and b."""
    diff = np.asarray(correct_a, np.int8) - np.asarray(correct_b, np.int8)
    n_seeds, n_test = diff.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, (n_boot, n_seeds))
    docs = rng.integers(0, n_test, (n_boot, n_test))
    draws = np.empty(n_boot)
    for start in range(0, n_boot, 100):
        s, d = seeds[start : start + 100, :, None], docs[start : start + 100, None, :]
        draws[start : start + 100] = diff[s, d].mean(axis=(1, 2))
    alpha = (1 - level) / 2
    return [float(q) for q in np.quantile(draws, [alpha, 1 - alpha])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a results folder (results.json and predictions.npz)")
    parser.add_argument("--pair", nargs=3, metavar=("WEAK", "STRONG", "LAYER"), help="print each method of this pair")
    args = parser.parse_args()

    from w2s_gguf.results import load_results
    from w2s_gguf.tasks import load_task

    results = load_results(args.results)
    s = results.settings
    if s["task_options"]:  # a --data file is one of them
        raise SystemExit("runs with task options or a --data file are not handled; pass a run of a packaged task")
    labels = np.array([d.label for d in load_task(s["task"], s["n_train"], s["n_test"], balance=s["balance"],
                                                  data_seed=s["data_seed"]).test])
    with np.load(args.results / "predictions.npz", allow_pickle=False) as npz:
        predictions = {k: npz[k] for k in npz.files}

    def correct(kind: str, *names: str, seed: int, layer: str) -> np.ndarray:
        key = "|".join([kind, *names, str(seed)] + ([] if layer == "last" else [layer]))  # last: no suffix
        return predictions[key].argmax(1) == labels

    def stacked(kind, *names, layer):
        return np.stack([correct(kind, *names, seed=k, layer=layer) for k in s["seeds"]])

    gap_ratios, method_ratios = [], []
    for pair in results.pairs:
        if pair.weak.startswith("ensemble("):
            continue
        weak = stacked("gt", pair.weak, layer=pair.layer)
        strong = stacked("gt", pair.strong, layer=pair.layer)
        assert abs(weak.mean() - pair.weak_acc) < 1e-9, "predictions.npz and results.json disagree"
        old, new = crossed_bootstrap_ci(strong, weak), pair.gap.ci
        gap_ratios.append((old[1] - old[0]) / (new[1] - new[0]))
        print(f"{pair.weak} -> {pair.strong} [{pair.layer}] gap {pair.gap.diff:+.3f}: "
              f"now [{new[0]:+.3f}, {new[1]:+.3f}], previously [{old[0]:+.3f}, {old[1]:+.3f}]")
        xent = stacked("transfer", pair.weak, pair.strong, "xent", layer=pair.layer)
        shown = args.pair == [pair.weak, pair.strong, pair.layer]
        for method, summary in pair.summary.items():
            if method == "xent" or summary.vs_xent is None:
                continue
            old = crossed_bootstrap_ci(stacked("transfer", pair.weak, pair.strong, method, layer=pair.layer), xent)
            new = summary.vs_xent.ci
            if new[1] > new[0]:
                method_ratios.append((old[1] - old[0]) / (new[1] - new[0]))
            if shown:
                print(f"  {method} vs xent: now [{new[0]:+.3f}, {new[1]:+.3f}] (Holm: {summary.vs_xent.holm}), "
                      f"previously [{old[0]:+.3f}, {old[1]:+.3f}]")
    for what, ratios in (("gap", gap_ratios), ("vs xent", method_ratios)):
        if ratios:
            print(f"{what}: previous width / current width {min(ratios):.2f}-{max(ratios):.2f}, "
                  f"median {np.median(ratios):.2f}, over {len(ratios)} intervals")


if __name__ == "__main__":
    main()
