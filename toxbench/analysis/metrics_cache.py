"""A run's metrics, memoised in its directory.

Metrics are a pure function of `predictions.jsonl`, so they are cached in `metrics.json` keyed by
that file's size and modification time and the toxbench version: appending a record or upgrading
toxbench recomputes them. The same file keeps each sample's outcome (1 right, 0 wrong, -1 no
label), which the leaderboard's McNemar tests between neighbouring rows need. Regenerating a
leaderboard from cached runs reads no records and imports no scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from toxbench import __version__
from toxbench._util import write_atomic
from toxbench.analysis.metrics import Metrics, Policy
from toxbench.errors import ToxbenchError
from toxbench.records import PREDICTIONS, Run

CACHE = "metrics.json"


def _key(run_dir: Path) -> list:
    stat = (run_dir / PREDICTIONS).stat()
    return [stat.st_size, stat.st_mtime_ns, __version__]


def _read(run_dir: Path, key: list) -> dict:
    path = run_dir / CACHE
    if not path.is_file():  # absent, or not a regular file (which would block or never end)
        return {}
    try:
        cached = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return cached if isinstance(cached, dict) and cached.get("key") == key else {}


def _write(run_dir: Path, entry: dict) -> None:
    """Memoise; a runs directory that cannot be written (a read-only checkout, a full disk) only
    loses the memo: the run is as readable as ever, never "damaged"."""
    try:
        write_atomic(run_dir / CACHE, orjson.dumps(entry))
    except ToxbenchError:
        pass


def _outcomes(records: Sequence) -> dict[str, int]:
    return {r.sample_id: -1 if r.pred is None else int(r.pred == r.gold) for r in records}


def metrics_for(run_dir: Path, policy: Policy, records: Sequence | None = None) -> Metrics:
    """The run's metrics under policy, from the cache when the records have not changed."""
    run_dir = Path(run_dir)
    key = _key(run_dir)
    cached = _read(run_dir, key)
    try:
        if policy in cached.get("metrics", {}):
            return Metrics(**cached["metrics"][policy])
    except TypeError:
        cached = {}
    from toxbench.analysis.metrics import run_metrics

    records = records if records is not None else Run.load(run_dir).records
    metrics = run_metrics(records, policy)
    _write(
        run_dir,
        {
            "key": key,
            "metrics": {**cached.get("metrics", {}), policy: metrics.as_dict()},
            "outcomes": _outcomes(records),
        },
    )
    return metrics


def remember_metrics(run_dir: Path, records: Sequence) -> None:
    """Cache a freshly written run's default metrics from records still in memory (the hook that
    replaying published files calls, in the worker that replayed them)."""
    metrics_for(run_dir, "count_as_wrong", records)


def outcomes_for(run_dir: Path) -> dict[str, int]:
    """Sample id -> 1 (right), 0 (wrong) or -1 (no label), from the cache when the records have not changed."""
    run_dir = Path(run_dir)
    key = _key(run_dir)
    cached = _read(run_dir, key)
    if isinstance(cached.get("outcomes"), dict):
        return cached["outcomes"]
    outcomes = _outcomes(Run.load(run_dir).records)
    _write(run_dir, {"key": key, "metrics": cached.get("metrics", {}), "outcomes": outcomes})
    return outcomes
