"""`--prompting`: how much each model already knows, beside the probes (docs/prompting.md).

After the protocol has run, each model scores the test docs zero-shot and k-shot with ground-truth
demonstrations from half A (the same docs for every model, per seed); each strong model also with the
weak model's hard labels on half B as demonstrations (the labels the protocol's students learn from).
One scoring pass per model, one load. The label-efficiency curves train heads on subsets of half A.
The context check runs before any model's weights are loaded (`check_prompting`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.label_efficiency import curve_sizes, label_curves
from ..core.prompting import TRUE_DEMOS, WEAK_DEMOS, choose_demos, few_shot, pair_prompting, zero_shot
from ..core.protocol import ProtocolResult
from ..core.splits import split_halves
from ..errors import W2SError
from ..features.prompt_scores import ScoreResult, score_groups
from ..features.prompts import PromptGroup, PromptStyle, PromptTokens, check_context
from ..features.scoring import Vocab
from ..models import ResolvedModel
from ..results import ModelPrompting, Prompting
from ..tasks import PromptingForm, TaskData, get_task
from .config import ExperimentConfig


def prompting_style(config: ExperimentConfig) -> PromptStyle:
    """The task's prompting form as the scorer takes it, or the one-line error that it has none."""
    form: PromptingForm | None = get_task(config.task).prompting_form(config.task_options)
    if form is None:
        raise W2SError(f"task {config.task!r} has no prompting form (a question after each doc and two label words), "
                       f"so --prompting cannot run on it; drop --prompting, or give the task a `prompting` form")
    return PromptStyle(form.suffix, tuple(form.label_words), form.separator, form.version)


def true_demos(config: ExperimentConfig, data: TaskData, halves: dict) -> dict[int, list[int]]:
    """Each seed's ground-truth demonstrations: k training docs from half A, balanced over the labels."""
    y = np.array([d.label for d in data.train])
    return {seed: choose_demos(y, halves[seed][0], config.shots, seed, TRUE_DEMOS) for seed in halves}


def check_prompting(config: ExperimentConfig, data: TaskData, models: list[ResolvedModel]) -> None:
    """Before extraction: the task has a form, and k true demonstrations plus the longest test doc fit each
    model's context (weak demonstrations are checked once the weak labels exist, before scoring)."""
    style = prompting_style(config)
    halves = {seed: split_halves([d.group for d in data.train], seed) for seed in range(config.seeds)}
    demos = true_demos(config, data, halves)
    for model in models:
        vocab = Vocab(model)
        try:
            tokens = PromptTokens(vocab, style, config.max_tokens)
            longest_doc = max(len(tokens.group(PromptGroup([], [d.text])).docs[0]) for d in data.test)
            prefix = max(len(tokens.group(PromptGroup([(data.train[i].text, data.train[i].label) for i in demos[s]], [])).prefix)
                         for s in demos)
            check_context(model, vocab.n_ctx_train, prefix, longest_doc, config.shots)
        finally:
            vocab.close()


