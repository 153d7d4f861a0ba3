"""Span metrics: pure functions of predicted and gold character spans, one post at a time or
averaged over posts.

`semeval_f1` is the SemEval-2021 Task 5 measure exactly as its official scorer
(`evaluation/semeval2021.py`) defines it: per post, F1 between the sets of predicted and gold
character offsets, 1 when both are empty and 0 when only one is; the corpus score is the mean over
posts. The other measures are this project's, defined here so their numbers can be published:
- character precision and recall: pooled over the corpus (every character of every post counts
  once), so a post with no prediction adds nothing to precision's denominator;
- character IoU: per post |P ∩ G| / |P ∪ G|, 1 when both are empty, averaged like the F1;
- overlap F1: span-level and lenient; a predicted span is correct when it overlaps some gold
  span, a gold span is found when some predicted span overlaps it; precision and recall pooled.
Spans are `(start, end)` ranges (toxbench.data.spans); offsets are compared as sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from toxbench.data.spans import Span, to_offsets


def semeval_f1(predicted: Iterable[int], gold: Iterable[int]) -> float:
    """The official per-post F1 over character offsets."""
    predicted, gold = set(predicted), set(gold)
    if not gold:
        return 1.0 if not predicted else 0.0
    if not predicted:
        return 0.0
    return 2 * len(predicted & gold) / (len(predicted) + len(gold))


def iou(predicted: set[int], gold: set[int]) -> float:
    if not predicted and not gold:
        return 1.0
    return len(predicted & gold) / len(predicted | gold)


def _overlaps(span: Span, others: Sequence[Span]) -> bool:
    return any(span[0] < end and start < span[1] for start, end in others)


@dataclass(frozen=True)
class SpanScores:
    """Span agreement over `n` posts (see the module docstring for each definition)."""

    n: int
    f1: float  # SemEval character F1, mean over posts
    precision: float  # characters, pooled
    recall: float  # characters, pooled
    iou: float  # mean over posts
    overlap_precision: float
    overlap_recall: float
    overlap_f1: float

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(num: int, den: int, empty: float) -> float:
    return num / den if den else empty


def span_scores(pairs: Iterable[tuple[Sequence[Span], Sequence[Span]]]) -> SpanScores:
    """Scores of (predicted spans, gold spans) pairs, one pair per post."""
    n = f1_sum = iou_sum = 0.0
    hit = pred_chars = gold_chars = 0
    pred_spans = pred_ok = gold_spans = gold_found = 0
    for predicted, gold in pairs:
        p, g = to_offsets(predicted), to_offsets(gold)
        n += 1
        f1_sum += semeval_f1(p, g)
        iou_sum += iou(p, g)
        hit, pred_chars, gold_chars = hit + len(p & g), pred_chars + len(p), gold_chars + len(g)
        pred_spans += len(predicted)
        pred_ok += sum(_overlaps(span, gold) for span in predicted)
        gold_spans += len(gold)
        gold_found += sum(_overlaps(span, predicted) for span in gold)
    if not n:
        raise ValueError("no posts to score")
    # pooled ratios with nothing to count: precision with no prediction is 1 (nothing wrong was
    # said), recall with no gold span is 1 (nothing was missed)
    precision, recall = _ratio(hit, pred_chars, 1.0), _ratio(hit, gold_chars, 1.0)
    o_p, o_r = _ratio(pred_ok, pred_spans, 1.0), _ratio(gold_found, gold_spans, 1.0)
    return SpanScores(
        int(n), f1_sum / n, precision, recall, iou_sum / n, o_p, o_r, _ratio(2 * o_p * o_r, o_p + o_r, 0.0)
    )


def floors(golds: Sequence[Sequence[Span]], texts: Sequence[str]) -> dict[str, float]:
    """The two reference predictions SemEval reports beside every system: no span for any post,
    and every character of every post. On toxicspans-en:test they score 0.1970 and 0.1388."""
    empty = sum(semeval_f1((), to_offsets(g)) for g in golds) / len(golds)
    every = sum(semeval_f1(range(len(t)), to_offsets(g)) for g, t in zip(golds, texts)) / len(golds)
    return {"empty": empty, "all_characters": every}
