"""Chain-of-thought SFT examples from the annotated files (the paper's Section 5 format).

prompt     = "Message:\\n{text}\\n\\nAnalyse:\\n"
completion = one `<think>`...`</think>` block per reasoning field (explanation, tone, intention,
             category, score by default), then the final question and `Conclusion : oui|non`.
The conclusion is the gold label (human for the ToxiFrench agreement set, the Jigsaw rule for the
Jigsaw subset); `drop_disagreeing` leaves out rows whose annotated CoT concluded otherwise, so the
reasoning never argues against its own answer. Only rows in no benchmark are used
(toxbench.data.annotated). The validation split is stratified and seeded; only the training split
is oversampled to exactly 1:1 (the minority class repeated whole, then its first rows to fill).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from toxbench.data.annotated import AnnotatedRow, annotated_selection
from toxbench.errors import ToxbenchError

PROMPT_TEMPLATE = "Message:\n{text}\n\nAnalyse:\n"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
FINAL_QUESTION = "Question : ce message est-il toxique ?"
CONCLUSION = {1: "Conclusion : oui", 0: "Conclusion : non"}
# block name -> (column in the annotated files, heading written in the block)
BLOCKS = {
    "explanation": ("explication", "Explication"),
    "tone": ("ton", "Ton"),
    "intention": ("intention", "Intention"),
    "category": ("categorie", "Catégorie"),
    "labels": ("labels", "Labels"),
    "score": ("toxicite_score", "Score"),
}
DEFAULT_BLOCKS = ("explanation", "tone", "intention", "category", "score")
_ANNOTATED_CONCLUSION = re.compile(r"([01])(?:\.0)?\s*$")


class CotDataSettings(BaseModel):
    """How examples are built; stored beside the data so a training run records it."""

    model_config = ConfigDict(extra="forbid")

    blocks: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKS))
    sources: list[str] = Field(default_factory=lambda: ["agreement", "jigsaw"])
    validation_fraction: float = 0.1
    seed: int = 42
    oversample: bool = True
    drop_disagreeing: bool = False
    max_examples: int | None = None  # a seeded, stratified subset of the training split (small CPU runs)
    annotated: list[str] = Field(
        default_factory=list
    )  # annotation directories (`toxbench annotate`), read as the source "annotated"


@dataclass(frozen=True)
class CotExample:
    id: str
    prompt: str
    completion: str
    label: int
    source: str


def build_completion(fields: dict, label: int, blocks: list[str] | tuple[str, ...]) -> str:
    parts = []
    for name in blocks:
        column, heading = BLOCKS[name]
        parts.append(f"{THINK_OPEN}\n{heading} :\n{fields[column].strip()}\n{THINK_CLOSE}\n")
    return "".join(parts) + f"{FINAL_QUESTION}\n{CONCLUSION[label]}"


def make_example(row: AnnotatedRow, blocks) -> CotExample:
    return CotExample(
        row.id,
        PROMPT_TEMPLATE.format(text=row.text),
        build_completion(row.fields, row.label, blocks),
        row.label,
        row.source,
    )


def annotated_conclusion(row: AnnotatedRow) -> int | None:
    match = _ANNOTATED_CONCLUSION.search(row.fields.get("conclusion", "").strip())
    return int(match.group(1)) if match else None


def stratified_split(items: list, labels: list[int], fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): each class shuffled with the seed, `fraction` of it (rounded) held out."""
    rng = random.Random(seed)
    train, validation = [], []
    for cls in sorted(set(labels)):
        members = [x for x, y in zip(items, labels) if y == cls]
        rng.shuffle(members)
        k = round(len(members) * fraction)
        validation += members[:k]
        train += members[k:]
    rng.shuffle(train)
    rng.shuffle(validation)
    return train, validation


def oversample(items: list, labels: list[int]) -> list:
    """Exactly 1:1: the minority class repeated whole as often as it fits, then its first rows to fill."""
    by_class = {c: [x for x, y in zip(items, labels) if y == c] for c in (0, 1)}
    if not by_class[0] or not by_class[1]:
        raise ToxbenchError("oversampling needs examples of both classes")
    major, minor = (0, 1) if len(by_class[0]) >= len(by_class[1]) else (1, 0)
    need = len(by_class[major])
    repeated = by_class[minor] * (need // len(by_class[minor])) + by_class[minor][: need % len(by_class[minor])]
    return by_class[major] + repeated


def build_splits(data, settings: CotDataSettings) -> tuple[list[CotExample], list[CotExample], dict]:
    """(train, validation, stats) from the data directory."""
    unknown = [b for b in settings.blocks if b not in BLOCKS]
    if unknown:
        raise ToxbenchError(f"unknown CoT block(s) {unknown}: choose from {', '.join(BLOCKS)}")
    selection = annotated_selection(data, directories=tuple(Path(d) for d in settings.annotated))
    sources = set(settings.sources) | ({"annotated"} if settings.annotated else set())
    rows = [r for r in selection.rows if r.source in sources]
    needed = [BLOCKS[b][0] for b in settings.blocks]
    incomplete = [
        r for r in rows if r.source == "annotated" and not all((r.fields.get(c) or "").strip() for c in needed)
    ]
    rows = [r for r in rows if r not in incomplete]  # a comment whose pipeline left a block empty teaches no reasoning
    disagreeing = [r for r in rows if annotated_conclusion(r) not in (None, r.label)]
    if settings.drop_disagreeing:
        rows = [r for r in rows if r not in disagreeing]
    examples = [make_example(r, settings.blocks) for r in rows]
    train, validation = stratified_split(
        examples, [e.label for e in examples], settings.validation_fraction, settings.seed
    )
    if settings.max_examples:
        train, _ = stratified_split(
            train, [e.label for e in train], 1 - settings.max_examples / max(len(train), 1), settings.seed
        )
        validation = validation[: max(2, settings.max_examples // 4)]
    before = {c: sum(e.label == c for e in train) for c in (0, 1)}
    if settings.oversample:
        train = oversample(train, [e.label for e in train])
        random.Random(settings.seed).shuffle(train)
    stats = {
        "rows": len(rows),
        "annotated_incomplete": len(incomplete),
        "disagreeing_cot": len(disagreeing),
        "dropped_disagreeing": settings.drop_disagreeing,
        "train_before_oversampling": before,
        "train": {c: sum(e.label == c for e in train) for c in (0, 1)},
        "validation": {c: sum(e.label == c for e in validation) for c in (0, 1)},
        "balance_note": balance_note(before),
        "selection": selection.summary(),
    }
    return train, validation, stats


def balance_note(before: dict) -> str:
    """What a model card says about the class balance of its training split."""
    toxic, clean = before.get(1, 0), before.get(0, 0)
    return (
        f"training split before oversampling: {toxic} toxic, {clean} non-toxic; the material is mostly translated Jigsaw "
        "toxic comments, the opposite balance of the paper's corpus (mostly non-toxic forum messages)"
    )


def write_splits(
    out: Path, train: list[CotExample], validation: list[CotExample], settings: CotDataSettings, stats: dict
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, examples in (("train", train), ("validation", validation)):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in examples)
    (out / "settings.json").write_text(
        json.dumps({"settings": settings.model_dump(), "stats": stats}, indent=2, ensure_ascii=False)
    )


def read_split(path: Path) -> list[CotExample]:
    examples = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                examples.append(CotExample(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ToxbenchError(
                    f"{path}, line {lineno}: not a CoT example ({exc}); rebuild it with `toxbench finetune data`"
                ) from None
    return examples
