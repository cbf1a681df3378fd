"""How many docs would settle it (w2s_gguf/core/planning.py), checked against the simulation of
tests/simulation.py: the planned size does what the plan says in simulated reruns."""

from __future__ import annotations

import numpy as np
import pytest

from w2s_gguf.core.intervals import paired_diff_ci
from w2s_gguf.core.planning import gap_plan, pgr_components, pgr_plan
from w2s_gguf.core.stats import pgr_ci

from simulation import gap_design, pgr_design


def components(design, n_seeds: int) -> dict:
    truth = design.components([1, -1])
    return {**truth, "diff": truth["mean"], "n_seeds": n_seeds}


def test_the_planned_docs_clear_min_gap_as_often_as_planned():
    design = gap_design(0.03, 0.01)
    plan = gap_plan(components(design, 5), threshold=0.01, power=0.8)
    assert 500 < plan["n_test"] < 5000
    rng = np.random.default_rng(51)
    hits = []
    while len(hits) < 600:
        correct, _ = design.simulate(5, plan["n_test"], 150, rng)
        hits += [paired_diff_ci(c[0], c[1], threshold=0.01)["distinguishable"] for c in correct]
    assert abs(np.mean(hits) - 0.8) < 0.05, np.mean(hits)


def test_when_seeds_disagree_only_more_seeds_help():
    design = gap_design(0.03, 0.04)
    plan = gap_plan(components(design, 3), threshold=0.01, power=0.8)
    assert plan["n_test"] is None and plan["seeds_min"] > 3 and plan["reason"] is None
    more = gap_plan(components(design, 3), threshold=0.01, power=0.8, n_seeds=plan["seeds_min"] + 3)
    assert more["n_test"] is not None
    # The plan itself names the docs at twice the fewest seeds that could do it.
    assert plan["more_seeds"] == 2 * plan["seeds_min"]
    assert plan["n_test_more_seeds"] == gap_plan(components(design, 3), threshold=0.01, power=0.8,
                                                 n_seeds=plan["more_seeds"])["n_test"]
    below = gap_plan(components(design, 3) | {"diff": 0.005}, threshold=0.01)
    assert below["more_seeds"] is None and below["n_test_more_seeds"] is None
    assert below["n_test"] is None and "not above min_gap" in below["reason"]


def test_the_planned_docs_bring_the_pgr_interval_to_the_planned_width():
    # Plan from one observed run, then rerun the simulation at the planned size: the Fieller
    # intervals' median half-width lands near 0.1.
    design = pgr_design(0.10, 0.01)
    rng = np.random.default_rng(61)
    correct, _ = design.simulate(5, 600, 1, rng)
    plan = pgr_plan(pgr_components(*correct[0]), half_width=0.1)
    assert plan["n_test"] is not None and 600 < plan["n_test"] < 20000
    assert pgr_plan(pgr_components(*correct[0]), half_width=0.2)["n_test"] < plan["n_test"]
    widths = []
    for _ in range(4):
        reruns, _ = design.simulate(5, plan["n_test"], 10, rng)
        widths += [(lambda ci: (ci[1] - ci[0]) / 2)(pgr_ci(*c)["ci"]) for c in reruns]
    assert np.median(widths) == pytest.approx(0.1, rel=0.25)
