"""`w2s-gguf tasks audit TASK`: a task's docs checked without any model.

It chooses the docs exactly as `run` does (load_task with the same sizes,
options and --balance) and reports what could make a probe's accuracy
mean less than it seems: label balance per split, groups shared between
train and test or between halves A and B of a seed, duplicate and
near-duplicate texts (tasks/_near.py) in different groups, and the
text-only baseline of those docs and seeds (experiment/text_baseline.py,
the same cache as runs).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ..core.splits import split_halves
from ..experiment.text_baseline import text_baseline
from ..tasks import Doc, TaskOptions, load_task
from ..tasks._near import NEAR_JACCARD, near_duplicate_pairs

EXAMPLES = 3  # pairs shown per finding


def audit_task(name: str, n_train: int = 900, n_test: int = 600, options: TaskOptions | None = None,
               balance: bool = False, seeds: int = 5, data_seed: int = 0, cache_root: Path | None = None) -> dict[str, Any]:
    data = load_task(name, n_train, n_test, options, balance, data_seed)
    baseline, _ = text_baseline(data, list(range(seeds)), cache_root)
    majority = max(data.positive_rate_test, 1 - data.positive_rate_test)
    return {
        "task": data.name, "source": data.source, "prompt_version": data.prompt_version, "skipped": dict(data.skipped),
        "balanced": data.balanced,
        "labels": {split: _balance(docs) for split, docs in (("train pool", data.pools[0]), ("test pool", data.pools[1]),
                                                                ("train", data.train), ("test", data.test))},
        "groups_in_train_and_test": {"pools": _shared(data.pools[0], data.pools[1]), "chosen": _shared(data.train, data.test)},
        "halves": [_halves(data.train, seed) for seed in range(seeds)],
        "duplicates": _duplicates(data.train, data.test),
        "text_baseline": {"acc_mean": baseline.acc_mean, "ci": baseline.ci, "level": baseline.level,
                          "per_seed": [s.acc for s in baseline.per_seed], "majority_rate_test": majority,
                          "above_chance": bool(baseline.ci[0] > majority), "settings": baseline.settings},
    }


def _balance(docs: list[Doc]) -> dict[str, Any]:
    positives = sum(d.label for d in docs)
    return {"docs": len(docs), "positives": positives, "positive_rate": positives / len(docs) if docs else None,
            "groups": len({d.group for d in docs})}


def _shared(a: list[Doc], b: list[Doc]) -> int:
    return len({d.group for d in a} & {d.group for d in b})


def _halves(train: list[Doc], seed: int) -> dict[str, Any]:
    half_a, half_b = split_halves([d.group for d in train], seed)
    a, b = [train[i] for i in half_a], [train[i] for i in half_b]
    return {"seed": seed, "A": len(a), "B": len(b), "positive_rate_A": _balance(a)["positive_rate"],
            "positive_rate_B": _balance(b)["positive_rate"], "groups_in_A_and_B": _shared(a, b)}


def _duplicates(train: list[Doc], test: list[Doc]) -> dict[str, Any]:
    """Exact and near-duplicate texts among the chosen docs, in different groups (same-group copies stay together)."""
    docs = [("train", d) for d in train] + [("test", d) for d in test]
    by_text: dict[str, list[int]] = defaultdict(list)
    for i, (_, d) in enumerate(docs):
        by_text[d.text].append(i)
    exact = {"texts_more_than_once": sum(len(v) > 1 for v in by_text.values()),
             "with_two_labels": sum(len({docs[i][1].label for i in v}) > 1 for v in by_text.values())}
    near: dict[str, list] = {"train-train": [], "train-test": [], "test-test": []}
    for i, j, sim in near_duplicate_pairs([d.text for _, d in docs]):
        (si, a), (sj, b) = docs[i], docs[j]
        if a.group != b.group:
            near["-".join(sorted((si, sj), key=("train", "test").index))].append((sim, a, b))
    return {"exact": exact, "near_jaccard": NEAR_JACCARD,
            "near_pairs_in_different_groups": {k: len(v) for k, v in near.items()},
            "examples": {k: [{"jaccard": sim, "texts": [_short(a.text), _short(b.text)], "labels": [a.label, b.label]}
                             for sim, a, b in v[:EXAMPLES]] for k, v in near.items() if v}}


def _short(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def format_audit(audit: dict[str, Any]) -> str:
    lines = [f"task {audit['task']} (prompt_version {audit['prompt_version']}): {audit['source']}"]
    lines += [f"  skipped {n}: {reason}" for reason, n in audit["skipped"].items()]
    lines += ["", "labels" + (" (--balance)" if audit["balanced"] else "")]
    for split, b in audit["labels"].items():
        rate = "-" if b["positive_rate"] is None else f"{b['positive_rate']:.3f}"
        lines.append(f"  {split:11} {b['docs']:6} docs  {b['groups']:6} groups  positive rate {rate}")
    shared = audit["groups_in_train_and_test"]
    lines += ["", f"groups in both train and test: {shared['chosen']} of the chosen docs, {shared['pools']} of all docs",
              "halves A / B per seed (the protocol's split of the chosen train docs):"]
    for h in audit["halves"]:
        lines.append(f"  seed {h['seed']}: A {h['A']} docs (positive {h['positive_rate_A']:.3f}), B {h['B']} docs "
                     f"(positive {h['positive_rate_B']:.3f}), groups in both: {h['groups_in_A_and_B']}")
    dup = audit["duplicates"]
    near = dup["near_pairs_in_different_groups"]
    lines += ["", f"duplicates among the chosen docs: {dup['exact']['texts_more_than_once']} texts more than once "
                  f"({dup['exact']['with_two_labels']} with both labels)",
              f"near-duplicates in different groups (word 3-shingle Jaccard >= {dup['near_jaccard']}): "
              + ", ".join(f"{k} {v}" for k, v in near.items())]
    for kind, examples in dup["examples"].items():
        for e in examples:
            lines += [f"  {kind} {e['jaccard']:.2f} labels {e['labels'][0]}/{e['labels'][1]}: {e['texts'][0]}",
                      f"  {'':{len(kind)}}      {'':10}  {e['texts'][1]}"]
    tb = audit["text_baseline"]
    verdict = ("above the majority rate: the words alone predict the label (a surface shortcut, unless the task "
               "is about the words, as sentiment is)" if tb["above_chance"] else "not above the majority rate")
    lines += ["", f"text-only baseline: {tb['acc_mean']:.3f} [{tb['ci'][0]:.3f}, {tb['ci'][1]:.3f}] over "
                  f"{len(tb['per_seed'])} seeds (majority rate {tb['majority_rate_test']:.3f}); {verdict}",
              "  per seed: " + ", ".join(f"{a:.3f}" for a in tb["per_seed"]),
              f"  {tb['settings'].get('features', '')}; {tb['settings'].get('classifier', '')}"]
    return "\n".join(lines)


def as_json(audit: dict[str, Any]) -> dict[str, Any]:
    """The audit with numpy numbers made plain, for --json."""
    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v.item() if isinstance(v, np.generic) else v
    return plain(audit)
