"""Faithfulness without gold spans (ERASER, DeYoung et al. 2020): how the classifier's
probability of "toxic" moves when the explanation's evidence is taken away or kept alone.

- comprehensiveness = p(x) − p(x without the spans): high when the spans carried the decision;
- sufficiency = p(x) − p(the spans alone): low when the spans suffice;
- AOPC = the mean, over removal fractions (ERASER's 1, 5, 10, 20, 50 %), of p(x) − p(x without
  its most salient tokens), so it needs no span rule at all.
Evidence is removed from the text (characters deleted, what remains joined), not masked in the
token ids, so the same texts work for any tokenizer. These functions build the texts; the
classifier scores them elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from toxbench.data.spans import Span, merge

AOPC_FRACTIONS = (0.01, 0.05, 0.1, 0.2, 0.5)


def without(text: str, spans: Sequence[Span]) -> str:
    """The text with the spans' characters deleted."""
    out, at = [], 0
    for start, end in merge(list(spans)):
        out.append(text[at:start])
        at = end
    out.append(text[at:])
    return "".join(out)


def only(text: str, spans: Sequence[Span]) -> str:
    """The spans alone, in order, joined by a space."""
    return " ".join(text[s:e] for s, e in merge(list(spans)))


def most_salient(offsets: Sequence[Span], saliency: Sequence[float], fraction: float) -> list[Span]:
    """Character ranges of the ceil(fraction × content tokens) most salient tokens (special
    tokens, with empty ranges, are not counted)."""
    content = [i for i, (s, e) in enumerate(offsets) if e > s]
    n = math.ceil(fraction * len(content))
    top = sorted(content, key=lambda i: -saliency[i])[:n]
    return [tuple(offsets[i]) for i in top]


def variants(
    text: str,
    spans: Sequence[Span],
    offsets: Sequence[Span],
    saliency: Sequence[float],
    fractions: Sequence[float] = AOPC_FRACTIONS,
) -> dict[str, str]:
    """Every text the measures need, by name: `full`, `without` and `only` (when there are spans)
    and `aopc@<fraction>`."""
    texts = {"full": text}
    if spans:
        texts["without"], texts["only"] = without(text, spans), only(text, spans)
    for f in fractions:
        texts[f"aopc@{f:g}"] = without(text, most_salient(offsets, saliency, f))
    return texts


def measures(probs: dict[str, float]) -> dict[str, float | None]:
    """The measures from p(toxic) of each variant text (keys as `variants` names them)."""
    full = probs["full"]
    aopc = [full - p for name, p in probs.items() if name.startswith("aopc@")]
    return {
        "p_full": full,
        "comprehensiveness": full - probs["without"] if "without" in probs else None,
        "sufficiency": full - probs["only"] if "only" in probs else None,
        "aopc": sum(aopc) / len(aopc) if aopc else None,
    }
