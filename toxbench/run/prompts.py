"""Render a sample into chat messages byte for byte as the ToxiFrench release did, reproducibly.

As the release's `benchmark.py` does, the system prompt and the template are read and `.strip()`ped,
and the user message is `{template} « {text} »\\n{question}\\n`. Few-shot runs use the template's
few-shot variant, whose `<insert here>` slot receives the examples, each formatted as
`{message_label}\\n« {example} »\\n{question}\\n{label}` and joined by a blank line.

Which examples: with the release's pool (`first`, the default) the first k of each class list in
`benchmark_config.json`, toxic ones then non-toxic ones, then shuffled; the release shuffled without
a seed, toxbench with the run's recorded seed, so a sample's messages are identical across re-runs.
`random` (for sensitivity studies) also draws which examples with that seed. The English few-shot
template is a toxbench extension: the release ran few-shot prompts in French only.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictStr

from toxbench._util import confined, read_toml, read_user_text, validate
from toxbench.data.datadir import DataDir
from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SHOTS: dict[str, tuple[int, int]] = {"0": (0, 0), "1t": (1, 0), "1nt": (0, 1), "4": (2, 2), "10": (5, 5)}
SHOT_POOLS = ("first", "random")  # first: the release's first k of each class; random: drawn with the seed
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


class LanguageSection(BaseModel):
    """One language's table of a prompt TOML, checked before any file it names is read."""

    model_config = ConfigDict(extra="forbid")

    system: StrictStr
    template: StrictStr
    fewshot_template: StrictStr | None = None
    question: StrictStr
    message_label: StrictStr
    labels: tuple[StrictStr, StrictStr]


def _read(ref: str, data: DataDir, base: Path | None, where: str) -> str:
    """The text a prompt TOML names: `data:` a pinned file of the data directory, `package:` a file
    shipped with toxbench, else a file inside the TOML's own folder. An absolute path or `..` is
    refused: a prompt file someone shared must not send ~/.ssh/... to an API."""
    if ref.startswith("data:"):
        return read_user_text(data.path(ref[5:]), "prompt file")
    if ref.startswith("package:"):
        package = Path(str(resources.files("toxbench.prompts")))
        return read_user_text(confined(package, ref[8:], f"{where}: package file"), "prompt file")
    if base is None:
        raise ToxbenchError(f"{where}: {ref!r}: a shipped prompt names data: or package: files only")
    return read_user_text(confined(base, ref, f"{where}: file"), "prompt file")


def check_prompt(name: str) -> None:
    """Refuse a prompt that is neither shipped nor a readable TOML file: called before a model loads,
    so a typo costs no loading time."""
    if name.endswith(".toml"):
        if not Path(name).exists():
            raise ToxbenchError(f"{name}: no such prompt file")
    elif name not in prompt_names():
        raise ToxbenchError(
            f"unknown prompt {name!r}; known: {', '.join(prompt_names())}, or a path to a .toml prompt file"
        )


def load_prompt_set(name: str, data: DataDir) -> PromptSet:
    """A shipped prompt set by name (`simple`, `detailed`) or a user's TOML file by path."""
    check_prompt(name)
    if name.endswith(".toml"):
        raw, base = read_toml(Path(name), "prompt file"), Path(name).resolve().parent
    else:
        raw, base = tomllib.loads(resources.files("toxbench.prompts").joinpath(f"{name}.toml").read_text("utf-8")), None
    description = raw.pop("description", "")
    if not isinstance(description, str):
        raise ToxbenchError(f"{name}: description: give a text (see toxbench/prompts/detailed.toml for the shape)")
    languages = {}
    for lang, spec in raw.items():
        if not isinstance(spec, dict):
            raise ToxbenchError(
                f"{name}: {lang}: not a language table like [fr]; see toxbench/prompts/detailed.toml for the shape"
            )
        section = validate(LanguageSection, spec, f"{name}: [{lang}]")
        where = f"{name}: [{lang}]"
        languages[lang] = LanguagePrompt(
            system=_read(section.system, data, base, where),
            template=_read(section.template, data, base, where),
            fewshot_template=_read(section.fewshot_template, data, base, where) if section.fewshot_template else None,
            question=section.question,
            message_label=section.message_label,
            labels=section.labels,
        )
    return PromptSet(Path(name).stem, description, languages)


def run_language(prompt: str, requested: str | None, sample_langs: list[str], data: DataDir) -> str:
    """A run's prompt language: the one asked for, else the samples' most common language where the
    prompt has it, else French (the release's language)."""
    if requested:
        return requested
    lang = Counter(sample_langs).most_common(1)[0][0] if sample_langs else "fr"
    return lang if lang in load_prompt_set(prompt, data).languages else "fr"


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
    shot_pool: str
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
        return {
            "prompt": self.prompt,
            "lang": self.lang,
            "shots": self.shots,
            "shots_seed": self.seed,
            "shot_pool": self.shot_pool,
            "prompt_sha256": frame,
        }


def choose_examples(
    pool: dict[int, list[str]], n_toxic: int, n_clean: int, shot_pool: str, seed: int
) -> list[tuple[str, int]]:
    """(text, label) of the few-shot examples in prompt order: the release's first k of each class
    (or k drawn with the seed), toxic then non-toxic, shuffled with the seed."""
    rng = random.Random(seed)
    if shot_pool == "first":
        toxic, clean = pool[1][:n_toxic], pool[0][:n_clean]
    else:
        toxic, clean = rng.sample(pool[1], n_toxic), rng.sample(pool[0], n_clean)
    chosen = [(t, 1) for t in toxic] + [(t, 0) for t in clean]
    rng.shuffle(chosen)
    return chosen


def make_renderer(prompt: str, lang: str, shots: str, seed: int, data: DataDir, shot_pool: str = "first") -> Renderer:
    prompt_set = load_prompt_set(prompt, data)
    if lang not in prompt_set.languages:
        raise ToxbenchError(
            f"prompt {prompt_set.name!r} has no {lang!r} version; it has {', '.join(prompt_set.languages)}"
        )
    if shots not in SHOTS:
        raise ToxbenchError(f"unknown shot configuration {shots!r}; use one of {', '.join(SHOTS)}")
    if shot_pool not in SHOT_POOLS:
        raise ToxbenchError(
            f"--shot-pool {shot_pool!r}: use first (the release's examples) or random (drawn with --seed)"
        )
    p = prompt_set.languages[lang]
    n_toxic, n_clean = SHOTS[shots]
    template = p.template.strip()
    if n_toxic or n_clean:
        if not p.fewshot_template or SLOT not in p.fewshot_template:
            raise ToxbenchError(
                f"prompt {prompt_set.name!r} ({lang}) has no few-shot template with an {SLOT!r} slot; use --prompt detailed or --shots 0"
            )
        chosen = choose_examples(release_examples(data), n_toxic, n_clean, shot_pool, seed)
        blocks = [f"{p.message_label}\n« {t} »\n{p.question}\n{p.labels[label]}" for t, label in chosen]
        template = p.fewshot_template.strip().replace(SLOT, "\n\n".join(blocks))
    return Renderer(prompt_set.name, lang, shots, seed, shot_pool, p.system.strip(), template, p.question, p.labels)
