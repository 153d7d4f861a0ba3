"""The paper's tables regenerated from the release's prediction files, beside its printed values.

The printed values are facts typed in from the paper (`paper_tables.toml`, package data), with, for
each row, the release file that holds its predictions by name. Each file is replayed like any
published file, its metrics computed (unanswered samples count as wrong; every paper row's file
answers every sample), and the row gets a status:

- `reproduced`: every value within 0.0005 of the printed one (the paper prints three decimals);
- `differs`: the largest gap and its column;
- `no release file`: the release has no file for the row.

A printed F1 that is not the harmonic mean of the printed precision and recall is named too: such
a row cannot be reproduced by any file.

Every row is also compared with every other published file of its dataset: when another file
reproduces the printed row, the status says which (the release's `gpt-4o-mini-detailed-tf-fr.csv`
holds the numbers the paper prints for o4-mini, for instance).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.analysis.metrics import Metrics

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOLERANCE = 0.0005
COLUMNS = ("precision_0", "recall_0", "f1_0", "precision_1", "recall_1", "f1_1", "accuracy")
SHORT = {
    "precision_0": "P (0)",
    "recall_0": "R (0)",
    "f1_0": "F1 (0)",
    "precision_1": "P (1)",
    "recall_1": "R (1)",
    "f1_1": "F1 (1)",
    "accuracy": "Acc.",
}


@dataclass(frozen=True)
class PaperRow:
    """One printed row of one of the paper's tables."""

    table: str  # "3", "5", "6", "9"
    title: str  # the table's title
    group: str  # the block inside the table ("" when there is one block)
    label: str  # the row's name as printed
    dataset: str  # the toxbench dataset its numbers are on
    values: tuple[float, ...]  # in COLUMNS order
    file: str | None  # the release's prediction file named for it; None: there is none
    note: str = ""  # what a reader must know about the mapping (e.g. the file is another model's)

    @property
    def name(self) -> str:
        """`Table 5 Qwen3-4B 0-shot detailed`: the table, the block and the row as printed."""
        return f"Table {self.table} {(self.group + ' ') if self.group else ''}{self.label}"

    def inconsistencies(self) -> list[str]:
        """Printed F1 values that cannot come from the printed precision and recall: each F1 must be
        their harmonic mean, to within what rounding P and R to three decimals allows."""
        out = []
        for cls, (p, r, f1) in enumerate((self.values[0:3], self.values[3:6])):
            expected = 2 * p * r / (p + r) if p + r else 0.0
            if abs(expected - f1) > 0.0015:
                out.append(f"printed F1 ({cls}) {f1:.3f} is not the harmonic mean of its P and R ({expected:.3f})")
        return out


@dataclass(frozen=True)
class Gap:
    """How far a run's metrics are from a printed row: the largest gap and its column."""

    largest: float
    column: str

    @property
    def reproduced(self) -> bool:
        return self.largest <= TOLERANCE + 1e-9


@dataclass(frozen=True)
class Comparison:
    """A printed row against the release."""

    row: PaperRow
    release: Metrics | None  # the metrics of the row's file; None: no file
    gap: Gap | None
    same_as: list[str]  # other files of the dataset that reproduce the printed row
    closest: tuple[str, Gap] | None  # the nearest file of the dataset when none reproduces it
    holds: list[str] = ()  # other printed rows that the row's file reproduces

    def permuted(self) -> list[int]:
        """The classes whose printed P, R and F1 are the file's values in another order (a
        transcription slip), when the row is otherwise the file's."""
        if self.release is None or self.gap is None or self.gap.reproduced:
            return []
        got = [_value(self.release, c) for c in COLUMNS]
        same = lambda a, b: all(abs(x - y) <= TOLERANCE + 1e-9 for x, y in zip(a, b))  # noqa: E731
        if not same(self.row.values[6:], got[6:]):
            return []
        classes = []
        for cls, span in ((0, slice(0, 3)), (1, slice(3, 6))):
            printed, computed = self.row.values[span], got[span]
            if same(sorted(printed), sorted(computed)):
                classes += [cls] if not same(printed, computed) else []
            else:
                return []
        return classes

    @property
    def status(self) -> str:
        if self.gap is None:
            return "no release file"
        return "reproduced" if self.gap.reproduced else "differs"

    def status_text(self) -> str:
        if self.gap is None:
            text = "no release file"
        elif self.gap.reproduced:
            text = "reproduced"
        else:
            text = f"differs: {SHORT[self.gap.column]} by {self.gap.largest:.3f}"
        if self.row.note:
            text += f" ({self.row.note})"
        if moved := self.permuted():
            text += (
                "; the printed values are the file's, with "
                + " and ".join(f"class {c}'s P, R and F1" for c in moved)
                + " in another order"
            )
        if self.holds and self.status == "differs":
            text += "; the file holds the printed values of " + ", ".join(self.holds)
        if self.same_as:
            text += "; the printed values are those of " + ", ".join(f"`{f}`" for f in self.same_as)
        elif self.status != "reproduced" and self.closest and not moved:
            name, gap = self.closest
            text += f"; no release file matches (closest: `{name}`, {SHORT[gap.column]} by {gap.largest:.3f})"
        for problem in self.row.inconsistencies():
            text += f"; {problem}"
        return text


