"""Typed fields out of the annotation steps' blocks, never guessed: a block that does not say what
its step asks for, in the form its header asks for, is `unparseable` with the reason.

- categorie: `Catégories : ["…", …]`, each name on the header's closed list (case, accents and
  apostrophes aside); an empty list is a valid answer. A name off the list gives the block its
  own status, `off_list`: the listed names are read and the others named, never mapped to one.
  "Adhésion explicite à une idée toxique" is on the header's list (the release's parser dropped it).
- labels: the six level codes `S/H/V/R/A/I`, exactly one each (`S0/H2/V0/R0/A2/I2`).
- toxicite_score: `Note : N/10`, N a whole number from 0 to 10.
- certitude: `Certitude : élevée|moyenne|faible`.
- conclusion: `Conclusion : 0|1`.
- explication, ton, intention: free text; only an empty block is unparseable.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toxbench.run.cot_steps import categories

LABEL_DIMENSIONS = ("S", "H", "V", "R", "A", "I")
CERTAINTIES = ("élevée", "moyenne", "faible")


@dataclass(frozen=True)
class ParsedBlock:
    status: str
    """ok; off_list (categories only: the listed names are read, the others named in `problem`);
    or unparseable (the block is kept as it came; nothing is read from it)."""
    value: Any = None
    """The typed field: a list of categories, a tuple of six codes, a score, a certainty, 0 or 1."""
    justification: str | None = None
    """The block's `Justification :` text, where it has one."""
    problem: str | None = None
    """Why the block is unparseable."""


def _fold(text: str) -> str:
    """Lower case, without accents or emphasis: how a heading is matched (`Catégories`, `**Note**`)."""
    text = unicodedata.normalize("NFKD", text.replace("*", ""))
    return "".join(c for c in text if not unicodedata.combining(c)).lower()


def _justification(text: str) -> str | None:
    match = re.search(r"\**\s*justification\s*\**\s*:\s*(.*)", text, re.IGNORECASE | re.DOTALL)
    return (match.group(1).strip() or None) if match else None


def _unparseable(problem: str) -> ParsedBlock:
    return ParsedBlock("unparseable", problem=problem)


def _same_name(name: str) -> str:
    """A category name as the closed list is matched: case, accents, apostrophes, spacing and
    invisible soft hyphens aside (`Evocation d'un …` is `Évocation d’un …`)."""
    return " ".join(_fold(name.replace("\u00ad", "").replace("’", "'")).split())


def parse_categories(text: str) -> ParsedBlock:
    folded = _fold(text)
    heading = re.search(r"categories?\s*:\s*\[", folded)
    if not heading:
        return _unparseable("no `Catégories : [...]` list")
    start = heading.end() - 1
    end = text.find("]", start)
    if end < 0:
        return _unparseable("the category list is not closed")
    listed = text[start : end + 1]
    try:
        names = json.loads(listed)
    except ValueError:
        try:
            names = ast.literal_eval(listed)
        except (ValueError, SyntaxError):
            return _unparseable(f"the category list is not a list of quoted names: {listed[:80]}")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return _unparseable(f"the category list is not a list of quoted names: {listed[:80]}")
    allowed = {_same_name(c): c for c in categories()}
    found = list(dict.fromkeys(allowed[_same_name(n)] for n in names if _same_name(n) in allowed))
    unknown = [n for n in names if _same_name(n) not in allowed]
    if unknown:  # its own status: the listed names are read, the others named, none mapped to a listed one
        return ParsedBlock(
            "off_list",
            found,
            _justification(text[end + 1 :]),
            f"not on the closed list: {', '.join(repr(n) for n in unknown)}",
        )
    return ParsedBlock("ok", found, _justification(text[end + 1 :]))


_LEVEL = re.compile(r"\b([SHVRAI])([0-3])\b")


def parse_labels(text: str) -> ParsedBlock:
    """Exactly one level per dimension before the justification, on one line (`S0/H2/V0/R0/A2/I2`,
    in any order) or one a line (`Sexuel (S) - S0`); returned in S/H/V/R/A/I order."""
    head = re.split(r"justification\s*\**\s*:", text, maxsplit=1, flags=re.IGNORECASE)[0]
    codes = _LEVEL.findall(head)
    dimensions = [d for d, _ in codes]
    if sorted(dimensions) != sorted(LABEL_DIMENSIONS):
        return _unparseable("not exactly one S, H, V, R, A and I level (`S0/H0/V0/R0/A0/I0`)")
    levels = dict(codes)
    return ParsedBlock("ok", tuple(f"{d}{levels[d]}" for d in LABEL_DIMENSIONS), _justification(text))


_SCORE = re.compile(r"note\s*:\s*(\d+(?:[.,]\d+)?)\s*/\s*10\b")


def parse_score(text: str) -> ParsedBlock:
    found = _SCORE.findall(_fold(text))
    if len(set(found)) != 1:
        return _unparseable("no `Note : N/10`" if not found else f"more than one score: {', '.join(found)}")
    value = float(found[0].replace(",", "."))
    if not value.is_integer() or not 0 <= value <= 10:
        return _unparseable(f"score {found[0]} is not a whole number from 0 to 10")
    return ParsedBlock("ok", int(value), _justification(text))


_CERTAINTY = re.compile(r"certitude\s*:\s*\[?\s*(elevee|moyenne|faible)\b")


def parse_certainty(text: str) -> ParsedBlock:
    found = set(_CERTAINTY.findall(_fold(text)))
    if len(found) != 1:
        return _unparseable("no `Certitude : élevée|moyenne|faible`" if not found else "more than one certainty")
    level = found.pop()
    return ParsedBlock("ok", {"elevee": "élevée"}.get(level, level))


_CONCLUSION = re.compile(r"conclusion\s*:\s*\[?\s*([01])\b")


def parse_conclusion(text: str) -> ParsedBlock:
    found = set(_CONCLUSION.findall(_fold(text)))
    if len(found) != 1:
        return _unparseable("no `Conclusion : 0|1`" if not found else "both 0 and 1")
    return ParsedBlock("ok", int(found.pop()))


def parse_free_text(text: str) -> ParsedBlock:
    return ParsedBlock("ok", text.strip()) if text and text.strip() else _unparseable("empty block")


PARSERS: dict[str, Callable[[str], ParsedBlock]] = {
    "explication": parse_free_text,
    "ton": parse_free_text,
    "intention": parse_free_text,
    "categorie": parse_categories,
    "labels": parse_labels,
    "toxicite_score": parse_score,
    "certitude": parse_certainty,
    "conclusion": parse_conclusion,
}


def parse_block(step: str, text: str | None) -> ParsedBlock:
    if not text or not text.strip():
        return _unparseable("empty block")
    return PARSERS[step](text)
