"""Metrics of one run, computed from its records.

Everything follows from the 2x3 confusion counts and, for ROC-AUC, the rank statistic of the
scores. They are computed here with numpy and the standard library rather than by calling
scikit-learn and scipy, whose imports alone (about 1.5 s with scikit-learn 1.9, which pulls in
pandas, pyarrow and scipy.stats) would be half of the leaderboard's 3 s budget; the tests hold
every figure equal to `precision_recall_fscore_support`, `roc_auc_score` and scipy's Wilson
interval on random inputs.

An answer with no label (unparseable, refused, error) is kept as its own value (-1) so it can be
counted either way: by default as wrong (it lowers recall of its gold class and accuracy, and the
coverage column shows how many there were), or left out with `labelled_only`. ROC-AUC needs real
scores; it is never computed from hard labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

Policy = Literal["count_as_wrong", "labelled_only"]
POLICY_TEXT = {
    "count_as_wrong": "answers with no label (unparseable, refused, error) count as wrong; coverage is the share of samples with a label",
    "labelled_only": "metrics use only samples with a label; coverage is the share of samples with a label",
}
NO_LABEL = -1


@dataclass(frozen=True)
class Metrics:
    n: int  # samples in the computation
    n_total: int  # samples recorded
    coverage: float
    accuracy: float
    accuracy_ci_low: float
    accuracy_ci_high: float
    balanced_accuracy: float
    precision_0: float
    recall_0: float
    f1_0: float
    precision_1: float
    recall_1: float
    f1_1: float
    roc_auc: float | None
    confusion: list[list[int]]  # rows gold 0/1; columns predicted 0, 1, no label
    policy: str

    def as_dict(self) -> dict:
        return asdict(self)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval without continuity correction (scipy's `binomtest(...).proportion_ci(
    method="wilson")`)."""
    if n == 0:
        return (float("nan"), float("nan"))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    share, z2 = successes / n, z * z
    center = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    return (max(0.0, center - half), min(1.0, center + half))


def per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of classes 0 and 1 from the confusion counts (rows gold 0/1; columns
    predicted 0, 1, no label), as sklearn's `precision_recall_fscore_support(labels=[0, 1],
    zero_division=0)`: an answer with no label is a miss of its gold class and a hit of none."""
    hits = np.diag(cm[:, :2]).astype(float)
    predicted, support = cm[:, :2].sum(axis=0).astype(float), cm.sum(axis=1).astype(float)

    def share(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    return share(hits, predicted), share(hits, support), share(2 * hits, predicted + support)


def roc_auc(gold: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic, ties at half (sklearn's `roc_auc_score`)."""
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[group]  # 1-based average rank of each score
    positives = int(gold.sum())
    negatives = len(gold) - positives
    return float((ranks[gold == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def compute_metrics(
    gold: Sequence[int],
    pred: Sequence[int | None],
    scores: Sequence[float | None] | None = None,
    policy: Policy = "count_as_wrong",
) -> Metrics:
    y_true = np.asarray(gold, dtype=int)
    y_pred = np.asarray([NO_LABEL if p is None else p for p in pred], dtype=int)
    n_total = len(y_true)
    labelled = y_pred != NO_LABEL
    coverage = float(labelled.mean()) if n_total else 0.0
    if policy == "labelled_only":
        keep = labelled
    elif policy == "count_as_wrong":
        keep = np.ones(n_total, dtype=bool)
    else:
        raise ValueError(f"unknown policy {policy!r}")
    t, p = y_true[keep], y_pred[keep]
    n = len(t)
    if n == 0:
        nan = float("nan")
        return Metrics(
            0, n_total, coverage, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, None, [[0, 0, 0], [0, 0, 0]], policy
        )
    # rows: gold 0, 1; columns: predicted 0, 1, no label (index 2)
    cm = np.bincount(t * 3 + np.where(p == NO_LABEL, 2, p), minlength=6).reshape(2, 3)
    precision, recall, f1 = per_class_scores(cm)
    correct = int(cm[0, 0] + cm[1, 1])
    low, high = wilson_interval(correct, n)
    present = [c for c in (0, 1) if cm[c].sum() > 0]
    balanced = float(np.mean([recall[c] for c in present]))

    auc = None
    if scores is not None:
        s = np.asarray([np.nan if x is None else x for x in scores], dtype=float)[keep]
        has = ~np.isnan(s)
        if has.any() and len(set(t[has].tolist())) == 2:
            auc = roc_auc(t[has], s[has])
    return Metrics(
        n=n,
        n_total=n_total,
        coverage=coverage,
        accuracy=correct / n,
        accuracy_ci_low=low,
        accuracy_ci_high=high,
        balanced_accuracy=balanced,
        precision_0=float(precision[0]),
        recall_0=float(recall[0]),
        f1_0=float(f1[0]),
        precision_1=float(precision[1]),
        recall_1=float(recall[1]),
        f1_1=float(f1[1]),
        roc_auc=auc,
        confusion=cm.tolist(),
        policy=policy,
    )


def run_metrics(records: Sequence, policy: Policy = "count_as_wrong") -> Metrics:
    """Metrics of a run's records (objects with gold, pred, score)."""
    scores = [r.score for r in records]
    return compute_metrics(
        [r.gold for r in records],
        [r.pred for r in records],
        scores if any(s is not None for s in scores) else None,
        policy,
    )
