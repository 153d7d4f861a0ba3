"""Metrics of one run, computed from its records with scikit-learn and scipy.

An answer with no label (unparseable, refused, error) is kept as its own value (-1) so it can be
counted either way: by default as wrong (it lowers recall of its gold class and accuracy, and the
coverage column shows how many there were), or left out with `labelled_only`. ROC-AUC needs real
scores; it is never computed from hard labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Sequence

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
    if n == 0:
        return (float("nan"), float("nan"))
    from scipy.stats import binomtest

    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def compute_metrics(
    gold: Sequence[int],
    pred: Sequence[int | None],
    scores: Sequence[float | None] | None = None,
    policy: Policy = "count_as_wrong",
) -> Metrics:
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

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
        return Metrics(0, n_total, coverage, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, None, [[0, 0, 0], [0, 0, 0]], policy)
    # rows: gold 0, 1; columns: predicted 0, 1, no label (index 2)
    cm = np.bincount(t * 3 + np.where(p == NO_LABEL, 2, p), minlength=6).reshape(2, 3)
    precision, recall, f1, _ = precision_recall_fscore_support(t, p, labels=[0, 1], zero_division=0.0)
    correct = int(cm[0, 0] + cm[1, 1])
    low, high = wilson_interval(correct, n)
    present = [c for c in (0, 1) if cm[c].sum() > 0]
    balanced = float(np.mean([recall[c] for c in present]))

    roc_auc = None
    if scores is not None:
        s = np.asarray([np.nan if x is None else x for x in scores], dtype=float)[keep]
        has = ~np.isnan(s)
        if has.any() and len(set(t[has].tolist())) == 2:
            roc_auc = float(roc_auc_score(t[has], s[has]))
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
        roc_auc=roc_auc,
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
