"""Answer parsers: a model's text -> a label and a status, never a guess.

The one-word parser reads the paper's answer format (`toxique` / `non-toxique`, `toxic` /
`non-toxic`) and what models actually write around it: case, accents, Markdown, quotes,
punctuation, "n'est pas toxique" / "not toxic", an echoed question, a `<think>` block, a bare
"oui"/"non" to the yes/no question. An answer that holds both verdicts, or neither, is
`unparseable`; a textual refusal is `refused`. Provider-level refusals (finish reasons, block
reasons) are recognised by the adapters, which know the wire format.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from toxbench.types import Status


@dataclass(frozen=True)
class Parsed:
    pred: int | None
    status: Status


UNPARSEABLE = Parsed(None, "unparseable")
REFUSED = Parsed(None, "refused")

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_NOISE = re.compile(r"[\W_]+")  # every punctuation, dash, quote, Markdown or emoji character
_ECHOED_QUESTION = re.compile(
    r"\b(ce message est il toxique|est ce que ce message est toxique|is this message toxic|is the message toxic)\b"
)
_NEGATED = re.compile(
    r"\b(non\s*toxiques?|pas\s+(du\s+tout\s+)?toxiques?|nullement\s+toxiques?|aucunement\s+toxiques?"
    r"|non\s*toxic|not\s+(at\s+all\s+)?toxic|nontoxic)\b"
)
_POSITIVE = re.compile(r"\b(toxiques?|toxic)\b")
_YES = {"oui", "yes"}
_NO = {"non", "no"}
_REFUSAL = re.compile(
    r"\b(je ne peux pas|je ne suis pas en mesure|desole mais je|i can ?t (help|assist|comply)|i cannot (help|assist|comply)"
    r"|i m sorry but i|as an ai|i won ?t (help|assist))\b"
)


def normalise(text: str) -> str:
    """Lower case, no accents, no Markdown or punctuation, single spaces."""
    text = _THINK.sub(" ", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(_NOISE.sub(" ", text).split())


def parse_one_word(text: str | None) -> Parsed:
    """The paper's one-word answer, French or English."""
    if not text or not text.strip():
        return UNPARSEABLE
    norm = _ECHOED_QUESTION.sub(" ", normalise(text))
    negated = bool(_NEGATED.search(norm))
    positive = bool(_POSITIVE.search(_NEGATED.sub(" ", norm)))
    if negated and not positive:
        return Parsed(0, "ok")
    if positive and not negated:
        return Parsed(1, "ok")
    if negated and positive:
        return UNPARSEABLE
    words = norm.split()
    if len(words) == 1 and words[0] in _YES:
        return Parsed(1, "ok")
    if len(words) == 1 and words[0] in _NO:
        return Parsed(0, "ok")
    if _REFUSAL.search(norm):
        return REFUSED
    return UNPARSEABLE


_GUARD = re.compile(r"^\s*(unsafe|safe)\b", re.IGNORECASE)


def parse_guard(text: str | None) -> Parsed:
    """A guard model's verdict: `safe` -> 0, `unsafe` (with or without categories) -> 1."""
    match = _GUARD.match(text or "")
    if not match:
        return UNPARSEABLE
    return Parsed(int(match.group(1).lower() == "unsafe"), "ok")


_COT_CONCLUSION = re.compile(r"conclusion\s*:\s*\**\s*(oui|non|yes|no|1|0|toxique|non[- ]toxique)\b", re.IGNORECASE)
_COT_VALUE = {"oui": 1, "yes": 1, "1": 1, "toxique": 1, "non": 0, "no": 0, "0": 0}


def parse_cot(text: str | None) -> Parsed:
    """A fine-tuned CoT model's answer: the last `Conclusion : oui|non` after its `<think>` blocks
    (the reasoning may quote other conclusions; only the last one counts)."""
    matches = _COT_CONCLUSION.findall(text or "")
    if not matches:
        return UNPARSEABLE
    value = matches[-1].lower()
    return Parsed(_COT_VALUE.get(value, 0), "ok")


PARSERS: dict[str, Callable[[str | None], Parsed]] = {
    "one-word": parse_one_word,
    "guard": parse_guard,
    "cot": parse_cot,
}


def get_parser(name: str) -> Callable[[str | None], Parsed]:
    try:
        return PARSERS[name]
    except KeyError:
        from toxbench.errors import ToxbenchError

        raise ToxbenchError(f"unknown parser {name!r}; known: {', '.join(PARSERS)}") from None


def answer_text(raw: str | None) -> str:
    """The answer a person reads, out of a record's raw field: the message text of an OpenAI,
    Mistral, Anthropic or Gemini response, a local model's generation, else the raw field itself."""
    if not raw:
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    try:
        if "choices" in data:  # OpenAI, Mistral, OpenAI-compatible servers
            content = data["choices"][0]["message"].get("content")
            return content if isinstance(content, str) else "".join(c.get("text", "") for c in content or [])
        if data.get("type") == "message" and isinstance(data.get("content"), list):  # Anthropic
            return "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
        if "candidates" in data:  # Gemini
            return "".join(p.get("text", "") for p in data["candidates"][0]["content"].get("parts", []))
        if "generated" in data:  # local models
            return str(data["generated"])
    except (KeyError, IndexError, TypeError, AttributeError):
        pass
    return raw
