"""A dataset's leaderboard: every complete run recorded for it, ranked by accuracy. Runs on part of
the dataset are ranked apart, among themselves: subset runs (`--sample`, `--limit`) and runs holding
records for fewer samples than they expected (published files that cover only part of it). Their
accuracy is about other samples, so they never stand among the runs of the whole dataset.

A pure function of the records in the runs directory (published files are replayed into records
first); it never calls a model. Each row is compared with the next one by the exact McNemar test
on the samples both runs hold (correct or not under the board's policy); the Markdown marks rows
that are not significantly better than the next (p >= 0.05). The CSV keeps its fixed columns.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from toxbench._util import csv_for_people, partial_note, write_atomic
from toxbench.analysis.markdown_cells import cell, code
from toxbench.analysis.metrics import POLICY_TEXT, Metrics, Policy
from toxbench.analysis.metrics_cache import metrics_for
from toxbench.analysis.paper import PaperLink, paper_links
from toxbench.errors import ToxbenchError
from toxbench.records import (
    PREDICTIONS,
    RunManifest,
    damaged,
    distinct_labels,
    readable_runs,
    require_runs_dir,
    run_source,
    sources_text,
)

if TYPE_CHECKING:
    import numpy as np

CSV_COLUMNS = (
    "run",
    "model",
    "prompt",
    "shots",
    "n",
    "coverage",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "balanced_accuracy",
    "precision_0",
    "recall_0",
    "f1_0",
    "precision_1",
    "recall_1",
    "f1_1",
    "roc_auc",
    "paper",
)


@dataclass
class Row:
    run: str
    model: str
    prompt: str
    shots: str
    metrics: Metrics
    notes: list[str] = field(default_factory=list)
    run_dir: Path | None = None
    p_vs_next: float | None = None  # exact McNemar p against the next row (None for the last row)
    name: str = ""  # the label, with what tells it from other runs of the same label (see distinct_labels)
    lang: str = ""
    seed: str = ""
    subset: str = ""
    paper: list[PaperLink] = field(default_factory=list)  # the paper's rows that print this run's numbers
    fitted: bool = False  # learned from this dataset's own labels: ranked apart (see learned_from_labels)

    @property
    def no_negatives(self) -> bool:
        """The run's dataset has no gold 0 (every sample toxic)."""
        return sum(self.metrics.confusion[0]) == 0

    def csv_values(self) -> dict:
        m = self.metrics.as_dict()
        out = {
            "run": self.name or self.run,
            "model": self.model,
            "prompt": self.prompt,
            "shots": self.shots,
            "paper": "; ".join(link.text for link in self.paper),
        }
        for column in CSV_COLUMNS[4:-1]:
            value = m[column]
            out[column] = (
                ""
                if value is None or (isinstance(value, float) and math.isnan(value))
                else (round(value, 6) if isinstance(value, float) else value)
            )
        if self.no_negatives:  # a span dataset: class 0's figures are undefined, not 0
            out.update({c: "" for c in ("precision_0", "recall_0", "f1_0", "balanced_accuracy")})
        return out


@dataclass
class Leaderboard:
    dataset: str
    policy: Policy
    rows: list[Row]
    skipped: list[str] = field(default_factory=list)  # runs left out, with the reason
    damaged: list[str] = field(default_factory=list)  # runs that could not be read, with how to repair them
    subset_rows: list[Row] = field(
        default_factory=list
    )  # runs on part of the dataset (subset or partial), ranked apart
    span_rows: list[dict] = field(
        default_factory=list
    )  # one per (ranked run, explainer) with explanations: span agreement, faithfulness
    span_floors: dict | None = None  # SemEval's reference predictions on the whole dataset, when it has gold spans
    fitted_rows: list[Row] = field(
        default_factory=list
    )  # runs that learned from this dataset's own labels (a stacked ensemble)
    sources: dict[str, int] = field(default_factory=dict)  # ranked runs by source: release, yours, included
    robustness_rows: list[dict] = field(
        default_factory=list
    )  # one per run that also ran on disguised versions of the dataset (toxbench robustness)

    def sources_text(self) -> str:
        """Where the board's runs come from, e.g. "66 replayed from the release's prediction files, 2
        made with toxbench"."""
        return sources_text(self.sources) or "no run"

    def frame(self, rows: str = "ranked"):
        """A table of the board as a pandas DataFrame, in rank order: the ranked runs, or
        `rows="subset"` (runs on part of the dataset) or `"fitted"` (learned from its labels).
        Metrics are numbers (NaN where undefined), with `p_vs_next` and the run's directory."""
        import pandas as pd

        chosen = {"ranked": self.rows, "subset": self.subset_rows, "fitted": self.fitted_rows}
        if rows not in chosen:
            raise ToxbenchError(f"rows={rows!r}: use ranked, subset or fitted")
        metric_columns = CSV_COLUMNS[4:-1]
        table = []
        for row in chosen[rows]:
            m = row.metrics.as_dict()
            table.append(
                {
                    "run": row.name or row.run,
                    "model": row.model,
                    "prompt": row.prompt,
                    "shots": row.shots,
                    **{c: (float("nan") if m[c] is None else m[c]) for c in metric_columns},
                    "p_vs_next": row.p_vs_next,
                    "paper": "; ".join(link.text for link in row.paper),
                    "run_dir": row.run_dir,
                }
            )
        return pd.DataFrame(
            table, columns=["run", "model", "prompt", "shots", *metric_columns, "p_vs_next", "paper", "run_dir"]
        )


