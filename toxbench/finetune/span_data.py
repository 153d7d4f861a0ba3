"""Training rows for span-supervised encoders: a dataset with gold spans (toxicspans-en:train,
state-toxicn:train, a user file with a `spans` column), split into training and validation by
post, with synthetic negatives where the data has too few non-toxic posts.

SemEval's posts are all toxic. `negatives = "spans-deleted"` adds, for each toxic post with at
least one span, the same post with its span characters deleted, labelled non-toxic and marked
synthetic: the classifier then has to look at the spans, which is what the span objectives want,
but the negatives are not natural text (a post can stay rude once its marked words are gone), and
the validation split's F1 measures this constructed task, not toxicity in the wild. A negative
stays in the split of the post it was made from, so no post is seen on both sides.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from toxbench._util import TABLE_BYTES, read_user_text
from toxbench.data.datasets import load_dataset
from toxbench.errors import ToxbenchError
from toxbench.explain.faithfulness import without
from toxbench.finetune.cot_data import stratified_split


class SpanDataSettings(BaseModel):
    """The [spans] table of an encoder job: train on a dataset with gold spans."""

    model_config = ConfigDict(extra="forbid")

    dataset: str  # a dataset with gold spans, e.g. toxicspans-en:train
    negatives: Literal["spans-deleted", "none"] = "spans-deleted"
    validation_fraction: float = Field(0.1, gt=0, lt=1)
    seed: int = 42
    max_posts: int | None = Field(None, ge=2)  # a seeded, stratified subset of the dataset's posts (smoke and CPU runs)
    arcl_pairs: Path | None = (
        None  # rationale pairs from `toxbench finetune arcl-pairs` (the toxitrace objective's ARCL term)
    )


@dataclass(frozen=True)
class SpanRow:
    text: str
    label: int
    spans: tuple[tuple[int, int], ...] | None  # None: no span annotation (no span term)
    synthetic: bool = False
    rationales: tuple[str, str] | None = None  # (toxic, non-toxic) rationale pair, for ARCL


def read_pairs(path: Path) -> dict[str, tuple[str, str]]:
    """Text -> (toxic rationale, non-toxic rationale) from a pairs file; a bad line is a one-line error."""
    pairs = {}
    try:
        lines = read_user_text(path, "pairs file", TABLE_BYTES).splitlines()
    except ToxbenchError as exc:
        raise ToxbenchError(f"[spans] arcl_pairs: {exc}; write it with `toxbench finetune arcl-pairs`") from None
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            pairs[row["text"]] = (str(row["rationale_toxic"]), str(row["rationale_non_toxic"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ToxbenchError(
                f"{path}: line {number} is not a pair (text, rationale_toxic, rationale_non_toxic); "
                "write the file with `toxbench finetune arcl-pairs`"
            ) from None
    return pairs


def with_negatives(rows: list[SpanRow], how: str) -> list[SpanRow]:
    if how == "none":
        return rows
    made = [SpanRow(without(r.text, r.spans), 0, (), True) for r in rows if r.label == 1 and r.spans]
    return rows + [r for r in made if r.text.strip()]


def span_splits(settings: SpanDataSettings, data) -> tuple[list[SpanRow], list[SpanRow], dict]:
    """(train, validation, stats)."""
    dataset = load_dataset(settings.dataset, data)
    if not any(s.spans for s in dataset.samples):
        raise ToxbenchError(
            f"[spans] dataset = {settings.dataset!r} has no gold spans; use toxicspans-en:train, state-toxicn:train "
            "or a file with a spans column"
        )
    pairs = read_pairs(settings.arcl_pairs) if settings.arcl_pairs else {}
    posts = [SpanRow(s.text, s.label, s.spans, rationales=pairs.get(s.text)) for s in dataset.samples]
    labels = [r.label for r in posts]
    if settings.max_posts and settings.max_posts < len(posts):
        posts, _ = stratified_split(posts, labels, 1 - settings.max_posts / len(posts), settings.seed)
        labels = [r.label for r in posts]
    train, validation = stratified_split(posts, labels, settings.validation_fraction, settings.seed)
    train, validation = with_negatives(train, settings.negatives), with_negatives(validation, settings.negatives)
    random.Random(settings.seed).shuffle(train)
    counts = {
        name: {
            "toxic": sum(r.label == 1 for r in rows),
            "non_toxic": sum(r.label == 0 for r in rows),
            "synthetic_negatives": sum(r.synthetic for r in rows),
            "with_spans": sum(bool(r.spans) for r in rows),
            "with_rationales": sum(r.rationales is not None for r in rows),
        }
        for name, rows in (("train", train), ("validation", validation))
    }
    if not counts["train"]["non_toxic"]:
        raise ToxbenchError(
            f'[spans] dataset = {settings.dataset!r} gives no non-toxic training rows; set negatives = "spans-deleted"'
        )
    return (
        train,
        validation,
        {
            "dataset": dataset.name,
            "dataset_sha256": dataset.sha256,
            "posts": len(posts),
            "negatives": settings.negatives,
            "notes": list(dataset.notes),
            **counts,
        },
    )


def token_roles(offsets: list[tuple[int, int]], spans) -> list[int]:
    """Per token: 0 special (empty range), 2 overlapping a span, 1 other content."""
    from toxbench.finetune.span_objectives import ROLE_OTHER, ROLE_PAD, ROLE_SPAN

    spans = spans or ()
    return [
        ROLE_PAD if e <= s else ROLE_SPAN if any(s < b_end and b_start < e for b_start, b_end in spans) else ROLE_OTHER
        for s, e in offsets
    ]
