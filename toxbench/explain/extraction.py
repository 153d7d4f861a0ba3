"""Toxic spans from a saliency curve: pure functions of (text, token offsets, token saliency).

Only positive saliency counts as evidence for "toxic"; the curve is scaled by its highest value
(so every constant below is a fraction of the post's own peak) and special tokens (empty offsets)
are left out. Three rules:
- `threshold`: every token at or above `threshold`;
- `topk`: the `k` most salient tokens with positive saliency;
- `cliff` (ToxiTrace's "bidirectional cliff scan", our reading of it): from each peak (a local
  maximum at least `peak_min`), grow left and right while the curve stays at or above `floor`
  times the peak and falls by no more than `max_drop` times the peak from one token to the next;
  a sharper fall is the cliff where the span ends.
Then selected tokens at most `merge_gap` tokens apart are joined, each span becomes the character
range from its first token's start to its last token's end and, with `whole_words`, grows to the
word boundaries around it (Latin-script letters and digits only: Chinese text has no spaces, and a
"word" would swallow the sentence). Constants are config values; `tune` picks them on a validation
split by SemEval character F1.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toxbench.data.spans import Span, merge, to_offsets
from toxbench.explain.span_metrics import semeval_f1


class Extraction(BaseModel):
    """How spans are read from a saliency curve (part of an explanation's identity)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["threshold", "topk", "cliff"] = "cliff"
    threshold: float = Field(0.5, ge=0, le=1)
    k: int = Field(3, ge=1)
    peak_min: float = Field(0.5, ge=0, le=1)
    floor: float = Field(0.3, ge=0, le=1)
    max_drop: float = Field(0.5, ge=0, le=1)
    merge_gap: int = Field(1, ge=0)
    whole_words: bool = True

    @model_validator(mode="before")
    @classmethod
    def _only_the_rules_constants(cls, values):
        """A constant of another rule is refused, not ignored: it would change nothing but the id."""
        if isinstance(values, dict):
            rule = values.get("rule", "cliff")
            foreign = sorted(
                k
                for k, v in values.items()
                if k in ALL_CONSTANTS and k not in RULE_CONSTANTS.get(rule, ()) and v != cls.model_fields[k].default
            )
            if foreign:
                raise ValueError(
                    f"{', '.join(foreign)} do not apply to the {rule} rule (its constants: {', '.join(RULE_CONSTANTS[rule])})"
                )
        return values

    def constants(self) -> dict:
        """The constants the rule uses (what `toxbench spans` shows)."""
        return {k: getattr(self, k) for k in RULE_CONSTANTS[self.rule]}


RULE_CONSTANTS = {
    "threshold": ("threshold", "merge_gap", "whole_words"),
    "topk": ("k", "merge_gap", "whole_words"),
    "cliff": ("peak_min", "floor", "max_drop", "merge_gap", "whole_words"),
}
ALL_CONSTANTS = {"threshold", "k", "peak_min", "floor", "max_drop"}


def _word_char(c: str) -> bool:
    return c.isalnum() and ord(c) < 0x2E80  # below the CJK blocks


def _scaled(saliency: Sequence[float]) -> list[float]:
    top = max((s for s in saliency if s > 0), default=0.0)
    return [max(s, 0.0) / top for s in saliency] if top > 0 else [0.0] * len(saliency)


def _cliff(v: list[float], peak_min: float, floor: float, max_drop: float) -> set[int]:
    chosen: set[int] = set()
    n = len(v)
    peaks = [
        i for i in range(n) if v[i] >= peak_min and (i == 0 or v[i] >= v[i - 1]) and (i == n - 1 or v[i] >= v[i + 1])
    ]
    for p in sorted(peaks, key=lambda i: -v[i]):
        if p in chosen:
            continue
        chosen.add(p)
        for step in (-1, 1):
            j = p + step
            while 0 <= j < n and v[j] >= floor * v[p] and v[j - step] - v[j] <= max_drop * v[p]:
                chosen.add(j)
                j += step
    return chosen


def select_tokens(saliency: Sequence[float], settings: Extraction) -> list[int]:
    """Positions (into `saliency`) of the tokens the rule selects, before merging."""
    v = _scaled(saliency)
    if settings.rule == "threshold":
        chosen = {i for i, x in enumerate(v) if x > 0 and x >= settings.threshold}
    elif settings.rule == "topk":
        chosen = set(sorted((i for i, x in enumerate(v) if x > 0), key=lambda i: -v[i])[: settings.k])
    else:
        chosen = _cliff(v, settings.peak_min, settings.floor, settings.max_drop)
    return sorted(chosen)


def extract(text: str, offsets: Sequence[Span], saliency: Sequence[float], settings: Extraction) -> tuple[Span, ...]:
    """Character spans of `text` from per-token saliency; `offsets` are the tokens' character
    ranges (special tokens, with an empty range, are ignored)."""
    content = [i for i, (s, e) in enumerate(offsets) if e > s]
    picked = select_tokens([saliency[i] for i in content], settings)
    groups: list[list[int]] = []
    for pos in picked:
        if groups and pos - groups[-1][-1] - 1 <= settings.merge_gap:
            groups[-1].append(pos)
        else:
            groups.append([pos])
    spans = []
    for group in groups:
        start, end = offsets[content[group[0]]][0], offsets[content[group[-1]]][1]
        if settings.whole_words:
            while start > 0 and _word_char(text[start - 1]) and _word_char(text[start]):
                start -= 1
            while end < len(text) and _word_char(text[end]) and _word_char(text[end - 1]):
                end += 1
        spans.append((start, end))
    return merge(spans)


TUNING_GRID = {
    "threshold": {"threshold": [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]},
    "topk": {"k": [1, 2, 3, 4, 5, 6, 8]},
    "cliff": {
        "peak_min": [0.3, 0.5, 0.7],
        "floor": [0.1, 0.2, 0.3, 0.5],
        "max_drop": [0.2, 0.35, 0.5, 1.0],
        "merge_gap": [0, 1, 2],
    },
}


def tune(
    rule: str,
    examples: Sequence[tuple[str, Sequence[Span], Sequence[float], Sequence[Span]]],
    base: Extraction | None = None,
    grid: dict[str, list] | None = None,
) -> tuple[Extraction, float]:
    """The rule's constants with the best mean SemEval F1 on `examples` (text, token offsets,
    saliency, gold spans); examples with no extraction (a post predicted non-toxic) are passed
    with saliency None and score as an empty prediction. Ties go to the first grid point."""
    base = (base or Extraction()).model_copy(update={"rule": rule})
    grid = grid or TUNING_GRID[rule]
    golds = [to_offsets(gold) for *_, gold in examples]
    best, best_f1 = base, -1.0
    for values in itertools.product(*grid.values()):
        settings = base.model_copy(update=dict(zip(grid, values)))
        f1 = sum(
            semeval_f1(to_offsets(extract(text, offsets, sal, settings)) if sal is not None else (), g)
            for (text, offsets, sal, _), g in zip(examples, golds)
        ) / len(examples)
        if f1 > best_f1:
            best, best_f1 = settings, f1
    return best, best_f1