@lru_cache(maxsize=1)
def paper_rows() -> tuple[PaperRow, ...]:
    raw = tomllib.loads(resources.files("toxbench.analysis").joinpath("paper_tables.toml").read_text("utf-8"))
    rows = []
    for table in raw["tables"]:
        for group in table["groups"]:
            for row in group["rows"]:
                rows.append(
                    PaperRow(
                        table["id"],
                        table["title"],
                        group["name"],
                        row["label"],
                        group["dataset"],
                        tuple(row["values"]),
                        row.get("file"),
                        row.get("note", ""),
                    )
                )
    return tuple(rows)


def gap(printed: tuple[float, ...], metrics: Metrics) -> Gap:
    gaps = [(abs(_value(metrics, c) - v), c) for c, v in zip(COLUMNS, printed)]
    largest, column = max(gaps, key=lambda g: g[0])
    return Gap(largest, column)


def _value(metrics: Metrics, column: str) -> float:
    value = getattr(metrics, column)
    return math.inf if value is None or math.isnan(value) else value


def rows_for_file(stem: str, dataset: str) -> list[PaperRow]:
    """The printed rows whose predictions a release file holds (a leaderboard links them)."""
    return [r for r in paper_rows() if r.file and r.file.removesuffix(".csv") == stem and r.dataset == dataset]


@dataclass(frozen=True)
class PaperLink:
    """A run's file against one printed row that names it (a leaderboard shows these)."""

    row: PaperRow
    gap: Gap

    @property
    def text(self) -> str:
        """`Table 3 gpt-4o: reproduced` or `...: differs (P (0) by 0.100)`."""
        found = self.gap
        return f"{self.row.name}: " + (
            "reproduced" if found.reproduced else f"differs ({SHORT[found.column]} by {found.largest:.3f})"
        )

    @property
    def mark(self) -> str:
        """`T3 ✓` or `T3 ≠`."""
        return f"T{self.row.table} {'✓' if self.gap.reproduced else '≠'}"


def paper_links(stem: str, dataset: str, metrics: Metrics) -> list[PaperLink]:
    """The printed rows whose file is `stem` on `dataset`, each with how far the run is from it."""
    return [PaperLink(row, gap(row.values, metrics)) for row in rows_for_file(stem, dataset)]


def compare(published: dict[tuple[str, str], Metrics]) -> list[Comparison]:
    """Each printed row against its file's metrics; `published` maps (file stem, dataset) to metrics."""
    out = []
    for row in paper_rows():
        stem = row.file.removesuffix(".csv") if row.file else None
        release = published.get((stem, row.dataset)) if stem else None
        others = {s: gap(row.values, m) for (s, d), m in published.items() if d == row.dataset and s != stem}
        same_as = sorted(s + ".csv" for s, g in others.items() if g.reproduced)
        closest = min(others.items(), key=lambda item: item[1].largest, default=None)
        holds = [
            o.name
            for o in paper_rows()
            if release and o is not row and o.dataset == row.dataset and gap(o.values, release).reproduced
        ]
        out.append(
            Comparison(
                row,
                release,
                gap(row.values, release) if release else None,
                same_as,
                (closest[0] + ".csv", closest[1]) if closest else None,
                holds,
            )
        )
    return out


