"""Render a sample into chat messages exactly as the ToxiFrench release did, reproducibly.

user message = template + ` « {text} »` + `\\n{question}\\n`. Few-shot runs use the template's
few-shot variant, whose `<insert here>` slot receives the examples, each formatted as
`{message_label}\\n« {example} »\\n{question}\\n{label}` and joined by a blank line. Examples come
from the release's fixed lists (`benchmark_config.json`); which ones and in what order is drawn
with a recorded seed, so a sample's messages are byte-identical across re-runs.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from toxbench.data.datadir import DataDir
from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHOTS: dict[str, tuple[int, int]] = {"0": (0, 0), "1t": (1, 0), "1nt": (0, 1), "4": (2, 2), "10": (5, 5)}
SLOT = "<insert here>"
CONFIG = "toxifrench/benchmark_config.json"


@dataclass(frozen=True)
class LanguagePrompt:
    system: str
    template: str
    fewshot_template: str | None
    question: str
    message_label: str
    labels: tuple[str, str]  # (non-toxic, toxic)


@dataclass(frozen=True)
class PromptSet:
    name: str
    description: str
    languages: dict[str, LanguagePrompt]


def prompt_names() -> list[str]:
    return sorted(f.name[:-5] for f in resources.files("toxbench.prompts").iterdir() if f.name.endswith(".toml"))


def _read(ref: str, data: DataDir, base: Path | None) -> str:
    if ref.startswith("data:"):
        return data.path(ref[5:]).read_text("utf-8")
    if ref.startswith("package:"):
        return resources.files("toxbench.prompts").joinpath(ref[8:]).read_text("utf-8")
    path = (base / ref) if base else Path(ref)
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise ToxbenchError(f"{path}: cannot read prompt file ({exc.strerror}); fix the path in the prompt's TOML") from None


def load_prompt_set(name: str, data: DataDir) -> PromptSet:
    """A shipped prompt set by name (`simple`, `detailed`) or a user's TOML file by path."""
    if name.endswith(".toml"):
        path = Path(name)
        try:
            text, base = path.read_text("utf-8"), path.parent
        except OSError:
            raise ToxbenchError(f"{path}: no such prompt file") from None
    elif name in prompt_names():
        text, base = resources.files("toxbench.prompts").joinpath(f"{name}.toml").read_text("utf-8"), None
    else:
        raise ToxbenchError(f"unknown prompt {name!r}; known: {', '.join(prompt_names())}, or a path to a .toml prompt file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ToxbenchError(f"{name}: not valid TOML ({exc})") from None
    languages = {}
    for lang, spec in raw.items():
        if not isinstance(spec, dict):
            continue
        try:
            languages[lang] = LanguagePrompt(
                system=_read(spec["system"], data, base),
                template=_read(spec["template"], data, base),
                fewshot_template=_read(spec["fewshot_template"], data, base) if spec.get("fewshot_template") else None,
                question=spec["question"],
                message_label=spec["message_label"],
                labels=tuple(spec["labels"]),
            )
        except KeyError as exc:
            raise ToxbenchError(f"{name}: language [{lang}] lacks {exc.args[0]!r}; see toxbench/prompts/detailed.toml for the shape") from None
    return PromptSet(Path(name).stem, raw.get("description", ""), languages)


def release_examples(data: DataDir) -> dict[int, list[str]]:
    """The release's fixed few-shot lists: {1: toxic examples, 0: non-toxic examples}."""
    examples = json.loads(data.path(CONFIG).read_text("utf-8"))["global"]["few_shot_examples"]
    return {1: list(examples["toxic"]), 0: list(examples["non_toxic"])}


@dataclass(frozen=True)
class Renderer:
    """Turns a text into the messages of one prompt configuration."""

    prompt: str
    lang: str
    shots: str
    seed: int
    system: str
    template: str
    question: str
    labels: tuple[str, str] = ("non-toxique", "toxique")

    def messages(self, text: str) -> list[dict[str, str]]:
        user = self.template + f" « {text} »" + f"\n{self.question}\n"
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def identity(self) -> dict:
        """What the prompt contributes to a run's id: its name and the exact rendered frame."""
        frame = hashlib.sha256((self.system + "\0" + self.template + "\0" + self.question).encode("utf-8")).hexdigest()
        return {"prompt": self.prompt, "lang": self.lang, "shots": self.shots, "shots_seed": self.seed, "prompt_sha256": frame}


def make_renderer(prompt: str, lang: str, shots: str, seed: int, data: DataDir) -> Renderer:
    prompt_set = load_prompt_set(prompt, data)
    if lang not in prompt_set.languages:
        raise ToxbenchError(f"prompt {prompt_set.name!r} has no {lang!r} version; it has {', '.join(prompt_set.languages)}")
    if shots not in SHOTS:
        raise ToxbenchError(f"unknown shot configuration {shots!r}; use one of {', '.join(SHOTS)}")
    p = prompt_set.languages[lang]
    n_toxic, n_clean = SHOTS[shots]
    template = p.template
    if n_toxic or n_clean:
        if not p.fewshot_template or SLOT not in p.fewshot_template:
            raise ToxbenchError(f"prompt {prompt_set.name!r} ({lang}) has no few-shot template with an {SLOT!r} slot; use --prompt detailed or --shots 0")
        pool = release_examples(data)
        rng = random.Random(seed)
        chosen = [(t, 1) for t in rng.sample(pool[1], n_toxic)] + [(t, 0) for t in rng.sample(pool[0], n_clean)]
        rng.shuffle(chosen)
        blocks = [f"{p.message_label}\n« {t} »\n{p.question}\n{p.labels[label]}" for t, label in chosen]
        template = p.fewshot_template.replace(SLOT, "\n\n".join(blocks))
    return Renderer(prompt_set.name, lang, shots, seed, p.system, template, p.question, p.labels)
