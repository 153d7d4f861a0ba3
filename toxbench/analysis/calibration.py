"""Decision thresholds chosen on a seeded dev split of a scored run, scored on the rest only.

A run's scores (P(toxic): an encoder, a moderation API, a local or API chat model in score mode)
are turned into labels by a threshold. Choosing that threshold on the labels it is then scored on
flatters the run, and the release did so for some of its files (their labels follow thresholds of
0.1 or 0.05, with no dev split): `implied_threshold` finds such runs for the leaderboard, and
`calibrate` does it honestly: a stratified dev part, seeded, chooses the threshold (maximising
accuracy or macro F1), and only the other part is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from toxbench.analysis.metrics import Metrics, run_metrics
from toxbench.errors import ToxbenchError
from toxbench.types import Record

Objective = Literal["accuracy", "macro-f1"]
OBJECTIVES: tuple[Objective, ...] = ("accuracy", "macro-f1")
DEFAULT_THRESHOLD = 0.5


def threshold_curve(gold: np.ndarray, scores: np.ndarray, objective: Objective) -> tuple[np.ndarray, np.ndarray]:
    """(thresholds, objective values) for every distinct way to cut the sorted scores: each
    threshold lies midway between two neighbouring distinct scores (or just outside them all), so
    it never sits on a dev sample; a label is toxic when its score is >= the threshold."""
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gold[order]
    distinct = np.unique(s)[::-1]  # high to low
    # cut after each block of equal scores: predicted toxic = the k highest
    ends = np.searchsorted(-s, -distinct, side="right")
    k = np.concatenate([[0], ends])
    tp = np.concatenate([[0], np.cumsum(g)])[k]
    fp = k - tp
    positives, negatives = int(g.sum()), int(len(g) - g.sum())
    fn, tn = positives - tp, negatives - fp
    if objective == "accuracy":
        value = (tp + tn) / len(g)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            f1_toxic = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
            f1_clean = np.where(2 * tn + fn + fp > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
        value = (f1_toxic + f1_clean) / 2
    thresholds = np.empty(len(distinct) + 1)
    thresholds[0] = np.nextafter(distinct[0], np.inf)  # nothing toxic
    thresholds[1:-1] = (distinct[:-1] + distinct[1:]) / 2
    thresholds[-1] = distinct[-1]  # everything toxic
    return thresholds, value


def choose_threshold(gold: np.ndarray, scores: np.ndarray, objective: Objective) -> tuple[float, float]:
    """(threshold, objective value) maximising the objective; among equal values, the threshold
    closest to the default 0.5."""
    thresholds, value = threshold_curve(np.asarray(gold, dtype=int), np.asarray(scores, dtype=float), objective)
    best = np.flatnonzero(np.isclose(value, value.max(), rtol=0, atol=1e-12))
    pick = best[np.argmin(np.abs(thresholds[best] - DEFAULT_THRESHOLD))]
    return float(thresholds[pick]), float(value[pick])


def dev_split(records: Sequence[Record], dev_fraction: float, seed: int) -> tuple[list[Record], list[Record]]:
    """(dev, rest): a stratified, seeded split by gold label (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split

    gold = [r.gold for r in records]
    try:
        dev, rest = train_test_split(list(records), train_size=dev_fraction, stratify=gold, random_state=seed)
    except ValueError as exc:
        raise ToxbenchError(
            f"--dev-fraction {dev_fraction}: cannot split {len(records)} samples by label ({exc}); "
            "give a fraction that leaves each class in both parts"
        ) from None
    return sorted(dev, key=lambda r: r.sample_id), sorted(rest, key=lambda r: r.sample_id)


def thresholded(records: Sequence[Record], threshold: float) -> list[Record]:
    """The records relabelled at the threshold; one without a score keeps its own label."""
    return [
        replace(
            r,
            pred=int(r.score >= threshold),
            status="ok",
            raw=f"score {r.score:.6g} {'>=' if r.score >= threshold else '<'} {threshold:.6g}",
            latency_s=None,
            tokens_in=None,
            tokens_out=None,
            cost_usd=None,
            attempts=0,
            cached=False,
        )
        if r.score is not None
        else r
        for r in records
    ]


@dataclass
class Calibration:
    threshold: float
    objective: Objective
    dev_fraction: float
    seed: int
    dev_value: float  # the objective on the dev part at the chosen threshold
    dev_ids: list[str]
    unscored: int  # samples without a score, which keep the run's own label
    metrics: dict[str, Metrics]  # "dev own", "dev calibrated", "test own", "test calibrated"
    records: list[Record]  # the rest, relabelled: the calibrated run
    mcnemar_p: float  # own vs calibrated labels on the rest (exact)


def calibrate(
    records: Sequence[Record], dev_fraction: float = 0.2, seed: int = 0, objective: Objective = "accuracy"
) -> Calibration:
    from toxbench.analysis.significance import mcnemar_exact

    if any(r.gold is None for r in records):
        raise ToxbenchError("the run has samples without a gold label; a threshold is chosen and scored on gold labels")
    scored = [r for r in records if r.score is not None]
    if not scored:
        raise ToxbenchError(
            "the run recorded no scores; calibrate needs P(toxic) per sample (mode=score, an encoder, a moderation API)"
        )
    dev, rest = dev_split(records, dev_fraction, seed)
    dev_scored = [r for r in dev if r.score is not None]
    if len({r.gold for r in dev_scored}) < 2:
        raise ToxbenchError(
            f"--dev-fraction {dev_fraction}: the dev part has scores for one class only; give a larger fraction"
        )
    threshold, value = choose_threshold(
        np.array([r.gold for r in dev_scored]), np.array([r.score for r in dev_scored]), objective
    )
    new_dev, new_rest = thresholded(dev, threshold), thresholded(rest, threshold)
    right_own = [r.pred == r.gold for r in rest]
    right_new = [r.pred == r.gold for r in new_rest]
    only_own = sum(a and not b for a, b in zip(right_own, right_new))
    only_new = sum(b and not a for a, b in zip(right_own, right_new))
    metrics = {
        "dev own": run_metrics(dev),
        "dev calibrated": run_metrics(new_dev),
        "test own": run_metrics(rest),
        "test calibrated": run_metrics(new_rest),
    }
    return Calibration(
        threshold,
        objective,
        dev_fraction,
        seed,
        value,
        [r.sample_id for r in dev],
        sum(r.score is None for r in records),
        metrics,
        new_rest,
        mcnemar_exact(only_new, only_own),
    )


def implied_threshold(records: Sequence[Record]) -> tuple[float, float] | None:
    """(low, high) when the run's labels are exactly its scores cut at some threshold in
    (low, high] (the highest non-toxic score, the lowest toxic one); None when they are not (or
    the run has no scores, or one class only)."""
    pairs = [(r.score, r.pred) for r in records if r.score is not None and r.pred is not None]
    toxic = [s for s, p in pairs if p == 1]
    clean = [s for s, p in pairs if p == 0]
    if not toxic or not clean or max(clean) >= min(toxic):
        return None
    return max(clean), min(toxic)


def tuned_note(records: Sequence[Record]) -> str | None:
    """A leaderboard note for a run whose labels follow a threshold other than 0.5."""
    bounds = implied_threshold(records)
    if bounds is None or bounds[0] < DEFAULT_THRESHOLD <= bounds[1]:
        return None
    low, high = bounds
    return (
        f"threshold away from 0.5: its labels are its scores cut between {low:.4g} and {high:.4g}, and the release has no dev "
        "split, so the cut was not chosen on one (`toxbench calibrate` chooses one on a dev split and scores the rest)"
    )
