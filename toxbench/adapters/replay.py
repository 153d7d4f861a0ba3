"""Replay a published prediction file as if the model had just answered.

The release has two layouts. Legacy files carry the gold `label` next to a `prediction` (float
0./1., sometimes NaN or -1) and join to the dataset by `msg_id`. Newer files are `content, label`
where `label` is the prediction; they join on the text, the k-th copy of a text to the k-th sample
with that text, so duplicate texts are neither merged nor multiplied. Rows that join to nothing,
repeat a sample or disagree on gold are reported, never dropped silently or invented.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from toxbench._util import partial_note
from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.registry import register
from toxbench.data.tables import iter_rows, parse_label
from toxbench.errors import DataError
from toxbench.types import Record

TEXT_COLUMNS = ("content", "original_text", "text")
ID_COLUMNS = ("msg_id", "tweet_id")
PERSPECTIVE_TOXICITY = re.compile(r"['\"]TOXICITY['\"]\s*:\s*([0-9.eE+-]+)")

# File-name tokens: dataset (checked in this order; the first found wins) and prompt configuration.
NAME_DATASETS = (
    ("rtplx", "rtplx-fr"),
    ("hate-day", "hateday-fr"),
    ("hateday", "hateday-fr"),
    ("jigsaw-en", "jigsaw-en"),
    ("jigsawen", "jigsaw-en"),
    ("jigsaw-fr", "jigsaw-fr"),
    ("jigsawfr", "jigsaw-fr"),
    ("tf-fr", "toxifrench"),
)
NAME_PROMPTS = (  # token -> (prompt, shots); the release's ICL runs use the detailed prompt
    ("10shot-5-5", ("detailed", "10")),
    ("4shot-2-2", ("detailed", "4")),
    ("1shot-nt", ("detailed", "1nt")),
    ("1shot-t", ("detailed", "1t")),
    ("simple_prompt", ("simple", "0")),
    ("detailed", ("detailed", "0")),
    ("simple", ("simple", "0")),
)


@dataclass
class ImportReport:
    """What happened when external predictions were joined to a dataset; nothing is dropped silently."""

    source: str
    rows: int = 0
    recorded: int = 0
    unmatched_rows: list[int] = field(default_factory=list)  # line numbers of rows that match no sample
    duplicate_rows: list[int] = field(default_factory=list)  # line numbers of rows for an already-seen sample
    gold_mismatches: list[str] = field(default_factory=list)  # sample ids whose file label differs
    missing_samples: int = 0  # dataset samples the file has no row for
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.unmatched_rows or self.duplicate_rows or self.gold_mismatches or self.missing_samples)

    def problems(self) -> list[str]:
        out = []
        if self.unmatched_rows:
            out.append(f"{len(self.unmatched_rows)} rows match no sample (lines {_lines(self.unmatched_rows)})")
        if self.duplicate_rows:
            out.append(
                f"{len(self.duplicate_rows)} rows repeat a sample already seen (lines {_lines(self.duplicate_rows)}; first kept)"
            )
        if self.gold_mismatches:
            out.append(
                f"{len(self.gold_mismatches)} rows carry a gold label that differs from the dataset's (ids {', '.join(self.gold_mismatches[:5])})"
            )
        if self.missing_samples:
            out.append(partial_note(self.recorded, self.recorded + self.missing_samples))
        return out


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:5])
    return shown + (", …" if len(numbers) > 5 else "")


@dataclass(frozen=True)
class PublishedName:
    """What a release file name says: `[model]-[prompt or config]-[dataset].csv`."""

    stem: str
    dataset: str | None
    model: str
    prompt: str | None
    shots: str | None


def _cut(stem: str, token: str) -> str | None:
    """stem without `token` when it stands between separators (-, _ or the ends), else None."""
    match = re.search(rf"(^|[-_]){re.escape(token)}($|[-_])", stem)
    if not match:
        return None
    return (stem[: match.start()] + match.group(1) + stem[match.end() :]).strip("-_")


def parse_published_name(stem: str) -> PublishedName:
    rest, dataset = stem, None
    for token, name in NAME_DATASETS:
        cut = _cut(rest, token)
        if cut is not None:
            rest, dataset = cut, name
            break
    if rest.startswith("eng-"):
        rest = rest[4:]
        dataset = dataset or "jigsaw-en"  # the release marks its English Jigsaw runs with eng-
    for token, _name in NAME_DATASETS:  # a second dataset token (e.g. -rtplx-tf-fr) is dropped too
        cut = _cut(rest, token)
        if cut is not None:
            rest = cut
    prompt = shots = None
    for token, (p, k) in NAME_PROMPTS:
        cut = _cut(rest, token)
        if cut is not None:
            rest, prompt, shots = cut, p, k
            break
    model = re.sub(r"[-_]{2,}", "-", rest).strip("-_") or stem
    return PublishedName(stem=stem, dataset=dataset, model=model, prompt=prompt, shots=shots)


def parse_prediction(value: str | None) -> int | None:
    """1/0 as the release wrote them (1, 1.0, 0.); NaN, -1, empty and text give None."""
    return None if value is None else parse_label(value)


def _file_scores(values: list[str]) -> list[float | None] | None:
    """Per-row P(toxic) when the file's score column holds real probabilities, else None.

    Real means: numbers in [0, 1] that are not all 0/1 (those are hard labels), or Perspective's
    attribute dicts, whose TOXICITY is its probability. Text answers give no scores."""
    numbers: list[float] = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            break
    else:
        if numbers and all(0.0 <= x <= 1.0 for x in numbers) and not set(numbers) <= {0.0, 1.0}:
            return list(numbers)
        return None
    found = [PERSPECTIVE_TOXICITY.search(v) for v in values]
    if all(found):
        return [float(m.group(1)) for m in found]
    return None


def score_decides_label(records: list[Record]) -> bool:
    """Whether a replayed file's labels could come from its recorded score alone. Not for the
    release's Perspective files: their label is any attribute at 0.5 (the release's rule), their
    recorded score TOXICITY alone, so a cut on it says nothing about how the label was set."""
    return not (records and PERSPECTIVE_TOXICITY.search(records[0].raw or ""))


@register("replay")
class ReplayAdapter(Adapter):
    """Predictions read from a file instead of asked of a model."""

    kind = "replay"
    capabilities = Capabilities(concurrency=1, batching=True, scores=True)
    description = "published or exported prediction files (CSV), joined to a dataset"

    def __init__(self, path: Path, sha256: str) -> None:
        """`--model-arg` keys of `replay:`.

        Args:
            path: The published predictions file being replayed (set by the importer).
            sha256: Its checksum, part of the run's identity (set by the importer).
        """
        self.path = Path(path)
        self.sha256 = sha256
        self.rows = list(iter_rows(self.path))

    def identity(self) -> dict:
        return self.params(self.path.name, self.sha256)

    @staticmethod
    def params(filename: str, sha256: str) -> dict:
        """The run-id parameters of a replayed file, known without reading it."""
        return {"file": filename, "sha256": sha256}

    @property
    def columns(self) -> list[str]:
        return list(self.rows[0][1].keys()) if self.rows else []

    @property
    def layout(self) -> str:
        if "prediction" in self.columns:
            return "legacy"
        if "label" in self.columns:
            return "newer"
        raise DataError(f"{self.path}: neither a `prediction` nor a `label` column; not a prediction file")

    def replay(self, samples: list) -> tuple[list[Record], ImportReport]:
        """A record for every row that joins to a sample, and the report of the join."""
        report = ImportReport(source=self.path.name, rows=len(self.rows))
        if not self.rows:
            report.notes.append("the file has no rows")
            report.missing_samples = len(samples)
            return [], report
        layout = self.layout
        pred_col, gold_col = ("prediction", "label") if layout == "legacy" else ("label", None)
        by_id = {s.id: s for s in samples}
        id_col = next((c for c in ID_COLUMNS if c in self.columns and self.rows[0][1][c] in by_id), None)
        text_col = next((c for c in TEXT_COLUMNS if c in self.columns), None)
        if id_col is None and text_col is None:
            raise DataError(
                f"{self.path}: no id ({', '.join(ID_COLUMNS)}) or text ({', '.join(TEXT_COLUMNS)}) column to join on"
            )
        by_text: dict[str, list] = defaultdict(list)
        if id_col is None:
            for s in samples:
                by_text[s.text].append(s)
        taken: dict[str, int] = defaultdict(int)
        text_columns = set(TEXT_COLUMNS) | set(ID_COLUMNS) | {"id", gold_col}
        output_columns = [c for c in self.columns if c not in text_columns]
        score_col = "toxicity_score" if "toxicity_score" in self.columns else None
        scores = _file_scores([row.get(score_col) or "" for _, row in self.rows]) if score_col else None

        out: list[Record] = []
        seen: set[str] = set()
        for index, (line, row) in enumerate(self.rows):
            if id_col is not None:
                sample = by_id.get(row.get(id_col, ""))
            else:
                text = row.get(text_col, "")
                candidates = by_text.get(text, ())
                sample = candidates[taken[text]] if taken[text] < len(candidates) else None
                taken[text] += 1
                if sample is None and candidates:
                    report.duplicate_rows.append(line)
                    continue
            if sample is None:
                report.unmatched_rows.append(line)
                continue
            if sample.id in seen:
                report.duplicate_rows.append(line)
                continue
            seen.add(sample.id)
            if gold_col is not None and parse_label(row.get(gold_col)) != sample.label:
                report.gold_mismatches.append(sample.id)
            pred = parse_prediction(row.get(pred_col))
            raw = orjson.dumps({c: row.get(c) for c in output_columns}).decode()
            out.append(
                Record(
                    sample_id=sample.id,
                    pred=pred,
                    status="ok" if pred is not None else "unparseable",
                    score=scores[index] if scores else None,
                    raw=raw,
                    attempts=0,
                    gold=sample.label,
                )
            )
        report.recorded = len(out)
        report.missing_samples = len(samples) - len(out)
        return out, report
