"""The logits scoring engine on real models: a reused prefix scores exactly like the whole prompt decoded from
scratch, sequences in one batch do not see each other, label words are checked, and scores are cached and
resume exactly after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from w2s_gguf.errors import W2SError
from w2s_gguf.features.prompt_scores import score_groups
from w2s_gguf.features.prompts import PromptGroup, PromptStyle, PromptTokens
from w2s_gguf.features.scoring import Scorer, Vocab

REPO = Path(__file__).resolve().parents[2]
STYLE = PromptStyle("\nIs this movie review positive? Answer:", (" no", " yes"))


@pytest.fixture(scope="module")
def docs(offline_hub):
    from w2s_gguf.tasks import load_task

    data = load_task("sentiment", n_train=40, n_test=12)
    return data.train, data.test


def five_shot(docs) -> PromptGroup:
    train, test = docs
    return PromptGroup([(d.text, d.label) for d in train[:5]], [d.text for d in test[:4]])


@pytest.mark.parametrize("name", ["smollm2", "gemma3"])
def test_a_reused_prefix_scores_exactly_like_the_whole_prompt_from_scratch(name, request, docs):
    model = request.getfixturevalue(name)
    vocab = Vocab(model)
    tokens = PromptTokens(vocab, STYLE, 128)
    group = tokens.group(five_shot(docs))
    vocab.close()
    scorer = Scorer(model, n_ctx=len(group.prefix) + 512, n_batch=512, n_threads=2)
    try:
        # The 5-shot prefix is decoded once; each doc is decoded alone after a copy of it.
        reused = scorer.score(group.prefix, [[d] for d in group.docs], tokens.label_tokens)
        whole = np.concatenate([scorer.score_whole([group.prefix + d], tokens.label_tokens) for d in group.docs])
        np.testing.assert_allclose(reused, whole, rtol=0, atol=1e-5)
        # The demonstrations matter (so the comparison above could fail): zero-shot scores differ.
        start = vocab.start()
        zero = scorer.score(start, [[d] for d in group.docs], tokens.label_tokens)
        assert np.abs(zero - reused).max() > 0.05
        # Log-probs of two tokens out of the whole vocabulary: negative, and summing to less than 1.
        assert (reused < 0).all() and (np.exp(reused).sum(axis=1) < 1).all()
    finally:
        scorer.close()


def test_docs_in_one_batch_do_not_see_each_other(smollm2, docs):
    vocab = Vocab(smollm2)
    tokens = PromptTokens(vocab, STYLE, 128)
    group = tokens.group(five_shot(docs))
    vocab.close()
    scorer = Scorer(smollm2, n_ctx=len(group.prefix) + 512, n_batch=512, n_threads=2)
    try:
        first, target = group.docs[0], group.docs[1]
        after = scorer.score(group.prefix, [[first, target]], tokens.label_tokens)[1]
        after_reversed = scorer.score(group.prefix, [[first[::-1], target]], tokens.label_tokens)[1]
        after_other = scorer.score(group.prefix, [[group.docs[2][: len(first)], target]], tokens.label_tokens)[1]
        # Same cells, other content in the neighbouring sequence: bit for bit the same score.
        assert np.array_equal(after, after_reversed) and len(group.docs[2]) >= len(first)
        assert np.array_equal(after, after_other)
    finally:
        scorer.close()


def test_a_cached_score_does_not_depend_on_what_was_scored_with_it(smollm2, docs, tmp_path):
    """Half the prompts first and then all, or all at once: the same scores bit for bit, since the CPU
    scores each prompt alone after its prefix (packed, a prompt's score moved with its neighbours)."""
    train, test = docs
    demos = [(d.text, d.label) for d in train[:2]]
    texts = [d.text for d in test]
    half = score_groups(smollm2, STYLE, [PromptGroup(demos, texts[::2])], max_tokens=128, n_threads=2,
                        progress=False, cache_root=tmp_path / "a")
    piecewise = score_groups(smollm2, STYLE, [PromptGroup(demos, texts)], max_tokens=128, n_threads=2,
                             progress=False, cache_root=tmp_path / "a")
    at_once = score_groups(smollm2, STYLE, [PromptGroup(demos, texts)], max_tokens=128, n_threads=2,
                           progress=False, cache_root=tmp_path / "b")
    assert half.n_computed == len(texts) // 2 and at_once.n_computed == len(texts)
    assert json.loads((at_once.store_dir / "settings.json").read_text())["texts_per_batch"] == 1
    np.testing.assert_array_equal(half.log_probs[0], at_once.log_probs[0][::2])
    np.testing.assert_array_equal(piecewise.log_probs[0], at_once.log_probs[0])


def test_label_words_must_begin_with_distinct_tokens(smollm2, gemma3):
    for model in (smollm2, gemma3):
        vocab = Vocab(model)
        no, yes = vocab.label_tokens((" no", " yes"))
        assert no != yes
        with pytest.raises(W2SError, match=rf"{model.name}: the label words ' maybe' and ' maybe not' begin with "
                                           r"the same token") as info:
            vocab.label_tokens((" maybe", " maybe not"))
        assert "\n" not in str(info.value)
        vocab.close()


def test_prompts_begin_with_bos_only_where_the_model_adds_one(smollm2, gemma3):
    smol, gem = Vocab(smollm2), Vocab(gemma3)
    assert smol.start() == [] and gem.start() == [2]  # SmolLM2's GGUF says add_bos_token false
    assert (smol.n_ctx_train, gem.n_ctx_train) == (8192, 32768)
    smol.close()
    gem.close()


def groups_of(docs) -> list[PromptGroup]:
    train, test = docs
    texts = [d.text for d in test]
    return [PromptGroup([], texts), PromptGroup([(d.text, d.label) for d in train[:2]], texts)]


def test_scores_are_cached_and_a_second_call_loads_nothing(smollm2, docs, tmp_path):
    first = score_groups(smollm2, STYLE, groups_of(docs), max_tokens=128, n_threads=2, progress=False,
                         cache_root=tmp_path)
    assert first.model_loaded and first.n_computed == 24 and first.n_prompts == 24
    again = score_groups(smollm2, STYLE, groups_of(docs), max_tokens=128, n_threads=2, progress=False,
                         cache_root=tmp_path)
    assert not again.model_loaded and again.n_computed == 0
    for a, b in zip(first.log_probs, again.log_probs):
        assert np.array_equal(a, b)
    assert first.store_dir.parent == tmp_path / "scores"
    # Another prompting form is another store: nothing is mixed up.
    other = PromptStyle("\nWas it fresh? Answer:", (" no", " yes"))
    third = score_groups(smollm2, other, groups_of(docs)[:1], max_tokens=128, n_threads=2, progress=False,
                         cache_root=tmp_path)
    assert third.n_computed == 12 and third.store_dir != first.store_dir


SCRIPT = """
import os, signal, sys
from w2s_gguf.features.prompt_scores import score_groups
from w2s_gguf.features.prompts import PromptGroup, PromptStyle
from w2s_gguf.models import ensure_model, load_registry
from w2s_gguf.tasks import load_task
import numpy as np

data = load_task("sentiment", n_train=40, n_test=12)
texts = [d.text for d in data.test]
groups = [PromptGroup([], texts), PromptGroup([(d.text, d.label) for d in data.train[:2]], texts)]
kill_after = int(sys.argv[2])

def hook(info):
    if info["shard"] + 1 == kill_after:  # deterministic: right after that many shards are written
        os.kill(os.getpid(), signal.SIGKILL)

result = score_groups(ensure_model(load_registry()["smollm2-135m"]),
                      PromptStyle("\\nIs this movie review positive? Answer:", (" no", " yes")), groups,
                      max_tokens=128, n_threads=2, shard_docs=4, progress=False, cache_root=__import__("pathlib").Path(sys.argv[1]),
                      on_shard=hook if kill_after else None)
np.save(sys.argv[3], np.concatenate(result.log_probs))
print("computed", result.n_computed)
"""


def run_script(cache: Path, kill_after: int, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(cache), str(kill_after), str(out)],
                          env=env, capture_output=True, text=True, timeout=1800)


def test_a_killed_scoring_run_resumes_to_exactly_the_uninterrupted_scores(smollm2, docs, tmp_path):
    reference = run_script(tmp_path / "ref", 0, tmp_path / "ref.npy")
    assert reference.returncode == 0, reference.stderr
    killed = run_script(tmp_path / "cache", 3, tmp_path / "never.npy")
    assert killed.returncode == -signal.SIGKILL and not (tmp_path / "never.npy").exists()
    store = next((tmp_path / "cache" / "scores").glob("*-logprobs-*"))
    written = [json.loads(p.read_text())["keys"] for p in sorted(store.glob("shard-*.json"))]
    assert len(written) == 3  # three finished shards, nothing half-written
    resumed = run_script(tmp_path / "cache", 0, tmp_path / "resumed.npy")
    assert resumed.returncode == 0, resumed.stderr
    assert f"computed {24 - sum(map(len, written))}\n" in resumed.stdout  # only what the finished shards lacked
    np.testing.assert_array_equal(np.load(tmp_path / "resumed.npy"), np.load(tmp_path / "ref.npy"))