def run_prompting(config: ExperimentConfig, data: TaskData, models: dict[str, ResolvedModel],
                  x: dict[str, tuple[np.ndarray, np.ndarray]], outcome: ProtocolResult, layer: str,
                  progress: bool, log: Callable[[str], None], cache_root: Path | None) -> tuple[Prompting, dict]:
    """Score every prompt each model needs (one pass per model) and summarise; `x`: (train, test) features.

    Also returns every prompt's log-probs for predictions.npz, by "prompt|model|zero", "prompt|model|true|seed"
    and "prompt|weak|strong|weak|seed"."""
    style = prompting_style(config)
    y_train = np.array([d.label for d in data.train])
    y_test = np.array([d.label for d in data.test])
    test_texts = [d.text for d in data.test]
    halves, seeds, k = outcome.halves, sorted(outcome.halves), config.shots
    suffix = "" if layer == "last" else f"|{layer}"
    demos = true_demos(config, data, halves)
    pairs = [(p.weak, p.strong) for p in outcome.pairs if p.layer == layer and p.weak != p.strong] if k else []
    weak_demos, demo_acc = {}, {}
    for w in dict.fromkeys(w for w, _ in pairs):
        for seed in seeds:
            labels = np.full(len(y_train), -1)
            labels[halves[seed][1]] = np.argmax(outcome.weak_labels[w, seed], axis=1)  # the students' hard labels
            chosen = choose_demos(labels, halves[seed][1], k, seed, WEAK_DEMOS)
            weak_demos[w, seed] = [(data.train[i].text, int(labels[i])) for i in chosen]
            demo_acc[w, seed] = float(np.mean([labels[i] == y_train[i] for i in chosen])) if chosen else None
    start = time.perf_counter()
    entries, scored = [], {}
    for name, model in models.items():
        groups = {("zero",): PromptGroup([], test_texts)}
        if k:
            groups.update({("true", s): PromptGroup([(data.train[i].text, data.train[i].label) for i in demos[s]],
                                                    test_texts) for s in seeds})
        groups.update({("weak", w, s): PromptGroup(weak_demos[w, s], test_texts) for w, st in pairs if st == name
                       for s in seeds})
        result = _score(config, model, style, list(groups.values()), progress, cache_root)
        for problem in result.problems:
            log(problem)
        scored[name] = dict(zip(groups, result.log_probs))
        entries.append((name, result))
    scoring_seconds = time.perf_counter() - start

    start = time.perf_counter()
    full = {(m, s): outcome.predictions[f"gt|{m}|{s}{suffix}"] for m in models for s in seeds}
    curves = label_curves({m: x[m][0] for m in models}, {m: x[m][1] for m in models}, y_train, y_test, halves, full,
                          layer, config.n_bootstrap)
    curve_seconds = time.perf_counter() - start

    per_model = []
    for name, result in entries:
        got = scored[name]
        per_model.append(ModelPrompting(
            name, zero_shot(got["zero",], y_test, config.n_bootstrap),
            few_shot({s: got["true", s] for s in seeds}, y_test, config.n_bootstrap) if k else None, curves[name],
            n_prompts=result.n_prompts, n_computed=result.n_computed, n_tokens=result.n_tokens + result.n_prefix_tokens,
            n_truncated=result.n_truncated, seconds=round(result.seconds, 3),
            tokens_per_second=round((result.n_tokens + result.n_prefix_tokens) / result.seconds, 1) if result.seconds else None,
            cache_dir=str(result.store_dir)))
        if result.n_truncated:
            log(f"{name}: {result.n_truncated} prompt texts were longer than {config.max_tokens} tokens and were cut "
                f"from the left")
    pair_results = []
    for w, s in pairs:
        floor_pred = {seed: np.argmax(full[w, seed], axis=1) for seed in seeds}
        pair_results.append(pair_prompting(
            w, s, y_test, {seed: floor_pred[seed] == y_test for seed in seeds}, {seed: scored[s]["true", seed] for seed in seeds},
            {seed: scored[s]["weak", w, seed] for seed in seeds}, {seed: demo_acc[w, seed] for seed in seeds},
            floor_pred, config.min_gap, config.n_bootstrap))
    for m in per_model:
        fs = f", {k}-shot {m.few_shot.acc.value:.3f}" if m.few_shot else ""
        log(f"prompting {m.model}: zero-shot acc {m.zero_shot.acc.value:.3f} AUROC {m.zero_shot.auroc.value:.3f}{fs}")
    arrays = {"|".join(["prompt", name, *map(str, key)]) if key[0] != "weak" else
              f"prompt|{key[1]}|{name}|weak|{key[2]}": value for name, got in scored.items() for key, value in got.items()}
    return Prompting(shots=k, prompt_version=style.version, suffix=style.suffix, label_words=list(style.label_words),
                     models=per_model, pairs=pair_results, curve_sizes=curve_sizes([len(halves[s][0]) for s in seeds]),
                     timings={"scoring_seconds": round(scoring_seconds, 3), "curve_seconds": round(curve_seconds, 3)}), arrays


def _score(config: ExperimentConfig, model: ResolvedModel, style: PromptStyle, groups: list[PromptGroup],
           progress: bool, cache_root: Path | None) -> ScoreResult:
    if config.ray:  # the missing shards go to the cluster; the cache stays here
        from ..features.score_cluster import score_groups_ray

        return score_groups_ray(model, style, groups, config.max_tokens, config.n_gpu_layers, config.n_threads,
                                address=config.ray, progress=progress, cache_root=cache_root, decode=config.decode)
    return score_groups(model, style, groups, config.max_tokens, config.n_gpu_layers, config.n_threads,
                        progress=progress, cache_root=cache_root, decode=config.decode)
