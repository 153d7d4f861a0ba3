"""The release's chain-of-thought annotation steps as data (`cot_steps.toml`): each step's system
prompt (a header file of the data directory, byte-identical to the release's), its instruction, and
which earlier blocks it is shown; and the user message a step sends for one comment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import tomllib

from toxbench.errors import ToxbenchError

HEADERS_DIR = "toxifrench/cot_headers"
_TABLE = Path(__file__).with_name("cot_steps.toml")


@dataclass(frozen=True)
class Step:
    key: str
    """The step's column in the release's layout (explication, ton, ..., conclusion)."""
    name: str
    """The release's name for the step: the heading its block gets in later steps' messages."""
    system: str
    """The system prompt: the header file's text."""
    instruction: str
    """The release's closing instruction, after the blocks."""
    sees: tuple[str, ...]
    """The blocks shown to the step, in order: "message" is the comment itself."""
    optional: bool = False

    def identity(self) -> str:
        """sha256 of everything that determines the step's request but the comment and its blocks."""
        table = _table()
        text = "\x1f".join((self.system, table["opening"], table["block"], self.instruction, *self.sees))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@cache
def _table() -> dict:
    with open(_TABLE, "rb") as fh:
        return tomllib.load(fh)


def categories() -> tuple[str, ...]:
    """The closed list of categories of the category step, in the header's order."""
    return tuple(_table()["categories"])


def step_keys(certainty: bool = False) -> tuple[str, ...]:
    return tuple(s["key"] for s in _table()["step"] if certainty or not s.get("optional"))


def load_steps(data, certainty: bool = False) -> list[Step]:
    """The steps in the release's order, their system prompts read from the data directory;
    certainty (optional in the release) only when asked."""
    steps = []
    for entry in _table()["step"]:
        if entry.get("optional") and not certainty:
            continue
        path = data.path(f"{HEADERS_DIR}/{entry['header']}")
        try:
            system = path.read_text("utf-8")
        except OSError as exc:
            raise ToxbenchError(
                f"{path}: cannot read the {entry['key']} step's header ({exc.strerror}); run `toxbench data fetch`"
            ) from None
        steps.append(
            Step(
                entry["key"],
                entry["name"],
                system,
                entry["instruction"],
                tuple(entry["sees"]),
                bool(entry.get("optional")),
            )
        )
    return steps


def user_message(step: Step, message: str, blocks: dict[str, str], names: dict[str, str]) -> str:
    """The release's user message: the opening, then `**{name}** :\\n« {value} »\\n\\n` for the
    comment and each earlier block the step sees, then the instruction. `names`: step key -> name."""
    table = _table()
    parts = [table["opening"]]
    for key in step.sees:
        name, value = (table["message_name"], message) if key == "message" else (names[key], blocks[key])
        parts.append(table["block"].format(name=name, value=value))
    return "".join(parts) + step.instruction
