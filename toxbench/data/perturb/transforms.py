"""Disguises of a text that leave its meaning, and so its gold label, as it was: small pure
functions of (text, a seeded random generator, rate) -> (new text, words changed). `rate` is the
share of eligible words changed; which words are eligible is each transform's own rule, and the
rule tables are data (tables.toml), documented in docs/robustness.md.

Each sample's generator is seeded from (seed, transform, sample id), so a text's disguise depends
on nothing else: the same seed gives the same derived dataset, whatever order or subset the
samples come in."""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

import tomllib

from toxbench.errors import ToxbenchError

WORD = re.compile(r"[^\W\d_]+")  # a run of letters (accented ones too)
VOWELS = set("aeiouyàâäéèêëîïôöùûüÿ")


@cache
def tables() -> dict:
    return tomllib.loads(tables_text())


@cache
def tables_text() -> str:
    return resources.files("toxbench.data.perturb").joinpath("tables.toml").read_text("utf-8")


def tables_sha256() -> str:
    return hashlib.sha256(tables_text().encode("utf-8")).hexdigest()


def _same_case(original: str, new: str) -> str:
    """`new` in the case pattern of `original`: ALL CAPS, Capitalised or as it is."""
    if len(original) > 1 and original.isupper():
        return new.upper()
    if original[:1].isupper():
        return new[:1].upper() + new[1:]
    return new


def _words(
    text: str,
    rng: random.Random,
    rate: float,
    eligible: Callable[[str], bool],
    rewrite: Callable[[str], str],
    pattern: re.Pattern = WORD,
) -> tuple[str, int]:
    """Each eligible match of `pattern` (a word by default) rewritten with probability `rate`
    (one draw per eligible match, in order)."""
    changed = 0

    def one(match: re.Match) -> str:
        nonlocal changed
        word = match.group()
        if not eligible(word) or rng.random() >= rate:
            return word
        new = rewrite(word)
        changed += new != word
        return new

    return pattern.sub(one, text), changed


