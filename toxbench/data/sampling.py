"""Subsets of a dataset that a run may evaluate: a seeded class-balanced sample. Named in the run's
specification (`subset`), so a subset run never shares an id with a full one."""

from __future__ import annotations

import random

from toxbench.types import Sample


def balanced_sample(samples: list[Sample], n: int, seed: int) -> list[Sample]:
    """n samples, half of each class (as far as the classes allow), drawn with `seed`, in dataset order."""
    rng = random.Random(seed)
    chosen: set[str] = set()
    for label in (0, 1):
        pool = [s.id for s in samples if s.label == label]
        chosen |= set(rng.sample(pool, min(len(pool), n // 2 + (n % 2 if label == 1 else 0))))
    return [s for s in samples if s.id in chosen]


def subset_name(n: int, seed: int) -> str:
    """The run specification's name for `balanced_sample(samples, n, seed)`."""
    return f"balanced-{n}-seed{seed}"
