"""Prompt scoring on a real local Ray cluster gives exactly the scores of a local run, into the same cache."""

from __future__ import annotations

import numpy as np
import pytest

from test_ray import cluster  # noqa: F401  (the module-scoped local cluster)

from w2s_gguf.features.prompt_scores import score_groups
from w2s_gguf.features.prompts import PromptGroup, PromptStyle

STYLE = PromptStyle("\nIs this movie review positive? Answer:", (" no", " yes"))
SETTINGS = dict(max_tokens=128, n_threads=1, shard_docs=4, progress=False)


@pytest.fixture(scope="module")
def groups(offline_hub) -> list[PromptGroup]:
    from w2s_gguf.tasks import load_task

    data = load_task("sentiment", n_train=40, n_test=10)
    texts = [d.text for d in data.test]
    return [PromptGroup([], texts), PromptGroup([(d.text, d.label) for d in data.train[:2]], texts)]


@pytest.mark.slow
def test_ray_scores_equal_local_scores_and_share_the_cache(smollm2, groups, cluster, tmp_path):  # noqa: F811
    from w2s_gguf.features.score_cluster import score_groups_ray

    local_shards, shards = [], []
    local = score_groups(smollm2, STYLE, groups, cache_root=tmp_path / "local", on_shard=local_shards.append,
                         **SETTINGS)
    remote = score_groups_ray(smollm2, STYLE, groups, address=cluster, cache_root=tmp_path / "ray",
                              on_shard=shards.append, **SETTINGS)
    assert remote.n_computed == 20 and remote.model_loaded
    # The same shards as the local plan, written in plan order, several of them, by both actors.
    assert [(s["group"], s["docs"]) for s in shards] == [(s["group"], s["docs"]) for s in local_shards]
    assert len(shards) >= 4 and len({s["pid"] for s in shards}) == 2
    for a, b in zip(local.log_probs, remote.log_probs):
        assert np.array_equal(a, b)
    assert remote.store_dir.name == local.store_dir.name  # the same settings key: one cache serves both
    again = score_groups_ray(smollm2, STYLE, groups, address=cluster, cache_root=tmp_path / "ray", **SETTINGS)
    assert again.n_computed == 0 and not again.model_loaded
