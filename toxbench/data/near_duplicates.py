"""Near-duplicate texts: character n-gram Jaccard similarity on normalised text, found exactly.

The same comment reaches several files under other ids, with other spacing, case or punctuation;
an exact text match misses it. Texts are normalised (Unicode NFKC, lower case, runs of anything
that is not a letter or digit made one space), cut into character 5-grams, and two texts are near
copies when the Jaccard similarity of their 5-gram sets is at least the threshold (0.9).

All pairs above the threshold are found without comparing every pair, by prefix filtering (Chaudhuri
et al., 2006): with n-grams ordered rarest first, two sets with Jaccard >= t must share one of the
first |A| - ceil(t·|A|) + 1 n-grams of each; only pairs that do are compared in full.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass

N = 5
THRESHOLD = 0.9
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def ngrams(text: str, n: int = N) -> frozenset[str]:
    norm = normalise(text)
    if len(norm) <= n:
        return frozenset([norm])
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


@dataclass(frozen=True)
class Match:
    """A text of the probe set and the reference text it nearly copies."""

    probe: int  # index in the probe texts
    reference: int  # index in the reference texts
    similarity: float


def near_duplicates(probes: list[str], references: list[str], threshold: float = THRESHOLD) -> list[Match]:
    """For each probe text with a reference text at Jaccard >= threshold, its most similar one."""
    probe_sets = [ngrams(t) for t in probes]
    reference_sets = [ngrams(t) for t in references]
    frequency = Counter(g for s in (*probe_sets, *reference_sets) for g in s)

    def prefix(grams: frozenset[str]) -> list[str]:
        ordered = sorted(grams, key=lambda g: (frequency[g], g))
        return ordered[: len(grams) - math.ceil(threshold * len(grams)) + 1]

    index: dict[str, list[int]] = defaultdict(list)
    for j, grams in enumerate(reference_sets):
        for g in prefix(grams):
            index[g].append(j)
    matches = []
    for i, grams in enumerate(probe_sets):
        candidates = {j for g in prefix(grams) for j in index.get(g, ())}
        best = None
        for j in sorted(candidates):
            other = reference_sets[j]
            if min(len(grams), len(other)) < threshold * max(len(grams), len(other)):
                continue  # sizes alone rule it out
            similarity = jaccard(grams, other)
            if similarity >= threshold and (best is None or similarity > best.similarity):
                best = Match(i, j, similarity)
        if best:
            matches.append(best)
    return matches
