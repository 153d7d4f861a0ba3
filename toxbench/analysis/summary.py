"""Short summaries of runs, from their records: the headline of a run just made (`toxbench run`)
and one row per recorded run (`toxbench runs list`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toxbench.adapters.registry import priced
from toxbench.analysis.metrics import Metrics
from toxbench.analysis.metrics_cache import metrics_for
from toxbench.errors import ToxbenchError
from toxbench.records import (
    PREDICTIONS,
    RunSpec,
    damaged,
    distinct_labels,
    read_manifest,
    readable_runs,
    require_runs_dir,
    run_source,
    run_state,
    short_id,
)
from toxbench.run.runner import RunResult

HEADLINE = ("accuracy", "coverage", "f1_0", "f1_1", "balanced_accuracy")


def headline(result: RunResult) -> dict:
    """The run's headline metrics (unlabelled answers counted as wrong)."""
    metrics = metrics_for(result.run_dir, "count_as_wrong").as_dict()
    return {k: metrics[k] for k in HEADLINE}


def summary_json(result: RunResult) -> str:
    """`toxbench run --json`: what the run did and its headline metrics."""
    d = result.as_dict()
    return json.dumps(
        {
            "run_dir": d["run_dir"],
            "n": d["n"],
            "status": d["status"],
            "metrics": headline(result),
            "cost_usd": d["cost_usd"],
            "requests_sent": d["requests_sent"],
            "cache_hits": d["cache_hits"],
        },
        indent=2,
    )


def summary_line(result: RunResult) -> str:
    """`toxbench run`'s closing line."""
    m = headline(result)
    return (
        f"{result.run_dir}: n={result.n} {result.statuses} accuracy={m['accuracy']:.3f} coverage={m['coverage']:.3f} "
        f"cost={money(result.cost_usd, priced(read_manifest(result.run_dir).spec.adapter))} requests={result.requests_sent} cache hits={result.cache_hits}"
        + (f" retried errors={result.retried_errors}" if result.retried_errors else "")
    )


def money(usd: float | None, priced: bool = True) -> str:
    """A cost as people read it; None is "unknown" (a priced kind of model missing from the price
    table), or "n/a" for a model that has no price (local models, replays), never $0."""
    if usd is None:
        return "unknown" if priced else "n/a"
    return f"${usd:.4f}"


def filter_rows(
    rows: list[RunRow],
    source: str = "yours",
    dataset: str | None = None,
    model: str | None = None,
    status: str | None = None,
) -> list[RunRow]:
    """The rows `runs list` shows: from one source (yours, release or all), a dataset (a glob:
    `rtplx*`), a model (a substring of the label or of adapter:model) and a status."""
    from fnmatch import fnmatchcase

    return [
        row
        for row in rows
        if source in ("all", row.source)
        and (dataset is None or fnmatchcase(row.spec.dataset, dataset))
        and (model is None or model in row.run or model in f"{row.spec.adapter}:{row.spec.model}")
        and (status is None or row.status == status)
    ]


@dataclass
class RunRow:
    """One recorded run as `toxbench runs list` shows it."""

    run: str  # unique among the listed runs (distinct_labels)
    run_id: str
    spec: RunSpec
    status: str  # complete, partial, running or stopped (run_state)
    cost_usd: float | None
    metrics: Metrics | None  # None: nothing recorded yet
    expected: int | None = None  # samples the run set out to record, when it holds fewer (manifest.partial)

    @property
    def source(self) -> str:
        return run_source(self.spec)

    @property
    def short_id(self) -> str:
        return short_id(self.run_id)

    def size(self) -> str:
        """The samples recorded, and of how many when fewer: a run in progress, or a partial published file."""
        n = self.metrics.n if self.metrics else 0
        return f"{n} of {self.expected}" if self.expected else str(n)


def run_rows(runs_dir: Path) -> tuple[list[RunRow], list[str]]:
    """Every readable run, and a one-line warning for each damaged one."""
    runs, warnings = readable_runs(require_runs_dir(runs_dir))
    names = distinct_labels({run_dir.name: manifest.spec for run_dir, manifest in runs})
    rows = []
    for run_dir, manifest in runs:
        has_records = (run_dir / PREDICTIONS).is_file() and (run_dir / PREDICTIONS).stat().st_size > 0
        try:
            metrics = metrics_for(run_dir, "count_as_wrong") if has_records else None
        except ToxbenchError as exc:
            warnings.append(damaged(run_dir, exc))
            continue
        untrained = any(note.startswith("untrained classification head") for note in manifest.notes)
        rows.append(
            RunRow(
                names[run_dir.name] + (" (untrained head)" if untrained else ""),
                run_dir.name,
                manifest.spec,
                run_state(run_dir, manifest),
                manifest.cost_usd,
                metrics,
                manifest.n_expected if manifest.partial else None,
            )
        )
    return rows, warnings
