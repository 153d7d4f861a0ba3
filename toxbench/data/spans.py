"""Gold toxic spans: character ranges of a text, read from the forms datasets write them in.

A span is a half-open character range `(start, end)` of its sample's text, so `text[start:end]`
is the evidence. SemEval-2021 writes spans as a list of character offsets, other files as
`[[start, end], ...]`, STATE ToxiCN as substrings; all become sorted, merged ranges here. A span is
only ever a substring of its text: an offset outside the text, or a substring the text does not
hold, is dropped and counted (`SpanDrops`), never moved or guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from toxbench.errors import DataError

Span = tuple[int, int]


def merge(ranges: list[Span]) -> tuple[Span, ...]:
    """Sorted ranges with overlapping or touching ones joined; empty ranges left out."""
    out: list[list[int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return tuple((s, e) for s, e in out)


def from_offsets(offsets) -> tuple[Span, ...]:
    """Character offsets (SemEval's form) -> ranges: runs of consecutive offsets become one range."""
    return merge([(o, o + 1) for o in offsets])


def to_offsets(spans) -> set[int]:
    """Ranges -> the set of character offsets they cover (what the SemEval scorer compares)."""
    return {o for start, end in spans for o in range(start, end)}


@dataclass
class SpanDrops:
    """What was dropped while reading spans: offsets or ranges outside their text, and substrings
    the text does not hold. Kept per dataset so `data show` and training can say how many."""

    outside: int = 0
    not_found: int = 0
    rows: list[str] = field(default_factory=list)  # where, for the first few

    def note(self, what: str, where: str, n: int = 1) -> None:
        setattr(self, what, getattr(self, what) + n)
        if len(self.rows) < 5:
            self.rows.append(where)

    def notes(self) -> tuple[str, ...]:
        """One line saying what was dropped, or nothing (a Dataset's `notes`)."""
        if not (self.outside or self.not_found):
            return ()
        parts = [f"{self.outside} span offsets outside their text"] if self.outside else []
        parts += [f"{self.not_found} span substrings not in their text"] if self.not_found else []
        return (" and ".join(parts) + f" dropped (first at {', '.join(self.rows)})",)


def parse_spans(value, text: str, where: str, drops: SpanDrops) -> tuple[Span, ...] | None:
    """A `spans` cell -> ranges within `text`. Accepts a JSON text or a list: character offsets
    `[0, 1, 2]` or ranges `[[0, 3], ...]`; empty (`[]`) means annotated with no span, a missing
    cell (None, "") means not annotated. Anything else is a one-line error naming `where`."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(
                f"{where}: spans {value[:40]!r} is not JSON; write character offsets [0, 1, 2] or ranges [[0, 3]]"
            ) from None
    if not isinstance(value, list):
        raise DataError(f"{where}: spans {value!r} is not a list; write character offsets [0, 1, 2] or ranges [[0, 3]]")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        kept = [o for o in value if 0 <= o < len(text)]
        if len(kept) < len(value):
            drops.note("outside", where, len(value) - len(kept))
        return from_offsets(kept)
    ranges: list[Span] = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
        ):
            raise DataError(
                f"{where}: span {item!r} is neither an offset nor a [start, end] pair; write [0, 1, 2] or [[0, 3]]"
            )
        start, end = item
        if not 0 <= start < end <= len(text):
            drops.note("outside", where)
            continue
        ranges.append((start, end))
    return merge(ranges)


def substring_spans(text: str, pieces, where: str, drops: SpanDrops) -> tuple[Span, ...]:
    """Ranges of every occurrence of each piece in `text` (STATE ToxiCN's arguments are quoted
    substrings without offsets, so every place the text says it is marked); a piece the text does
    not hold is dropped and counted."""
    ranges: list[Span] = []
    for piece in pieces:
        piece = str(piece)
        if not piece.strip():
            continue
        start = text.find(piece)
        if start < 0:
            drops.note("not_found", where)
            continue
        while start >= 0:
            ranges.append((start, start + len(piece)))
            start = text.find(piece, start + 1)
    return merge(ranges)


def highlight(text: str, spans, open_tag: str, close_tag: str, escape=lambda s: s) -> str:
    """`text` with every span wrapped in the tags and everything escaped by `escape` (rich markup
    in the terminal, HTML in the report): the one place a span is shown."""
    out, at = [], 0
    for start, end in spans or ():
        out += [escape(text[at:start]), open_tag, escape(text[start:end]), close_tag]
        at = end
    out.append(escape(text[at:]))
    return "".join(out)
