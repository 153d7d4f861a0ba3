"""A run's metrics, memoised in its directory.

Metrics are a pure function of `predictions.jsonl`, so they are cached in `metrics.json` keyed by
that file's size and modification time and the toxbench version: appending a record or upgrading
toxbench recomputes them. Regenerating a leaderboard from cached runs reads no records and imports
no scikit-learn.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import orjson

from toxbench import __version__
from toxbench.harness.metrics import Metrics, Policy
from toxbench.harness.records import PREDICTIONS, Run

CACHE = "metrics.json"


def _key(run_dir: Path) -> list:
    stat = (run_dir / PREDICTIONS).stat()
    return [stat.st_size, stat.st_mtime_ns, __version__]


def metrics_for(run_dir: Path, policy: Policy, records: Sequence | None = None) -> Metrics:
    """The run's metrics under policy, from the cache when the records have not changed."""
    run_dir = Path(run_dir)
    cache_path = run_dir / CACHE
    key = _key(run_dir)
    cached: dict = {}
    try:
        cached = orjson.loads(cache_path.read_bytes())
        if cached.get("key") == key and policy in cached.get("metrics", {}):
            return Metrics(**cached["metrics"][policy])
    except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
        cached = {}
    from toxbench.harness.metrics import run_metrics

    metrics = run_metrics(records if records is not None else Run.load(run_dir).records, policy)
    entries = cached.get("metrics", {}) if cached.get("key") == key else {}
    entries[policy] = metrics.as_dict()
    tmp = cache_path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps({"key": key, "metrics": entries}))
    os.replace(tmp, cache_path)
    return metrics
