"""Near-duplicate texts: the same passage with a comma, a word or a word order changed.

Two texts are near-duplicates when the Jaccard similarity of their word
3-shingles (after `normalise`: lower case, punctuation dropped) is at least
NEAR_JACCARD. Candidates come from MinHash with banding (numpy only, no
scikit-learn, so a loader stays cheap) and every candidate pair is then
checked exactly, so every pair found is a true one; a pair at Jaccard 0.7
is missed with probability about 2.5% (0.8: 0.04%). Hashes are crc32,
stable across processes. On BoolQ's passages every pair found at 0.7-0.85
was one passage edited (a word, a clause or a sentence added).
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict

import numpy as np

NEAR_JACCARD = 0.7
SHINGLE_WORDS = 3
_BANDS, _ROWS = 20, 5  # 100 MinHash values per text
_PRIME = (1 << 31) - 1


def normalise(text: str) -> str:
    """Lower case, every run of punctuation and spaces one space: 'A, b.' and 'a b' are the same."""
    return " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())


def shingles(text: str) -> set[int]:
    words = normalise(text).split()
    if len(words) < SHINGLE_WORDS:
        return {zlib.crc32(" ".join(words).encode("utf-8"))}
    return {zlib.crc32(" ".join(words[i : i + SHINGLE_WORDS]).encode("utf-8")) for i in range(len(words) - SHINGLE_WORDS + 1)}


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicate_pairs(texts: list[str], threshold: float = NEAR_JACCARD) -> list[tuple[int, int, float]]:
    """Every pair (i, j, jaccard) with i < j whose texts are near-duplicates (identical normalised texts included)."""
    sets = [shingles(t) for t in texts]
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for i, signature in enumerate(_signatures(sets)):
        for band in range(_BANDS):
            buckets[(band, *signature[band * _ROWS : (band + 1) * _ROWS].tolist())].append(i)
    candidates = {(i, j) for members in buckets.values() if len(members) > 1
                  for k, i in enumerate(members) for j in members[k + 1 :]}
    pairs = [(i, j, jaccard(sets[i], sets[j])) for i, j in sorted(candidates)]
    return [(i, j, round(sim, 4)) for i, j, sim in pairs if sim >= threshold]


def _signatures(sets: list[set[int]], chunk: int = 20_000) -> np.ndarray:
    """(n_texts, bands x rows) MinHash values: per hash function, the smallest (a*h + b) mod p over a text's shingles."""
    rng = np.random.default_rng(0)  # fixed: the same candidates on every run
    a = rng.integers(1, _PRIME, _BANDS * _ROWS, dtype=np.int64)
    b = rng.integers(0, _PRIME, _BANDS * _ROWS, dtype=np.int64)
    hashes = np.fromiter((h for s in sets for h in s), dtype=np.int64) % _PRIME
    starts = np.cumsum([0] + [len(s) for s in sets[:-1]])
    out = np.empty((len(sets), len(a)), dtype=np.int64)
    first = 0  # texts are processed in runs whose shingles fit one chunk (every text has at least one)
    while first < len(sets):
        last = int(np.searchsorted(starts, starts[first] + chunk, side="right"))
        last = max(last, first + 1)
        end = starts[last] if last < len(sets) else len(hashes)
        values = (hashes[starts[first] : end, None] * a + b) % _PRIME
        out[first:last] = np.minimum.reduceat(values, starts[first:last] - starts[first], axis=0)
        first = last
    return out


def near_duplicate_keys(texts: list[str], threshold: float = NEAR_JACCARD) -> list[str]:
    """For each text, a key shared by all its near-duplicates (transitively): the smallest normalised text
    of its cluster, so the key depends on the texts alone, not on their order."""
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_duplicate_pairs(texts, threshold):
        parent[root(i)] = root(j)
    smallest: dict[int, str] = {}
    normalised = [normalise(t) for t in texts]
    for i, norm in enumerate(normalised):
        r = root(i)
        smallest[r] = min(smallest.get(r, norm), norm)
    return [smallest[root(i)] for i in range(len(texts))]
