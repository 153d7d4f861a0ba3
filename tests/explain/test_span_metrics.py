"""Span metrics: the SemEval scorer's own example and the test-set reference points, and exact
values for the project's own measures on hand-made spans."""

from __future__ import annotations

import pytest

from toxbench.data.spans import from_offsets, to_offsets
from toxbench.explain.span_metrics import floors, semeval_f1, span_scores


def test_official_example():
    assert semeval_f1([0, 1, 4, 5], [0, 1, 6]) == 0.5714285714285714


@pytest.mark.parametrize(
    "pred, gold, expected", [([], [], 1.0), ([1], [], 0.0), ([], [1], 0.0), ([3, 4], [3, 4], 1.0), ([0], [1], 0.0)]
)
def test_empty_conventions(pred, gold, expected):
    assert semeval_f1(pred, gold) == expected


def test_offsets_round_trip_through_ranges():
    offsets = [0, 1, 4, 5, 9]
    assert from_offsets(offsets) == ((0, 2), (4, 6), (9, 10))
    assert to_offsets(from_offsets(offsets)) == set(offsets)


def test_scores_by_hand():
    # post 1: pred 0..4, gold 2..6 -> F1 2*2/(4+4) = 0.5, IoU 2/6; post 2: both empty -> 1, 1;
    # post 3: pred [(0,1),(5,6)], gold [(5,8)] -> offsets {0,5} vs {5,6,7}: F1 2/5, IoU 1/4
    pairs = [([(0, 4)], [(2, 6)]), ([], []), ([(0, 1), (5, 6)], [(5, 8)])]
    s = span_scores(pairs)
    assert s.n == 3
    assert s.f1 == pytest.approx((0.5 + 1 + 0.4) / 3, abs=1e-12)
    assert s.iou == pytest.approx((2 / 6 + 1 + 1 / 4) / 3, abs=1e-12)
    assert s.precision == pytest.approx(3 / 6)  # hits 2 + 1 over 4 + 2 predicted characters
    assert s.recall == pytest.approx(3 / 7)  # over 4 + 3 gold characters
    # overlap: predicted spans (0,4) yes, (0,1) no, (5,6) yes -> 2/3; gold spans both found -> 2/2
    assert (s.overlap_precision, s.overlap_recall) == (pytest.approx(2 / 3), 1.0)
    assert s.overlap_f1 == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))


def test_semeval_reference_points_on_the_test_set(data):
    from toxbench.data.datasets import load_dataset

    ds = load_dataset("toxicspans-en:test", data)
    found = floors([s.spans for s in ds.samples], [s.text for s in ds.samples])
    assert round(found["empty"], 4) == 0.1970
    assert round(found["all_characters"], 4) == 0.1388
    empty = span_scores([((), s.spans) for s in ds.samples])
    assert empty.f1 == found["empty"]
