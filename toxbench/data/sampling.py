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


def select(
    samples: list[Sample], sample: int | None, sample_seed: int, limit: int | None
) -> tuple[list[Sample], str | None]:
    """The samples a run evaluates and the name of that subset (None: the whole dataset): a seeded
    balanced sample, then the first `limit`. The name goes into the run's identity, so a subset run
    never shares an id, a record or a leaderboard row with the full run."""
    names = []
    if sample:
        chosen = balanced_sample(samples, sample, sample_seed)
        if len(chosen) < len(samples):
            names.append(subset_name(sample, sample_seed))
        samples = chosen
    if limit and limit < len(samples):
        samples = samples[:limit]
        names.append(f"first-{limit}")
    return samples, ",".join(names) or None
