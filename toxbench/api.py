"""The Python front door: what `toxbench run` does, as functions that return objects, for scripts
and notebooks. `toxbench.evaluate(...)` makes (or resumes) a run with the same identity, cache,
records and resume as the CLI, through the same `execute`; it works from a plain script and from
inside a running event loop (Jupyter, IPython, an async application). Imported lazily by
`toxbench/__init__.py`, so `import toxbench` stays fast; beside `cli/` in the layers (it calls the
library, nothing imports it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from toxbench.errors import ToxbenchError

__all__ = ["Evaluation", "evaluate", "list_runs", "load_run"]

_EXECUTION = {
    "concurrency",
    "rpm",
    "tpm",
    "timeout_s",
    "max_retries",
    "backoff_initial_s",
    "backoff_max_s",
    "batch_size",
    "max_retry_after_s",
}


@dataclass(frozen=True)
class Evaluation:
    """A run made or resumed by `evaluate`: where it is, what it did, and its metrics."""

    run_dir: Path
    n: int
    statuses: dict
    cost_usd: float | None
    requests_sent: int
    cache_hits: int
    notes: list[str]
    metrics: (
        Any  # toxbench.analysis.metrics.Metrics: accuracy with its Wilson interval, per-class P/R/F1, coverage, ROC-AUC
    )

    def load(self):
        """The run as recorded (`toxbench.records.Run`: its manifest, spec and records)."""
        from toxbench.records import Run

        return Run.load(self.run_dir)


def evaluate(
    model: str = "baseline",
    dataset: str = "toxifrench",
    prompt: str = "detailed",
    shots: str = "0",
    *,
    runs_dir: str | Path = "runs",
    data_dir: str | Path | None = None,
    show_progress: bool = False,
    **options: Any,
) -> Evaluation:
    """Run `model` on `dataset` (a registered name or a CSV/JSONL path) with `prompt` and `shots`,
    or resume the run if it exists, exactly as `toxbench run` would; return its outcome and metrics.

    `options` are `toxbench run`'s other settings by their Python names: lang, seed, shot_pool,
    parser, model_args (a dict, as --model-arg), limit, sample, sample_seed, use_cache, cache_path,
    prices, columns, retry_errors; and how requests are sent: concurrency, rpm, tpm, timeout_s,
    max_retries, batch_size. An unknown option is a ToxbenchError naming the known ones."""
    from toxbench.analysis.metrics_cache import metrics_for
    from toxbench.data.datadir import DataDir
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.runner import RunOptions, execute

    run_fields = {f.name for f in fields(RunOptions)} - {"model", "dataset", "prompt", "shots", "runs_dir"}
    unknown = set(options) - run_fields - _EXECUTION
    if unknown:
        raise ToxbenchError(
            f"evaluate: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(run_fields | _EXECUTION))}"
        )
    run_options = RunOptions(
        model=model,
        dataset=dataset,
        prompt=prompt,
        shots=shots,
        runs_dir=Path(runs_dir),
        **{k: v for k, v in options.items() if k in run_fields},
    )
    settings = ExecutionSettings(**{k: v for k, v in options.items() if k in _EXECUTION})
    result = execute(run_options, DataDir(data_dir), settings, show_progress=show_progress)
    return Evaluation(
        result.run_dir,
        result.n,
        dict(result.statuses),
        result.cost_usd,
        result.requests_sent,
        result.cache_hits,
        list(result.notes),
        metrics_for(result.run_dir, "count_as_wrong"),
    )


def load_run(ref: str | Path, runs_dir: str | Path = "runs"):
    """A recorded run (`toxbench.records.Run`) by directory, run id, unique id prefix or label."""
    from toxbench.records import Run, find_run

    return Run.load(find_run(ref, Path(runs_dir)))


def list_runs(runs_dir: str | Path = "runs") -> list:
    """Every readable run under `runs_dir`, as (directory, manifest) pairs in name order; a damaged
    run is left out (`toxbench runs list` names it)."""
    from toxbench.records import readable_runs, require_runs_dir

    return readable_runs(require_runs_dir(Path(runs_dir)))[0]
