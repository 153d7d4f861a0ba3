"""Annotated material that is in no benchmark: what the baseline and fine-tuning may train on.

The 500 human-labelled ToxiFrench comments of `cot/agreement_checking.csv` (label: `annotator's
conclusion`) and the French Jigsaw translations of `cot/subset_jigsaw_annotated.csv` (label: the
Jigsaw benchmark's own rule, toxic when any of the six Jigsaw labels is 1). Every benchmark id and
every text that appears in any benchmark (the same comment can carry another id) is left out, and
each text is kept once, so nothing trained here has seen an evaluation sample. Both files carry
chain-of-thought annotation blocks, kept in `fields` for fine-tuning.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

AGREEMENT = "toxifrench/cot/agreement_checking.csv"
JIGSAW_COT = "toxifrench/cot/subset_jigsaw_annotated.csv"
JIGSAW_BENCHMARK = "toxifrench/benchmark/JigsawBilingualBalanced.csv"
TOXIFRENCH = "toxifrench/benchmark/ToxiFrenchBalanced.csv"
RTPLX_FR = "toxifrench/benchmark/RTP-LX-french.csv"
HATEDAY = "toxifrench/benchmark/HateDay-french.csv"
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
BENCHMARKS = ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr")
FILES = (AGREEMENT, JIGSAW_COT, JIGSAW_BENCHMARK, TOXIFRENCH, RTPLX_FR, HATEDAY)  # what the selection depends on


@dataclass(frozen=True)
class AnnotatedRow:
    id: str
    text: str
    label: int
    source: str  # "agreement" or "jigsaw"
    fields: dict = field(repr=False, compare=False)  # the file's whole row (CoT blocks included)


def read_rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(Path(path).read_text("utf-8"), newline="")))


def annotated_rows(data) -> list[AnnotatedRow]:
    """The annotated rows in file order, without benchmark ids or texts, each text once."""
    from toxbench.data.datasets import load_dataset

    excluded_ids = {r["msg_id"] for r in read_rows(data.path(JIGSAW_BENCHMARK))} | {r["msg_id"] for r in read_rows(data.path(TOXIFRENCH))}
    excluded_texts = {s.text.strip() for name in BENCHMARKS for s in load_dataset(name, data).samples}
    candidates = [AnnotatedRow(r["msg_id"], r["content"], int(float(r["annotator's conclusion"])), "agreement", r) for r in read_rows(data.path(AGREEMENT))]
    candidates += [AnnotatedRow(r["msg_id"], r["content"], int(any(r[c] == "1" for c in JIGSAW_LABELS)), "jigsaw", r) for r in read_rows(data.path(JIGSAW_COT))]
    rows, seen = [], set()
    for row in candidates:
        key = row.text.strip()
        if row.id in excluded_ids or key in excluded_texts or row.id in seen or key in seen:
            continue
        seen |= {row.id, key}
        rows.append(row)
    return rows


def files_identity(data) -> dict[str, str]:
    """The checksums that determine the selection (for cache keys and run identities)."""
    return {rel: data.manifest.get(rel).sha256 for rel in FILES}
