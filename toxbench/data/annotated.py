"""Annotated material that is in no benchmark: what the baseline and fine-tuning may train on.

The 500 human-labelled ToxiFrench comments of `cot/agreement_checking.csv` (label: `annotator's
conclusion`) and the French Jigsaw translations of `cot/subset_jigsaw_annotated.csv` (label: the
Jigsaw benchmark's own rule, toxic when any of the six Jigsaw labels is 1). Left out, so nothing
trained here has seen an evaluation sample: every benchmark id; every text that appears in any
benchmark (the same comment can carry another id); every near copy of a benchmark text (character
5-gram Jaccard >= 0.8 after normalisation, on the French text and, for Jigsaw rows, on the English
original: toxbench.data.near_duplicates); and each text after its first row. Both files carry
chain-of-thought annotation blocks, kept in `fields` for fine-tuning.

The material is mostly translated Jigsaw comments, and mostly toxic ones (`Selection.balance`): the
opposite of the paper's corpus, which is mostly non-toxic. Model cards and the README say so.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from toxbench._util import TABLE_BYTES, csv_uncell, read_user_text

AGREEMENT = "toxifrench/cot/agreement_checking.csv"
JIGSAW_COT = "toxifrench/cot/subset_jigsaw_annotated.csv"
JIGSAW_BENCHMARK = "toxifrench/benchmark/JigsawBilingualBalanced.csv"
TOXIFRENCH = "toxifrench/benchmark/ToxiFrenchBalanced.csv"
RTPLX_FR = "toxifrench/benchmark/RTP-LX-french.csv"
HATEDAY = "toxifrench/benchmark/HateDay-french.csv"
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
BENCHMARKS = ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr")
FILES = (AGREEMENT, JIGSAW_COT, JIGSAW_BENCHMARK, TOXIFRENCH, RTPLX_FR, HATEDAY)  # what the selection depends on
NEAR_COPY_THRESHOLD = 0.8  # the lowest at which every pair these files hold is one comment (README, "Training data")


@dataclass(frozen=True)
class AnnotatedRow:
    id: str
    text: str
    label: int
    source: str  # "agreement", "jigsaw", or "annotated" (an annotation directory)
    fields: dict = field(repr=False, compare=False)  # the file's whole row (CoT blocks included)


def read_rows(path: Path, written_for_people: bool = False) -> list[dict]:
    """A CSV's rows; `written_for_people`: a table toxbench wrote with `csv_for_people`, whose
    formula-like texts get their leading quote back off."""
    rows = list(csv.DictReader(io.StringIO(read_user_text(path, "CSV file", TABLE_BYTES), newline="")))
    if written_for_people:
        rows = [{k: csv_uncell(v) for k, v in row.items()} for row in rows]
    return rows


@dataclass(frozen=True)
class NearCopy:
    """A training row left out because it nearly copies a benchmark sample."""

    row_id: str
    source: str
    dataset: str
    sample_id: str
    similarity: float


@dataclass(frozen=True)
class Selection:
    """The rows kept and why the others were left out."""

    rows: list[AnnotatedRow]
    read: int  # rows in the files
    removed: dict[str, int]  # reason -> rows: benchmark_id, benchmark_text, near_copy, repeated
    near_copies: list[NearCopy]

    def balance(self, sources: tuple[str, ...] | None = None) -> dict[str, dict[int, int]]:
        """source -> {label: rows kept}; by default the release's two files, and annotation
        directories when any row came from one."""
        if sources is None:
            sources = ("agreement", "jigsaw") + (
                ("annotated",) if any(r.source == "annotated" for r in self.rows) else ()
            )
        return {src: {c: sum(r.label == c and r.source == src for r in self.rows) for c in (1, 0)} for src in sources}

    def summary(self) -> dict:
        return {
            "read": self.read,
            "kept": len(self.rows),
            "removed": self.removed,
            "near_copies": [vars(n) for n in self.near_copies],
            "balance": self.balance(),
        }


ANNOTATION_TABLE, ANNOTATION_LABELS = (
    "annotations.csv",
    "labels.csv",
)  # written by `toxbench annotate run` and `annotate merge`


def directory_rows(directory: Path) -> tuple[list[AnnotatedRow], dict[str, int]]:
    """(rows, counts) of an annotation directory: each comment that has a label in its labels.csv
    (the rule's or a human's) with its table row as `fields`; counts say how many had no label."""
    from toxbench.errors import DataError

    directory = Path(directory)
    table, labels = directory / ANNOTATION_TABLE, directory / ANNOTATION_LABELS
    for path, made_by in ((table, "toxbench annotate run"), (labels, "toxbench annotate merge")):
        if not path.is_file():
            raise DataError(f"--annotated {directory}: no {path.name}; it is written by `{made_by}`")
    from toxbench.data.tables import parse_label

    label_of = {}
    for line, r in enumerate(read_rows(labels, written_for_people=True), 2):
        label = parse_label(r.get("label"))
        if label is None or not r.get("msg_id"):
            raise DataError(
                f"{labels}: line {line}: needs a msg_id and a 0/1 label; write it again with `toxbench annotate merge`"
            )
        label_of[r["msg_id"]] = label
    table_rows = read_rows(table, written_for_people=True)
    rows = [
        AnnotatedRow(r["msg_id"], r["content"], label_of[r["msg_id"]], "annotated", r)
        for r in table_rows
        if r["msg_id"] in label_of
    ]
    return rows, {"labelled": len(rows), "unlabelled": len(table_rows) - len(rows)}


def annotated_selection(data, threshold: float = NEAR_COPY_THRESHOLD, directories: tuple[Path, ...] = ()) -> Selection:
    """The annotated rows in file order (the release's files, then each annotation directory),
    without benchmark ids, texts or near copies, each text once."""
    from toxbench.data.datasets import load_dataset
    from toxbench.data.near_duplicates import near_duplicates

    excluded_ids = {r["msg_id"] for r in read_rows(data.path(JIGSAW_BENCHMARK))} | {
        r["msg_id"] for r in read_rows(data.path(TOXIFRENCH))
    }
    benchmark = [(name, s) for name in BENCHMARKS for s in load_dataset(name, data).samples]
    excluded_texts = {s.text.strip() for _, s in benchmark}
    candidates = [
        AnnotatedRow(r["msg_id"], r["content"], int(float(r["annotator's conclusion"])), "agreement", r)
        for r in read_rows(data.path(AGREEMENT))
    ]
    candidates += [
        AnnotatedRow(r["msg_id"], r["content"], int(any(r[c] == "1" for c in JIGSAW_LABELS)), "jigsaw", r)
        for r in read_rows(data.path(JIGSAW_COT))
    ]
    for directory in directories:
        candidates += directory_rows(directory)[0]
    removed = {"benchmark_id": 0, "benchmark_text": 0, "near_copy": 0, "repeated": 0}
    kept, seen = [], set()
    for row in candidates:
        key = row.text.strip()
        reason = (
            "benchmark_id"
            if row.id in excluded_ids
            else "benchmark_text"
            if key in excluded_texts
            else "repeated"
            if row.id in seen or key in seen
            else None
        )
        if reason:
            removed[reason] += 1
            continue
        seen |= {row.id, key}
        kept.append(row)
    probes = [(i, row.text) for i, row in enumerate(kept)] + [
        (i, row.fields["original_text"]) for i, row in enumerate(kept) if row.fields.get("original_text")
    ]
    near: dict[int, NearCopy] = {}
    for match in near_duplicates([t for _, t in probes], [s.text for _, s in benchmark], threshold):
        index = probes[match.probe][0]
        name, sample = benchmark[match.reference]
        if index not in near or match.similarity > near[index].similarity:
            near[index] = NearCopy(kept[index].id, kept[index].source, name, sample.id, round(match.similarity, 4))
    removed["near_copy"] = len(near)
    rows = [row for i, row in enumerate(kept) if i not in near]
    return Selection(rows, len(candidates), removed, [near[i] for i in sorted(near)])


def annotated_rows(data) -> list[AnnotatedRow]:
    """The rows `annotated_selection` keeps."""
    return annotated_selection(data).rows


def files_identity(data) -> dict[str, str]:
    """The checksums that determine the selection (for cache keys and run identities)."""
    return {rel: data.manifest.get(rel).sha256 for rel in FILES}