def leetspeak(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    table = tables()["leetspeak"]
    return _words(
        text,
        rng,
        rate,
        lambda w: len(w) >= 3 and any(c.lower() in table for c in w),
        lambda w: "".join(table.get(c.lower(), c) for c in w),
    )


def homoglyphs(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    table = tables()["homoglyphs"]
    return _words(text, rng, rate, lambda w: any(c in table for c in w), lambda w: "".join(table.get(c, c) for c in w))


def separators(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    return _words(text, rng, rate, lambda w: len(w) >= 3, lambda w: rng.choice(".-*").join(w))


def repeats(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    def rewrite(word: str) -> str:
        at = rng.choice([i for i, c in enumerate(word) if c.lower() in VOWELS])
        return word[: at + 1] + word[at] * rng.randint(2, 4) + word[at + 1 :]

    return _words(text, rng, rate, lambda w: any(c.lower() in VOWELS for c in w), rewrite)


def _strip(char: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))


def accents_strip(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    return _words(text, rng, rate, lambda w: _strip(w) != w, lambda w: "".join(_strip(c) for c in w))


def accents_swap(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    table = tables()["accents"]

    def swap(c: str) -> str:
        options = table.get(c.lower())
        return _same_case(c, rng.choice(options)) if options else c

    return _words(text, rng, rate, lambda w: any(c.lower() in table for c in w), lambda w: "".join(map(swap, w)))


@cache
def _phonetic_rules() -> list[tuple[re.Pattern, str]]:
    return [(re.compile(pattern), replacement) for pattern, replacement in tables()["phonetic"]["rules"]]


def phonetic(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    rules = _phonetic_rules()

    def rewrite(word: str) -> str:
        lower = word.lower()
        pattern, replacement = rng.choice([r for r in rules if r[0].search(lower)])
        return _same_case(word, pattern.sub(replacement, lower))

    return _words(text, rng, rate, lambda w: len(w) >= 2 and any(p.search(w.lower()) for p, _ in rules), rewrite)


@cache
def _sms_pattern() -> re.Pattern:
    phrases = sorted(tables()["sms"], key=len, reverse=True)  # the longest phrase first: "parce que" before "que"
    alternation = "|".join(re.escape(p).replace("'", "['’]") for p in phrases)
    return re.compile(rf"(?<![^\W\d_])(?:{alternation})(?![^\W\d_])", re.IGNORECASE)


def sms(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    table = tables()["sms"]

    def short(phrase: str) -> str:
        return _same_case(phrase, table[phrase.lower().replace("’", "'")])

    return _words(text, rng, rate, lambda _: True, short, _sms_pattern())


WORD_BEFORE_A_BREAK = re.compile(r"[^\W\d_]+(?=[\s.,;:!?)]|$)")  # not inside an elision (C'est)


def emoji(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    symbols = tables()["emoji"]["symbols"]
    return _words(text, rng, rate, lambda _: True, lambda w: f"{w} {rng.choice(symbols)}", WORD_BEFORE_A_BREAK)


def spacing(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    def rewrite(word: str) -> str:
        at = rng.randint(1, len(word) - 1)
        return word[:at] + " " + word[at:]

    return _words(text, rng, rate, lambda w: len(w) >= 4, rewrite)


@cache
def _identity_forms() -> dict[str, tuple[str, str, int]]:
    """Each identity form (lower case) -> (category, group, its place in the group's forms)."""
    forms: dict[str, tuple[str, str, int]] = {}
    for category, groups in tables()["identity"].items():
        for group, words in groups.items():
            for place, word in enumerate(words):
                forms.setdefault(word.lower(), (category, group, place))
    return forms


def counterfactual(text: str, rng: random.Random, rate: float) -> tuple[str, int]:
    """Identity terms swapped for the same form of another group of their category; every term of
    one group in a text goes to the same other group."""
    forms, groups = _identity_forms(), tables()["identity"]
    targets: dict[tuple[str, str], str] = {}
    changed = 0

    def one(match: re.Match) -> str:
        nonlocal changed
        word = match.group()
        found = forms.get(word.lower())
        if found is None or rng.random() >= rate:
            return word
        category, group, place = found
        if (category, group) not in targets:
            targets[category, group] = rng.choice(sorted(g for g in groups[category] if g != group))
        new = _same_case(word, groups[category][targets[category, group]][place])
        changed += new.lower() != word.lower()
        return new

    return WORD.sub(one, text), changed


@dataclass(frozen=True)
class Transform:
    name: str
    kind: str  # character, phonetic, word or counterfactual
    apply: Callable[[str, random.Random, float], tuple[str, int]]
    rate: float  # the default share of eligible words changed
    version: int  # raised whenever the function or its table changes what it writes
    description: str


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("leetspeak", "character", leetspeak, 0.5, 1, "letters written as look-alike digits (a→4, e→3, o→0)"),
        Transform(
            "homoglyphs", "character", homoglyphs, 0.5, 1, "Latin letters swapped for Cyrillic or Greek look-alikes"
        ),
        Transform("separators", "character", separators, 0.5, 1, "a sign between the letters of a word (c.o.n)"),
        Transform("repeats", "character", repeats, 0.5, 1, "a vowel repeated (nuuul)"),
        Transform("accents-strip", "character", accents_strip, 1.0, 1, "accents dropped (é→e, ç→c)"),
        Transform("accents-swap", "character", accents_swap, 1.0, 1, "accents swapped or dropped (é→è/ê/e)"),
        Transform("phonetic", "phonetic", phonetic, 0.5, 1, "another French spelling of the same sounds (é→ez, qu→k)"),
        Transform("sms", "word", sms, 1.0, 1, "French SMS abbreviations (pourquoi→pk, beaucoup→bcp)"),
        Transform("emoji", "word", emoji, 0.3, 1, "an emoji after some words"),
        Transform("spacing", "word", spacing, 0.3, 1, "a space inside a word (con nard)"),
        Transform("counterfactual", "counterfactual", counterfactual, 1.0, 1, "identity terms swapped between groups"),
    )
}


@dataclass(frozen=True)
class Step:
    transform: Transform
    rate: float

    @property
    def spec(self) -> str:
        return f"{self.transform.name}@{self.rate:g}"


def parse_chain(spec: str) -> list[Step]:
    """`leetspeak`, `leetspeak@0.3` or several joined by commas (applied in that order)."""
    steps = []
    for part in (p.strip() for p in spec.split(",")):
        name, _, rate_text = part.partition("@")
        if name not in TRANSFORMS:
            raise ToxbenchError(f"--transform {part!r}: no such transform; known: {', '.join(TRANSFORMS)}")
        transform = TRANSFORMS[name]
        try:
            rate = float(rate_text) if rate_text else transform.rate
        except ValueError:
            rate = -1.0
        if not 0 < rate <= 1:
            raise ToxbenchError(f"--transform {part!r}: the rate after @ is a share of words, above 0 and at most 1")
        steps.append(Step(transform, rate))
    if not steps:
        raise ToxbenchError("--transform: name at least one transform")
    return steps


def chain_name(steps: list[Step]) -> str:
    return "+".join(s.spec for s in steps)


def perturb_text(steps: list[Step], text: str, seed: int, sample_id: str) -> tuple[str, int]:
    """The text through every step in order, and the changes of all steps (a word two steps change counts twice)."""
    changed = 0
    for step in steps:
        rng = random.Random(f"{seed}\0{step.transform.name}\0{sample_id}")
        text, n = step.transform.apply(text, rng, step.rate)
        changed += n
    return text, changed