def _readable(run_dirs: Sequence[Path]) -> tuple[list[tuple[Path, RunManifest]], list[str]]:
    """The runs of several directories; a run id found twice counts once (the first directory wins)."""
    runs, broken, seen = [], [], set()
    for directory in run_dirs:
        found, warnings = readable_runs(directory)
        runs += [(d, m) for d, m in found if d.name not in seen]
        seen |= {d.name for d, _ in found}
        broken += warnings
    return runs, broken


def collect(
    runs_dir: Path | Sequence[Path], dataset: str, policy: Policy = "count_as_wrong", source: str = "all"
) -> Leaderboard:
    """The board of one dataset from every complete run in runs_dir (or in several directories).
    `source` (yours, release or all) picks the runs of the first directory; the others, named on
    purpose (`--include-runs`), are ranked whole."""
    rows: list[Row] = []
    skipped: list[str] = []
    dirs = [runs_dir] if isinstance(runs_dir, (str, Path)) else list(runs_dir)
    runs, broken = _readable(dirs)
    first = {d for d, _ in runs if dirs and d.parent == Path(dirs[0])}  # the runs of the first directory
    origin: dict[Path, str] = {}
    for run_dir, manifest in runs:
        spec = manifest.spec
        if spec.dataset != dataset:
            continue
        if run_dir in first and source not in ("all", run_source(spec)):
            continue
        origin[run_dir] = run_source(spec) if run_dir in first else "included"
        if manifest.status != "complete":
            skipped.append(f"{run_dir.name}: not finished (run it again to resume)")
            continue
        if not (run_dir / PREDICTIONS).is_file() or (run_dir / PREDICTIONS).stat().st_size == 0:
            skipped.append(f"{spec.label or run_dir.name}: no records")
            continue
        try:
            metrics = metrics_for(run_dir, policy)
        except ToxbenchError as exc:
            broken.append(damaged(run_dir, exc))
            continue
        notes = list(manifest.notes) + ([f"a subset of the dataset ({spec.subset})"] if spec.subset else [])
        part = spec.subset or (f"partial: {manifest.recorded} of {manifest.n_expected}" if manifest.partial else "")
        if (
            manifest.partial and (note := partial_note(manifest.recorded, manifest.n_expected)) not in notes
        ):  # a replay said it already
            notes.append(note)
        if spec.adapter == "replay" and metrics.roc_auc is not None:
            notes += _tuned(run_dir)
        rows.append(
            Row(
                run=spec.label or run_dir.name,
                model=f"{spec.adapter}:{spec.model}" if spec.adapter in ("ensemble", "calibrated") else spec.model,
                prompt=spec.prompt or "",
                shots=spec.shots or "",
                metrics=metrics,
                notes=notes,
                run_dir=run_dir,
                lang=spec.lang or "",
                seed="" if spec.shots_seed is None else str(spec.shots_seed),
                subset=part,
                paper=paper_links(spec.label, dataset, metrics) if spec.adapter == "replay" and spec.label else [],
                fitted=learned_from_labels(spec),
            )
        )
    ranked = {r.run_dir for r in rows}
    names = distinct_labels({d.name: m.spec for d, m in runs if d in ranked})
    for row in rows:
        row.name = names[row.run_dir.name]
    fitted = [r for r in rows if r.fitted]
    full, subsets = [r for r in rows if not r.subset and not r.fitted], [r for r in rows if r.subset and not r.fitted]
    for group in (full, subsets, fitted):
        group.sort(key=lambda r: (-_num(r.metrics.accuracy), r.name))
        _compare_neighbours(group, policy)
    counts = {"release": 0, "yours": 0, "included": 0}
    for row in rows:
        counts[origin[row.run_dir]] += 1
    return Leaderboard(
        dataset,
        policy,
        full,
        skipped,
        broken,
        subsets,
        explanation_rows(full + subsets + fitted, broken),
        fitted_rows=fitted,
        sources={k: v for k, v in counts.items() if v},
    )


