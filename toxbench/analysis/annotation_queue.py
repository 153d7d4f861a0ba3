"""What humans must label after the high-confidence rule, and their labels merged back by id (the
ToxiFrench paper's Section 3.2).

- The table: an annotation directory (its `annotations.csv`) or any CSV/JSONL in the release's
  layout (`msg_id`, `content`, the model's `conclusion` 0/1 and `note` 0-10).
- The rule covers a comment when the model concluded non-toxic or scored below the threshold; a
  comment with neither field readable is never covered. Comments whose pipeline has not finished
  (a block pending, an error or a refusal) are neither covered nor queued: the queue says how many
  and `toxbench annotate run` finishes them.
- Priority: the release ordered its annotation queue by moderation metadata as weak signals
  (PreProcessing/prioritize_weak_signals.py: a banned author weighs 1 + 10, a deleted message
  1 + 3). Where the table has `banned` / `deleted` columns the queue is sorted by that weight, then
  by the model's score (highest first), then by table order. The release's hour-of-day weighting
  served its sampling of 2M messages and is not used to order a queue.
- Merging: a labelled copy of the queue (its `label` column filled with 0/1) becomes the
  directory's `labels.csv` (msg_id, label, source = rule | human) together with the rule's labels;
  `toxbench finetune data --annotated DIR` reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from toxbench._util import csv_for_people, csv_uncell
from toxbench.analysis.agreement import DEFAULT_THRESHOLD
from toxbench.errors import DataError

TABLE_FILE = "annotations.csv"
LABELS_FILE = "labels.csv"
WEAK_SIGNALS = {"banned": 10.0, "deleted": 3.0}  # the release's LAMBDA_BANNED, LAMBDA_DELETED
UNFINISHED = ("pending", "error", "refused")


def table_path(source: str | Path) -> Path:
    """An annotation directory's table, or the file itself."""
    path = Path(source)
    if path.is_dir():
        table = path / TABLE_FILE
        if not table.is_file():
            raise DataError(
                f"{path}: no {TABLE_FILE}; give a directory written by `toxbench annotate run`, or a CSV/JSONL table"
            )
        return table
    if not path.is_file():
        raise DataError(f"{path}: no such file or directory; give an annotation directory or a CSV/JSONL table")
    return path


