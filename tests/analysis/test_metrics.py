"""Metrics against confusion matrices worked out by hand, and against scikit-learn directly."""

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from toxbench.analysis.metrics import compute_metrics, wilson_interval

# gold 1: predicted 1,1,1,0      -> TP 3, FN 1
# gold 0: predicted 0,0,0,1,-,0  -> TN 4, FP 1, one unlabelled
GOLD = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
PRED = [1, 1, 1, 0, 0, 0, 0, 1, None, 0]


def test_count_as_wrong_by_hand():
    m = compute_metrics(GOLD, PRED)
    assert m.confusion == [[4, 1, 1], [1, 3, 0]]
    assert (m.n, m.n_total, m.coverage) == (10, 10, 0.9)
    assert m.accuracy == pytest.approx(7 / 10)
    assert m.precision_1 == pytest.approx(3 / 4)
    assert m.recall_1 == pytest.approx(3 / 4)
    assert m.f1_1 == pytest.approx(3 / 4)
    assert m.precision_0 == pytest.approx(4 / 5)
    assert m.recall_0 == pytest.approx(4 / 6)  # the unlabelled gold-0 sample is a miss
    assert m.f1_0 == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert m.balanced_accuracy == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert (m.accuracy_ci_low, m.accuracy_ci_high) == pytest.approx((0.39678, 0.89221), abs=1e-5)
    assert m.roc_auc is None


def test_labelled_only_by_hand():
    m = compute_metrics(GOLD, PRED, policy="labelled_only")
    assert m.confusion == [[4, 1, 0], [1, 3, 0]]
    assert (m.n, m.n_total, m.coverage) == (9, 10, 0.9)
    assert m.accuracy == pytest.approx(7 / 9)
    assert m.recall_0 == pytest.approx(4 / 5)
    assert m.balanced_accuracy == pytest.approx((4 / 5 + 3 / 4) / 2)


def test_wilson_interval_known_values():
    # Wilson 95% for 7/10 and for 0/10 (Brown, Cai & DasGupta 2001 give the formula)
    assert wilson_interval(7, 10) == pytest.approx((0.39678, 0.89221), abs=1e-5)
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.27753, abs=1e-5)


def test_roc_auc_needs_real_scores():
    assert compute_metrics([0, 0, 1, 1], [0, 1, 0, 1], [0.1, 0.4, 0.35, 0.8]).roc_auc == pytest.approx(0.75)
    assert compute_metrics([0, 0, 1, 1], [0, 1, 0, 1]).roc_auc is None  # never from hard labels
    assert compute_metrics([0, 0, 1, 1], [0, 1, 0, 1], [None, None, None, None]).roc_auc is None


def test_agrees_with_sklearn_on_random_labels():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 500)
    pred = rng.integers(0, 2, 500)
    m = compute_metrics(gold.tolist(), pred.tolist())
    assert m.accuracy == pytest.approx(accuracy_score(gold, pred))
    assert m.balanced_accuracy == pytest.approx(balanced_accuracy_score(gold, pred))
    assert m.f1_1 == pytest.approx(f1_score(gold, pred))
    assert m.f1_0 == pytest.approx(f1_score(gold, pred, pos_label=0))
    assert [row[:2] for row in m.confusion] == confusion_matrix(gold, pred).tolist()


def test_empty_run_has_nan_metrics():
    m = compute_metrics([1, 0], [None, None], policy="labelled_only")
    assert m.n == 0 and m.coverage == 0.0 and math.isnan(m.accuracy)


@pytest.mark.parametrize("seed", range(20))
def test_equals_sklearn_and_scipy_on_random_runs(seed):
    """Every figure equals the libraries' on random runs with missing labels, tied scores, and
    classes that are never predicted (the zero-division cases)."""
    from scipy.stats import binomtest
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    gold = rng.integers(0, 2, n)
    gold[:2] = [0, 1]
    choices = [[0, 1, None], [1, None], [0], [None, 0]][seed % 4]
    pred = [choices[i] for i in rng.integers(0, len(choices), n)]
    scores = np.round(rng.random(n), 1)  # few distinct values: many ties
    for policy in ("count_as_wrong", "labelled_only"):
        m = compute_metrics(gold.tolist(), pred, scores.tolist(), policy=policy)
        keep = [policy == "count_as_wrong" or p is not None for p in pred]
        if not any(keep):
            continue
        t = gold[keep]
        p = np.array([-1 if x is None else x for x, k in zip(pred, keep) if k])
        precision, recall, f1, _ = precision_recall_fscore_support(t, p, labels=[0, 1], zero_division=0.0)
        assert [m.precision_0, m.precision_1] == pytest.approx(precision.tolist(), abs=1e-12)
        assert [m.recall_0, m.recall_1] == pytest.approx(recall.tolist(), abs=1e-12)
        assert [m.f1_0, m.f1_1] == pytest.approx(f1.tolist(), abs=1e-12)
        ci = binomtest(int((t == p).sum()), len(t)).proportion_ci(method="wilson")
        assert (m.accuracy_ci_low, m.accuracy_ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
        if len(set(t.tolist())) == 2:
            assert m.roc_auc == pytest.approx(roc_auc_score(t, scores[keep]), abs=1e-12)


def test_wilson_interval_equals_scipy_at_other_levels():
    from scipy.stats import binomtest

    for k, n, level in [(0, 1, 0.95), (1, 1, 0.9), (500, 1388, 0.99), (1387, 1388, 0.8)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
        assert wilson_interval(k, n, level) == pytest.approx((ci.low, ci.high), abs=1e-12)