def learned_from_labels(spec) -> bool:
    """A run whose labels come from a model fitted, out of fold, on the same benchmark's gold labels (a
    stacked ensemble): ranked apart, never above the detectors it learned from. (A calibrated run is
    scored only on samples its dev split did not see, and is ranked with the subset runs.)"""
    return spec.adapter == "ensemble" and spec.model == "stack"


def _tuned(run_dir: Path) -> list[str]:
    """The note of a published file whose labels follow a threshold other than 0.5 on its scores."""
    from toxbench.adapters.replay import score_decides_label
    from toxbench.analysis.calibration import tuned_note
    from toxbench.records import read_records

    records = read_records(run_dir / PREDICTIONS)
    note = tuned_note(records) if score_decides_label(records) else None
    return [note] if note else []


SPAN_COLUMNS = (
    "run",
    "explainer",
    "method",
    "rule",
    "tuned_on",
    "n",
    "span_f1",
    "char_precision",
    "char_recall",
    "char_iou",
    "overlap_f1",
    "comprehensiveness",
    "sufficiency",
    "aopc",
)


def explanation_rows(rows: list[Row], broken: list[str]) -> list[dict]:
    """Span agreement (for datasets with gold spans) and faithfulness of every explainer that wrote
    into a ranked run, best span F1 first."""
    from toxbench.analysis.explanations import summarise
    from toxbench.explanations import every_explanation

    out = []
    for row in rows:
        try:
            for explainer, (settings, lines) in every_explanation(row.run_dir).items():
                summary = summarise(lines)
                spans, faith = summary.spans or {}, summary.faithfulness
                out.append(
                    {
                        "run": row.name or row.run,
                        "explainer": explainer,
                        "method": settings["method"],
                        "rule": settings["extraction"]["rule"],
                        "tuned_on": (settings.get("tuned_on") or {}).get("dataset", ""),
                        "n": summary.explained,
                        "span_f1": spans.get("f1"),
                        "char_precision": spans.get("precision"),
                        "char_recall": spans.get("recall"),
                        "char_iou": spans.get("iou"),
                        "overlap_f1": spans.get("overlap_f1"),
                        **{m: (faith.get(m) or {}).get("mean") for m in ("comprehensiveness", "sufficiency", "aopc")},
                    }
                )
        except ToxbenchError as exc:
            broken.append(f"{row.run_dir.name}: explanations not read ({exc})")
    return sorted(out, key=lambda r: (-(r["span_f1"] if r["span_f1"] is not None else -1), r["run"], r["explainer"]))


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.4f}"


