"""Short summaries of runs, from their records: the headline of a run just made (`toxbench run`)
and one row per recorded run (`toxbench runs list`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toxbench.analysis.metrics import Metrics
from toxbench.analysis.metrics_cache import metrics_for
from toxbench.errors import ToxbenchError
from toxbench.records import PREDICTIONS, RunSpec, damaged, distinct_labels, readable_runs, require_runs_dir
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
        f"cost={money(result.cost_usd)} requests={result.requests_sent} cache hits={result.cache_hits}"
        + (f" retried errors={result.retried_errors}" if result.retried_errors else "")
    )


def money(usd: float | None) -> str:
    """A cost as people read it; None (no price known) is "unknown", never $0."""
    return "unknown" if usd is None else f"${usd:.4f}"


@dataclass
class RunRow:
    """One recorded run as `toxbench runs list` shows it."""

    run: str  # unique among the listed runs (distinct_labels)
    run_id: str
    spec: RunSpec
    status: str
    cost_usd: float | None
    metrics: Metrics | None  # None: nothing recorded yet
    expected: int | None = None  # samples the run set out to record, when it holds fewer (manifest.partial)

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
        rows.append(
            RunRow(
                names[run_dir.name],
                run_dir.name,
                manifest.spec,
                manifest.status,
                manifest.cost_usd,
                metrics,
                manifest.n_expected if manifest.partial else None,
            )
        )
    return rows, warnings
