"""Short summaries of runs, from their records: the headline of a run just made (`toxbench run`)
and one row per recorded run (`toxbench runs list`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from toxbench.analysis.metrics import Metrics
from toxbench.analysis.metrics_cache import metrics_for
from toxbench.records import PREDICTIONS, iter_run_dirs, read_manifest
from toxbench.run.runner import RunResult

HEADLINE = ("accuracy", "coverage", "f1_0", "f1_1", "balanced_accuracy")


def headline(result: RunResult) -> dict:
    """The run's headline metrics (unlabelled answers counted as wrong)."""
    metrics = metrics_for(result.run_dir, "count_as_wrong").as_dict()
    return {k: metrics[k] for k in HEADLINE}


def summary_json(result: RunResult) -> str:
    """`toxbench run --json`: what the run did and its headline metrics."""
    d = result.as_dict()
    return json.dumps({"run_dir": d["run_dir"], "n": d["n"], "status": d["status"], "metrics": headline(result),
                       "cost_usd": d["cost_usd"], "requests_sent": d["requests_sent"], "cache_hits": d["cache_hits"]}, indent=2)


def summary_line(result: RunResult) -> str:
    """`toxbench run`'s closing line."""
    m = headline(result)
    return (f"{result.run_dir}: n={result.n} {result.statuses} accuracy={m['accuracy']:.3f} coverage={m['coverage']:.3f} "
            f"cost=${result.cost_usd:.4f} requests={result.requests_sent} cache hits={result.cache_hits}")


@dataclass
class RunRow:
    """One recorded run as `toxbench runs list` shows it."""

    run: str
    dataset: str
    model: str
    status: str
    cost_usd: float
    metrics: Metrics | None  # None: nothing recorded yet


def run_rows(runs_dir: Path) -> list[RunRow]:
    rows = []
    for run_dir in iter_run_dirs(runs_dir):
        manifest = read_manifest(run_dir)
        has_records = (run_dir / PREDICTIONS).is_file() and (run_dir / PREDICTIONS).stat().st_size > 0
        rows.append(RunRow(manifest.spec.label or run_dir.name, manifest.spec.dataset, f"{manifest.spec.adapter}:{manifest.spec.model}",
                           manifest.status, manifest.cost_usd, metrics_for(run_dir, "count_as_wrong") if has_records else None))
    return rows