def span_table(span_rows: list[dict], marks: dict[str, str] | None = None) -> list[str]:
    """The explanations table; `marks`: run -> its note's mark in the ranking (what it was trained on, its seeds)."""
    marks = marks or {}
    lines = [
        "| Run | Explainer | Method | Spans by | Tuned on | n | Span F1 | Char P | Char R | Char IoU | Overlap F1 | Compr. | Suff. | AOPC |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in span_rows:
        lines.append(
            f"| {code(r['run'])}{marks.get(r['run'], '')} | {cell(r['explainer'])} | {cell(r['method'])} | {cell(r['rule'])} | {cell(r['tuned_on'] or '–')} | {r['n']} | **{_f(r['span_f1'])}** | "
            f"{_f(r['char_precision'])} | {_f(r['char_recall'])} | {_f(r['char_iou'])} | {_f(r['overlap_f1'])} | "
            f"{_f(r['comprehensiveness'])} | {_f(r['sufficiency'])} | {_f(r['aopc'])} |"
        )
    return lines


def span_csv_text(span_rows: list[dict]) -> str:
    return csv_for_people(
        SPAN_COLUMNS,
        (
            [("" if (v := r.get(k)) is None else round(v, 6) if isinstance(v, float) else v) for k in SPAN_COLUMNS]
            for r in span_rows
        ),
    )


SIGNIFICANCE = 0.05


def _correctness(run_dir: Path, policy: Policy) -> dict[str, bool]:
    """Sample id -> answered correctly; under `labelled_only`, unlabelled samples are absent."""
    from toxbench.analysis.metrics_cache import outcomes_for

    return {sid: o == 1 for sid, o in outcomes_for(run_dir).items() if o != -1 or policy != "labelled_only"}


def _compare_neighbours(rows: list[Row], policy: Policy) -> None:
    from toxbench.analysis.significance import mcnemar_exact

    cache: dict[Path, dict[str, bool]] = {}

    def correct(row: Row) -> dict[str, bool]:
        if row.run_dir not in cache:
            cache[row.run_dir] = _correctness(row.run_dir, policy)
        return cache[row.run_dir]

    for upper, lower in itertools.pairwise(rows):
        a, b = correct(upper), correct(lower)
        common = a.keys() & b.keys()
        only_a = sum(a[s] and not b[s] for s in common)
        only_b = sum(b[s] and not a[s] for s in common)
        upper.p_vs_next = mcnemar_exact(only_a, only_b) if common else None
        cache.pop(upper.run_dir, None)  # each run is compared with its two neighbours only


def _num(x: float) -> float:
    return -1.0 if x is None or math.isnan(x) else x


def csv_text(rows: list[Row]) -> str:
    return csv_for_people(
        CSV_COLUMNS, ([values.get(k, "") for k in CSV_COLUMNS] for values in (row.csv_values() for row in rows))
    )


def _pct(x: float | None) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.1f}"


def _p(p: float | None) -> str:
    from toxbench.analysis.significance import format_p

    text = format_p(p)
    return f"{text} ≈" if p is not None and p >= SIGNIFICANCE else text