def replay_release(data, runs_dir: Path, console=None) -> dict[tuple[str, str], Metrics]:
    """Every published file replayed into runs_dir (already recorded ones are not read again) and
    its metrics, by (file stem, dataset)."""
    from toxbench.analysis.metrics_cache import metrics_for, remember_metrics
    from toxbench.run.progress import item_progress
    from toxbench.run.replay import DatasetCache, import_published, published_files

    rels = published_files(data)
    with item_progress("replaying published predictions", len(rels), console) as advance:
        imported = import_published(
            data,
            runs_dir,
            rels,
            DatasetCache(data),
            workers=os.cpu_count() or 1,
            on_done=advance,
            on_records=remember_metrics,
        )
    return {
        (item.name.stem, item.dataset): metrics_for(item.run_dir, "count_as_wrong")
        for item in imported
        if item.run_dir is not None
    }


# -- output ---------------------------------------------------------------------------------------
CSV_COLUMNS = [
    "table",
    "group",
    "row",
    "dataset",
    "file",
    "status",
    "largest_gap",
    "gap_column",
    "same_as",
    "closest_file",
    "closest_gap",
    "note",
    "file_holds",
    "printed_inconsistencies",
    "permuted_classes",
    *(f"paper_{c}" for c in COLUMNS),
    *(f"release_{c}" for c in COLUMNS),
    "release_n",
    "release_coverage",
]


def csv_text(comparisons: list[Comparison]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in comparisons:
        r, m = c.row, c.release
        writer.writerow(
            {
                "table": r.table,
                "group": r.group,
                "row": r.label,
                "dataset": r.dataset,
                "file": r.file or "",
                "status": c.status,
                "largest_gap": f"{c.gap.largest:.6f}" if c.gap else "",
                "gap_column": c.gap.column if c.gap else "",
                "same_as": " ".join(c.same_as),
                "closest_file": c.closest[0] if c.closest else "",
                "closest_gap": f"{c.closest[1].largest:.6f}" if c.closest else "",
                "note": r.note,
                "file_holds": "; ".join(c.holds),
                "printed_inconsistencies": "; ".join(r.inconsistencies()),
                "permuted_classes": " ".join(map(str, c.permuted())),
                **{f"paper_{k}": f"{v:.3f}" for k, v in zip(COLUMNS, r.values)},
                **{f"release_{k}": f"{getattr(m, k):.6f}" if m else "" for k in COLUMNS},
                "release_n": m.n if m else "",
                "release_coverage": f"{m.coverage:.6f}" if m else "",
            }
        )
    return out.getvalue()


def _three(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.3f}".lstrip("0") if x < 1 else f"{x:.3f}"


def markdown(comparisons: list[Comparison]) -> str:
    counts = {s: sum(c.status == s for c in comparisons) for s in ("reproduced", "differs", "no release file")}
    lines = [
        "# The ToxiFrench paper's tables, regenerated from the release's prediction files",
        "",
        f"{len(comparisons)} printed rows: {counts['reproduced']} reproduced, {counts['differs']} differ, "
        f"{counts['no release file']} have no release file.",
        f"A row is *reproduced* when all seven values are within {TOLERANCE} of the printed ones (the paper prints three "
        "decimals). Each printed row sits above the values toxbench computes from the release's file for it; every row "
        "is also checked against every other published file of its dataset. Regenerate with `toxbench paper`.",
    ]
    by_table: dict[str, list[Comparison]] = {}
    for c in comparisons:
        by_table.setdefault(c.row.table, []).append(c)
    head = "| Row | Source | " + " | ".join(SHORT[c] for c in COLUMNS) + " | Status |"
    for rows in by_table.values():
        lines += ["", f"## {rows[0].row.title}", "", head, "|" + "---|" * (len(COLUMNS) + 3)]
        group = None
        for c in rows:
            if c.row.group and c.row.group != group:
                group = c.row.group
                lines.append(f"| **{group}** ({c.row.dataset}) |" + " |" * (len(COLUMNS) + 2))
            printed = " | ".join(_three(v) for v in c.row.values)
            lines.append(f"| {c.row.label} | paper | {printed} | |")
            release = (
                " | ".join(_three(getattr(c.release, k)) for k in COLUMNS)
                if c.release
                else " | ".join("–" for _ in COLUMNS)
            )
            lines.append(f"| | `{c.row.file or '–'}` | {release} | {c.status_text()} |")
    return "\n".join(lines) + "\n"


def write(comparisons: list[Comparison], out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "paper-tables.csv", out_dir / "paper-tables.md"
    write_atomic(csv_path, csv_text(comparisons))
    write_atomic(md_path, markdown(comparisons))
    return csv_path, md_path