def _number(value, path: Path, line: int, column: str) -> float | None:
    """A cell as a number; an empty cell is None (a block not read), anything else not a number
    is a one-line error naming the line."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"{path}: line {line}: {column} = {value!r} is not a number; fix it, or empty it if the model gave none"
        ) from None
    return None if math.isnan(number) else number


@dataclass(frozen=True)
class Decision:
    """One comment under the rule."""

    id: str
    row: dict
    line: int
    covered: bool  # auto-labelled non-toxic
    unfinished: bool  # the pipeline has not finished this comment
    unread: bool  # finished, but neither the conclusion nor the score could be read
    score: float | None
    priority: float


def unfinished(row: dict) -> bool:
    return any(part.rsplit(": ", 1)[-1] in UNFINISHED for part in (row.get("status") or "").split("; "))


def decide(
    path: Path, threshold: float = DEFAULT_THRESHOLD, conclusion_col: str = "conclusion", score_col: str = "note"
) -> list[Decision]:
    """Every comment of the table under the rule, in table order."""
    from toxbench.data.tables import iter_rows

    decisions, seen = [], {}
    ours = path.name == TABLE_FILE  # written by `annotate run` for people: formula-like texts carry a leading quote
    for line, row in iter_rows(path):
        if ours:
            row = {k: csv_uncell(v) if isinstance(v, str) else v for k, v in row.items()}
        for column in (conclusion_col, score_col):
            if column not in row:
                raise DataError(
                    f"{path}: no column {column!r} (columns: {', '.join(row)}); name the model's columns (--conclusion-col, --score-col)"
                )
        cid = str(row.get("msg_id") or f"line {line}")
        if cid in seen:
            raise DataError(
                f"{path}: line {line}: msg_id {cid!r} already on line {seen[cid]}; each comment must appear once"
            )
        seen[cid] = line
        conclusion, score = (
            _number(row[conclusion_col], path, line, conclusion_col),
            _number(row[score_col], path, line, score_col),
        )
        if conclusion not in (None, 0.0, 1.0):
            raise DataError(
                f"{path}: line {line}: {conclusion_col} = {row[conclusion_col]!r} is not 0 or 1; fix or empty it"
            )
        covered = conclusion == 0.0 or (score is not None and score < threshold)
        weight = math.prod(1 + w * (_number(row.get(c), path, line, c) or 0.0) for c, w in WEAK_SIGNALS.items())
        late = unfinished(row)
        decisions.append(
            Decision(
                cid,
                row,
                line,
                covered and not late,
                late,
                not late and conclusion is None and score is None,
                score,
                weight,
            )
        )
    return decisions


def queue(decisions: list[Decision]) -> list[Decision]:
    """The comments humans must label, most urgent first."""
    todo = [d for d in decisions if not d.covered and not d.unfinished]
    return sorted(todo, key=lambda d: (-d.priority, -(d.score if d.score is not None else math.inf), d.line))


def reason(decision: Decision) -> str:
    row = decision.row
    if (row.get("status") or "ok") != "ok":
        return f"not read: {row['status']}"
    return f"model concluded toxic, score {row.get('note') or '?'}"


def queue_table(decisions: list[Decision], extra: tuple[str, ...] = ("deleted", "banned")) -> str:
    """The queue as CSV: an empty `label` column for humans, then why each comment is there."""
    present = [c for c in extra if any(c in d.row for d in decisions)]
    return csv_for_people(
        ["msg_id", "content", "label", "rank", "priority", "reason", *present],
        (
            [
                d.id,
                d.row.get("content", ""),
                "",
                rank,
                f"{d.priority:g}",
                reason(d),
                *[d.row.get(c, "") for c in present],
            ]
            for rank, d in enumerate(decisions, 1)
        ),
    )


def read_human_labels(path: Path, known: set[str], label_col: str = "label") -> tuple[dict[str, int], int]:
    """(msg_id -> 0/1, rows still unlabelled) from a labelled queue; an unknown id, a repeated id
    or a label other than 0/1 is a one-line error naming the line."""
    from toxbench.data.tables import iter_rows, parse_label

    labels, seen, blank = {}, {}, 0
    for line, row in iter_rows(path):
        for column in ("msg_id", label_col):
            if column not in row:
                raise DataError(
                    f"{path}: no column {column!r} (columns: {', '.join(row)}); label the queue's `label` column (or name it with --label-col)"
                )
        cid = csv_uncell(str(row["msg_id"]))  # as the queue wrote it, or as a spreadsheet saved it
        if cid not in known:
            raise DataError(
                f"{path}: line {line}: msg_id {cid!r} is not in the annotation table; merge labels into the directory they came from"
            )
        if cid in seen:
            raise DataError(
                f"{path}: line {line}: msg_id {cid!r} already on line {seen[cid]}; keep one label per comment"
            )
        seen[cid] = line
        raw = row[label_col]
        if raw is None or str(raw).strip() == "":
            blank += 1
            continue
        label = parse_label(raw)
        if label is None:
            raise DataError(
                f"{path}: line {line}: label {raw!r} is not 0 or 1; use 1 for toxic, 0 for non-toxic, or leave it empty"
            )
        labels[cid] = label
    return labels, blank


def merged_labels(decisions: list[Decision], human: dict[str, int]) -> list[tuple[str, int, str]]:
    """(msg_id, label, source) in table order: a human label where there is one, else the rule's
    non-toxic; comments with neither are left out (still to label)."""
    out = []
    for d in decisions:
        if d.id in human:
            out.append((d.id, human[d.id], "human"))
        elif d.covered:
            out.append((d.id, 0, "rule"))
    return out


def labels_csv(merged: list[tuple[str, int, str]]) -> str:
    return csv_for_people(["msg_id", "label", "source"], merged)
