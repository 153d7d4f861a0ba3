"""Span extraction on hand-made saliency curves, with exact spans."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from toxbench.explain.extraction import Extraction, extract, select_tokens, tune
from toxbench.explain.faithfulness import measures, most_salient, only, variants, without

TEXT = "you are a stupid idiot and a liar"
# word tokens: you are a stupid idiot and a liar
OFFSETS = [(0, 0), (0, 3), (4, 7), (8, 9), (10, 16), (17, 22), (23, 26), (27, 28), (29, 33), (0, 0)]


def test_threshold_and_topk():
    curve = [0.0, 0.1, 0.0, -0.2, 0.9, 1.0, 0.1, 0.0, 0.6, 0.0]
    assert extract(TEXT, OFFSETS, curve, Extraction(rule="threshold", threshold=0.5, merge_gap=0)) == (
        (10, 22),
        (29, 33),
    )
    assert extract(TEXT, OFFSETS, curve, Extraction(rule="topk", k=1)) == ((17, 22),)
    # "idiot" and "liar" are two tokens apart: merged with merge_gap=2, not with 1
    assert extract(TEXT, OFFSETS, curve, Extraction(rule="threshold", threshold=0.5, merge_gap=1)) == (
        (10, 22),
        (29, 33),
    )
    assert extract(TEXT, OFFSETS, curve, Extraction(rule="threshold", threshold=0.5, merge_gap=2)) == ((10, 33),)


def test_cliff_scan_stops_at_a_cliff_and_below_the_floor():
    # content curve: you .1, are .1, a .45, stupid .8, idiot 1, and .75, a .05, liar .0
    curve = [0, 0.1, 0.1, 0.45, 0.8, 1.0, 0.75, 0.05, 0.0, 0]
    cliff = Extraction(rule="cliff", peak_min=0.5, floor=0.3, max_drop=0.5, merge_gap=0)
    # grows left over stupid (drop .2) and a (drop .35), stops at are (below the floor);
    # grows right over and (drop .25), stops at a (drop .7 > .5: the cliff)
    assert select_tokens(curve[1:-1], cliff) == [2, 3, 4, 5]
    assert extract(TEXT, OFFSETS, curve, cliff) == ((8, 26),)
    steep = cliff.model_copy(update={"max_drop": 0.3})  # stupid->a drops .35: a is left out
    assert extract(TEXT, OFFSETS, curve, steep) == ((10, 26),)


def test_no_positive_saliency_gives_no_span():
    assert extract(TEXT, OFFSETS, [0.0] + [-1.0] * 8 + [0.0], Extraction()) == ()


def test_whole_words_grow_subwords_but_not_chinese_characters():
    text = "what an idiotic post"
    offsets = [(0, 4), (5, 7), (8, 13), (13, 15), (16, 20)]  # "idiot" + "ic"
    rule = Extraction(rule="topk", k=1)
    assert extract(text, offsets, [0, 0, 1.0, 0.1, 0], rule) == ((8, 15),)
    assert extract(text, offsets, [0, 0, 1.0, 0.1, 0], rule.model_copy(update={"whole_words": False})) == ((8, 13),)
    chinese = "你是个蠢货吧"
    char_offsets = [(i, i + 1) for i in range(len(chinese))]
    assert extract(chinese, char_offsets, [0, 0, 0, 1.0, 0.9, 0], Extraction(rule="threshold", threshold=0.5)) == (
        (3, 5),
    )


def test_a_constant_of_another_rule_is_refused():
    with pytest.raises(ValidationError, match="k do not apply to the cliff rule"):
        Extraction(rule="cliff", k=5)


def test_tune_picks_the_constant_that_matches_gold():
    curve = [0.0, 0.1, 0.0, 0.0, 0.9, 1.0, 0.1, 0.0, 0.6, 0.0]
    gold = ((10, 22),)  # "stupid idiot" only: a threshold above .6 and below .9 finds it
    best, f1 = tune("threshold", [(TEXT, OFFSETS, curve, gold)], grid={"threshold": [0.5, 0.7, 0.95]})
    assert (best.threshold, f1) == (0.7, 1.0)
    # a post the model called non-toxic (saliency None) scores as an empty prediction
    _, f1 = tune("threshold", [(TEXT, OFFSETS, None, gold)], grid={"threshold": [0.5]})
    assert f1 == 0.0


def test_faithfulness_texts_and_measures():
    assert without(TEXT, [(10, 22)]) == "you are a  and a liar"
    assert only(TEXT, [(10, 16), (29, 33)]) == "stupid liar"
    curve = [0, 0.1, 0.0, 0.0, 0.9, 1.0, 0.1, 0.0, 0.6, 0]
    assert most_salient(OFFSETS, curve, 0.2) == [(17, 22), (10, 16)]  # ceil(0.2 x 8 words) = 2
    texts = variants(TEXT, [(10, 22)], OFFSETS, curve, fractions=(0.2,))
    assert texts == {
        "full": TEXT,
        "without": "you are a  and a liar",
        "only": "stupid idiot",
        "aopc@0.2": "you are a   and a liar",
    }  # tokens go, the space between them stays
    m = measures({"full": 0.9, "without": 0.2, "only": 0.8, "aopc@0.2": 0.3, "aopc@0.5": 0.1})
    assert m["comprehensiveness"] == pytest.approx(0.7) and m["sufficiency"] == pytest.approx(0.1)
    assert m["aopc"] == pytest.approx((0.6 + 0.8) / 2)
    assert measures({"full": 0.5})["comprehensiveness"] is None
