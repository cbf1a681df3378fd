"""What the chess task's notation alone gives away: the candidate move's surface, no model.

  python benchmarks/chess_surface.py

Loads the shipped Lichess sample's train and test split with the installed loader (so
`PYTHONPATH=OLD python benchmarks/chess_surface.py` measures an older checkout's wrong moves) and
prints, on the test split: the rule "the candidate captures -> label 1", and a logistic regression
trained on the train split on the candidate SAN's piece letter, `x`, `=` and length, together and one
feature at a time. Results: docs/results.md, "What the notation alone gives".
"""

from __future__ import annotations

import argparse
import re

CANDIDATE = re.compile(r"Candidate move: (?P<san>\S+) \(")
FEATURES = ("piece", "x", "=", "len")


def surface(text: str, features=FEATURES) -> dict:
    san = CANDIDATE.search(text)["san"]
    every = {"piece=" + (san[0] if san[0] in "KQRBNO" else "P"): 1, "x": "x" in san, "=": "=" in san, "len": len(san)}
    return {k: v for k, v in every.items() if k.split("=")[0] in features or k in features}


def probe_accuracy(train, test, features) -> float:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = DictVectorizer()
    probe = LogisticRegression(max_iter=2000).fit(
        vectorizer.fit_transform([surface(d.text, features) for d in train]), [d.label for d in train])
    predicted = probe.predict(vectorizer.transform([surface(d.text, features) for d in test]))
    return float((predicted == [d.label for d in test]).mean())


def main() -> None:
    from w2s_gguf.tasks import TaskOptions, get_task

    data = get_task("chess").load(TaskOptions())
    train, test = data.train, data.test
    rule = sum(("x" in CANDIDATE.search(d.text)["san"]) == bool(d.label) for d in test) / len(test)
    print(f"docs (train/test): {len(train)} / {len(test)}")
    print(f'"SAN has x -> 1": {rule:.3f}')
    print(f"surface probe (piece, x, =, len): {probe_accuracy(train, test, FEATURES):.3f}")
    for feature in FEATURES:
        print(f"  {feature} alone: {probe_accuracy(train, test, (feature,)):.3f}")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