HEADER = [
    "| # | Run | Model | Prompt | Shots | n | Cov. | P (0) | R (0) | F1 (0) | P (1) | R (1) | F1 (1) | Acc. | 95% CI | Bal. acc. | ROC-AUC | p vs next | Paper |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def _paper_cell(links: list[PaperLink]) -> str:
    """`T3 ✓ T5 ✓ T6 ✓`: each table once."""
    return " ".join(dict.fromkeys(link.mark for link in links)) or "–"


def no_negatives(rows: list[Row]) -> bool:
    """Every sample of the board's dataset is toxic (a span dataset): P(0) is zero by construction,
    so accuracy is the toxic class's recall and the class-0 columns and balanced accuracy say nothing."""
    return bool(rows) and all(r.no_negatives for r in rows)


def _table(
    rows: list[Row], notes: list[str], marks: dict[str, str] | None = None, single_class: bool = False
) -> list[str]:
    lines = list(HEADER)
    undefined = (lambda x: "n/a") if single_class else _pct  # class 0 has no sample
    for rank, row in enumerate(rows, start=1):
        m = row.metrics
        mark = ""
        if row.notes:
            notes.append(f"{len(notes) + 1}. {code(row.name or row.run)}: " + cell("; ".join(row.notes)))
            mark = f" [{len(notes)}]"
            if marks is not None:
                marks[row.name or row.run] = mark
        lines.append(
            f"| {rank} | {code(row.name or row.run)}{mark} | {cell(row.model)} | {cell(row.prompt or '–')} | {cell(row.shots or '–')} | {m.n} | {_pct(m.coverage)} | "
            f"{undefined(m.precision_0)} | {undefined(m.recall_0)} | {undefined(m.f1_0)} | {_pct(m.precision_1)} | {_pct(m.recall_1)} | {_pct(m.f1_1)} | "
            f"**{_pct(m.accuracy)}** | {_pct(m.accuracy_ci_low)}–{_pct(m.accuracy_ci_high)} | {undefined(m.balanced_accuracy)} | {_pct(m.roc_auc)} | {_p(row.p_vs_next)} | "
            f"{_paper_cell(row.paper)} |"
        )
    return lines


def markdown(board: Leaderboard) -> str:
    lines = [
        f"# Leaderboard: {cell(board.dataset)}",
        "",
        f"{len(board.rows)} runs, sorted by accuracy. Values are percentages. Policy: {POLICY_TEXT[board.policy]}.",
        f"Sources of the runs on this page: {board.sources_text()}.",
        "Accuracy is shown with its Wilson 95% interval; ROC-AUC only where a run has real scores.",
        "*p vs next*: exact McNemar test of a row against the one below it, on the samples both hold; "
        f"≈ marks a row that is not significantly better than the next (p ≥ {SIGNIFICANCE}).",
        "*Paper*: the paper's tables that print this run's numbers (`toxbench paper`, `results/paper/paper-tables.md`): "
        "✓ every value within 0.0005 of the printed one, ≠ not; the CSV's `paper` column names the rows.",
        "",
    ]
    notes: list[str] = []
    marks: dict[str, str] = {}
    single_class = no_negatives(board.rows + board.subset_rows + board.fitted_rows)
    if single_class:
        lines += [
            "**Every sample of this dataset is toxic** (no gold 0): accuracy here is the share of toxic posts detected (the toxic "
            "class's recall), the class-0 columns and balanced accuracy are undefined (n/a), and P (1) is 100 by construction. What "
            "tells these runs apart is the detection rate and, below, the explanations' span F1 against the gold spans.",
            "",
        ]
    lines += _table(board.rows, notes, marks, single_class)
    if board.subset_rows:
        lines += [
            "",
            "## Runs on part of the dataset",
            "",
            f"{len(board.subset_rows)} runs on fewer samples than the whole dataset (`--sample`, `--limit`, or a published file that covers "
            "only part of it), ranked among themselves only: their accuracy is about other samples than the runs above.",
            "",
            *_table(board.subset_rows, notes, marks, single_class),
        ]
    if board.fitted_rows:
        lines += [
            "",
            "## Learned from this benchmark's labels",
            "",
            f"{len(board.fitted_rows)} run{'s' if len(board.fitted_rows) > 1 else ''} whose labels come from a model fitted on this dataset's own gold labels (a stacked ensemble, "
            "each fold's model fitted on the other folds), ranked apart: they are not detectors evaluated on unseen data, and "
            "their numbers are not comparable with the ranking above. Their notes give the fair single-model reference: the best "
            "single run chosen inside the same folds.",
            "",
            *_table(board.fitted_rows, notes, marks, single_class),
        ]
    if board.span_rows:
        lines += [
            "",
            "## Explanations",
            "",
            "Runs with explanations (`toxbench explain`), one row per explainer. Span F1 is SemEval-2021's character F1 against the gold "
            "spans (– on a dataset without them); char P/R pooled over characters, IoU per post; faithfulness means: comprehensiveness "
            "and AOPC (higher: the evidence carried the decision), sufficiency (lower: the evidence alone suffices). Definitions: docs/explain.md.",
            "",
        ]
        if board.span_floors:
            f = board.span_floors
            lines += [
                f"Reference points on all {f['posts']} posts (SemEval-2021's own): no span for any post {f['empty']:.4f}, "
                f"every character of every post {f['all_characters']:.4f}.",
                "",
            ]
        lines += span_table(board.span_rows, marks)
    if board.robustness_rows:
        from toxbench.analysis.robustness import board_section

        lines += board_section(board.robustness_rows)
    if notes:
        lines += ["", "## Notes", "", *notes]
    if board.skipped:
        lines += ["", "## Not ranked", "", *[f"- {cell(s)}" for s in board.skipped]]
    return "\n".join(lines) + "\n"


def write(board: Leaderboard, out_dir: Path) -> tuple[Path, Path]:
    """leaderboard.csv (the whole-dataset runs), leaderboard-subsets.csv (when there are runs on
    part of the dataset), leaderboard-spans.csv (when runs have explanations) and leaderboard.md (all), each
    written atomically."""
    csv_path, md_path, subsets_path = (
        out_dir / "leaderboard.csv",
        out_dir / "leaderboard.md",
        out_dir / "leaderboard-subsets.csv",
    )
    spans_path = out_dir / "leaderboard-spans.csv"
    write_atomic(csv_path, csv_text(board.rows))
    for rows, path in ((board.subset_rows, subsets_path), (board.fitted_rows, out_dir / "leaderboard-fitted.csv")):
        if rows:
            write_atomic(path, csv_text(rows))
        else:
            path.unlink(missing_ok=True)
    if board.span_rows:
        write_atomic(spans_path, span_csv_text(board.span_rows))
    else:
        spans_path.unlink(missing_ok=True)
    robustness_path = out_dir / "leaderboard-robustness.csv"
    if board.robustness_rows:
        from toxbench.analysis.robustness import board_csv

        write_atomic(robustness_path, board_csv(board.robustness_rows))
    else:
        robustness_path.unlink(missing_ok=True)
    write_atomic(md_path, markdown(board))
    return csv_path, md_path


@dataclass
class Regenerated:
    """What `toxbench leaderboard` made: each board with its CSV and Markdown paths, and the
    published files that could not be replayed (with why)."""

    boards: list[tuple[Leaderboard, Path, Path]]
    notes: list[str]


def regenerate(
    datasets: list[str] | None,
    runs_dir: Path,
    out_dir: Path,
    data,
    policy: Policy = "count_as_wrong",
    published: bool = True,
    console=None,
    include: Sequence[Path] = (),
    source: str = "all",
) -> Regenerated:
    """Replay the release's published files into runs_dir (unless published is False), then rank
    every complete run of each dataset, in runs_dir and in the `include` directories (read only:
    e.g. results/runs, the committed local runs), and write its board (one sub-directory each when
    several)."""
    import os

    from toxbench._util import folder_name, writable_dir
    from toxbench.analysis.metrics_cache import remember_metrics
    from toxbench.data.perturb.provenance import recorded_name
    from toxbench.run.progress import item_progress
    from toxbench.run.replay import PUBLISHED_DATASETS, DatasetCache, import_published, published_files

    names = [recorded_name(d) for d in datasets] if datasets else list(PUBLISHED_DATASETS)
    published = published and source != "yours"  # nothing replayed that would not be ranked
    if not published:
        require_runs_dir(runs_dir)
    for directory in include:
        require_runs_dir(directory, "--include-runs")
    _check_datasets(names, [runs_dir, *include], data)
    writable_dir(out_dir, "--out")  # created only once the inputs are known good
    notes: list[str] = []
    if published:
        rels = published_files(data)
        with item_progress("replaying published predictions", len(rels), console) as advance:
            imported = import_published(
                data,
                runs_dir,
                rels,
                DatasetCache(data),
                only_dataset=names[0] if len(names) == 1 else None,
                workers=os.cpu_count() or 1,
                on_done=advance,
                on_records=remember_metrics,
            )
        notes = [f"{item.rel}: {'; '.join(item.problems)}" for item in imported if item.run_dir is None]
    boards = []
    for name in names:
        board = collect([runs_dir, *include], name, policy, source)
        if board.span_rows:
            board.span_floors = _span_floors(name, data)
        from toxbench.analysis.robustness import board_rows

        board.robustness_rows, disguise_notes = board_rows(
            board.rows + board.subset_rows, name, _readable([runs_dir, *include])[0], data
        )
        notes += disguise_notes
        boards.append((board, *write(board, out_dir if len(names) == 1 else out_dir / folder_name(name))))
        notes += [w for w in board.damaged if w not in notes]
    return Regenerated(boards, notes)


def _span_floors(name: str, data) -> dict | None:
    from toxbench.data.datasets import load_dataset
    from toxbench.explain.span_metrics import floors

    try:
        dataset = load_dataset(name, data)
    except ToxbenchError:
        return None
    if not dataset.has_spans:
        return None
    return {"posts": len(dataset), **floors([s.spans for s in dataset.samples], [s.text for s in dataset.samples])}


def _check_datasets(names: list[str], run_dirs: list[Path], data) -> None:
    """Each name is a dataset toxbench knows or one that runs were recorded on; else an error that
    lists them (an empty board would look like a dataset nobody ran)."""
    from toxbench.data.datasets import REGISTRY, parse_dataset_spec

    recorded = {m.spec.dataset for _, m in _readable(run_dirs)[0]}
    unknown = [n for n in names if n not in recorded and n not in REGISTRY and parse_dataset_spec(n)[0] != "rtplx"]
    if unknown:
        known = sorted(set(REGISTRY) | recorded)
        raise ToxbenchError(
            f"--dataset {unknown[0]}: no such dataset and no run recorded on it under {', '.join(map(str, run_dirs))}; known: {', '.join(known)}"
        )


def agreement(runs_dir: Path, dataset: str) -> tuple[list[str], np.ndarray]:
    """The run names of a dataset's leaderboard, in its order, and their Cohen's kappa matrix."""
    from toxbench.analysis.compare import kappa_matrix
    from toxbench.records import Run

    board = collect(runs_dir, dataset)
    if len(board.rows) < 2:
        raise ToxbenchError(f"{runs_dir}: fewer than two complete runs of {dataset}; nothing to compare")
    return [row.run for row in board.rows], kappa_matrix([Run.load(row.run_dir) for row in board.rows])
