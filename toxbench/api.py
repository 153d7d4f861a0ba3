"""The Python front door: what the CLI does, as functions that return objects and pandas
DataFrames, for scripts and notebooks.

`evaluate` makes (or resumes) a run with the same identity, cache, records and resume as
`toxbench run`, through the same `execute`; `load_run` and `list_runs` open recorded runs;
`leaderboard`, `compare`, `sweep` and `report` call the library functions the matching commands
call. Everything works from a plain script and from inside a running event loop (Jupyter, IPython,
an async application). Imported lazily by `toxbench/__init__.py`, so `import toxbench` stays fast;
beside `cli/` in the layers (it calls the library, nothing imports it)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from toxbench.errors import ToxbenchError

__all__ = [
    "Evaluation",
    "OpenedRun",
    "compare",
    "evaluate",
    "leaderboard",
    "list_runs",
    "load_run",
    "report",
    "sweep",
]

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
    "batch",
    "poll_s",
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

    def load(self) -> OpenedRun:
        """The run as recorded: its manifest, records (a DataFrame) and metrics."""
        return load_run(self.run_dir)

    @property
    def records(self):
        """The run's records as a pandas DataFrame, one row a sample."""
        return self.load().records


@dataclass(frozen=True)
class OpenedRun:
    """A recorded run: where it is, its manifest (spec, counts, cost, notes), its records as a
    pandas DataFrame (a column per `toxbench.types.Record` field) and its metrics."""

    dir: Path
    manifest: Any  # toxbench.records.RunManifest
    records: Any  # pandas.DataFrame
    metrics: Any  # toxbench.analysis.metrics.Metrics

    @property
    def spec(self):
        """What determines the run's answers (`toxbench.records.RunSpec`); its hash is the run id."""
        return self.manifest.spec


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


def load_run(ref: str | Path, runs_dir: str | Path = "runs", *, labelled_only: bool = False) -> OpenedRun:
    """A recorded run by directory, run id, unique id prefix or label, with its records as a
    DataFrame and its metrics (unlabelled answers count as wrong unless `labelled_only`)."""
    from toxbench.analysis.metrics_cache import metrics_for
    from toxbench.records import Run, find_run

    run = Run.load(find_run(ref, Path(runs_dir)))
    return OpenedRun(
        run.dir, run.manifest, run.frame(), metrics_for(run.dir, "labelled_only" if labelled_only else "count_as_wrong")
    )


RUN_COLUMNS = [
    "run_dir",
    "run_id",
    "label",
    "adapter",
    "model",
    "dataset",
    "prompt",
    "lang",
    "shots",
    "status",
    "recorded",
    "n_expected",
    "cost_usd",
    "started_at",
]


def list_runs(runs_dir: str | Path = "runs"):
    """Every readable run under `runs_dir` as a pandas DataFrame, one row a run in name order, with
    the label `toxbench runs list` shows; a damaged run is left out (`toxbench runs list` names it)."""
    import pandas as pd

    from toxbench.records import distinct_labels, readable_runs, require_runs_dir

    runs = readable_runs(require_runs_dir(Path(runs_dir)))[0]
    labels = distinct_labels({d.name: m.spec for d, m in runs})
    rows = [
        [
            d,
            m.run_id,
            labels[d.name],
            m.spec.adapter,
            m.spec.model,
            m.spec.dataset,
            m.spec.prompt,
            m.spec.lang,
            m.spec.shots,
            "partial" if m.status == "complete" and m.partial else m.status,
            m.recorded,
            m.n_expected,
            m.cost_usd,
            m.started_at,
        ]
        for d, m in runs
    ]
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def leaderboard(
    dataset: str | list[str] | None = None,
    *,
    runs_dir: str | Path = "runs",
    out: str | Path = "leaderboards",
    data_dir: str | Path | None = None,
    labelled_only: bool = False,
    published: bool = True,
    include: list[str | Path] | tuple = (),
) -> list:
    """Rank every complete run of each dataset, as `toxbench leaderboard` does, write its CSV and
    Markdown under `out`, and return the boards, one per dataset
    (`toxbench.analysis.leaderboard.Leaderboard`: `board.frame()` is the ranked table as a
    DataFrame; `board.skipped` and `board.damaged` say which runs were left out and why).

    The release's published files are replayed into `runs_dir` first unless `published=False`;
    `include` names other runs directories whose complete runs are ranked too (read only)."""
    from toxbench.analysis.leaderboard import regenerate
    from toxbench.data.datadir import DataDir

    names = [dataset] if isinstance(dataset, str) else dataset
    made = regenerate(
        names,
        Path(runs_dir),
        Path(out),
        DataDir(data_dir),
        "labelled_only" if labelled_only else "count_as_wrong",
        published,
        include=[Path(p) for p in include],
    )
    return [board for board, _csv, _md in made.boards]


def compare(run_a: str | Path, run_b: str | Path, *, runs_dir: str | Path = "runs", seed: int = 0):
    """The paired comparison `toxbench compare` prints: exact McNemar test, Cohen's kappa,
    agreement, macro-F1 bootstrap intervals (`toxbench.analysis.compare.Comparison`; its
    `frame()` lists the disagreements as a DataFrame)."""
    from toxbench.analysis.compare import compare_refs

    return compare_refs(str(run_a), str(run_b), Path(runs_dir), seed=seed)[2]


def sweep(
    file: str | Path,
    *,
    runs_dir: str | Path = "runs",
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    source: str = "auto",
    recorded_only: bool = False,
    **execution: Any,
):
    """Run (or resume, or find) every cell of a sweep file, as `toxbench sweep` does, and write its
    sensitivity table and plot under `out` (default sweeps/<sweep name>); returns a
    `toxbench.analysis.sensitivity.SweepResult` (`frame()`: the table as a DataFrame).
    `execution`: how requests are sent (concurrency, batch_size, rpm, ...)."""
    from toxbench._util import writable_dir
    from toxbench.analysis.sensitivity import run_sweep
    from toxbench.data.datadir import DataDir
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.sweep import load_sweep

    if source not in ("auto", "live", "published"):
        raise ToxbenchError(f"sweep: source={source!r}; use auto, live or published")
    unknown = set(execution) - _EXECUTION
    if unknown:
        raise ToxbenchError(
            f"sweep: unknown option {', '.join(sorted(unknown))}; known: {', '.join(sorted(_EXECUTION))}"
        )
    spec = load_sweep(Path(file))
    out_dir = writable_dir(Path(out) if out else Path("sweeps") / spec.name, "out")
    return run_sweep(
        spec,
        DataDir(data_dir),
        Path(runs_dir),
        out_dir,
        ExecutionSettings(**execution, batch_where_available=True),
        source,  # type: ignore[arg-type]
        recorded_only=recorded_only,
    )


def report(
    out: str | Path = "report",
    *,
    runs_dir: str | Path = "runs",
    results: str | Path | list = ("sweeps", "results"),
    data_dir: str | Path | None = None,
    labelled_only: bool = False,
) -> Path:
    """Write the static HTML report of every run, as `toxbench report` does; returns the path of
    its index.html. Runs that cannot be read are left out, each with a `warnings` warning."""
    import warnings

    from toxbench.analysis.report import build_report
    from toxbench.data.datadir import DataDir

    return build_report(
        Path(runs_dir),
        DataDir(data_dir),
        Path(out),
        [Path(results)] if isinstance(results, (str, Path)) else [Path(r) for r in results],
        "labelled_only" if labelled_only else "count_as_wrong",
        on_warning=lambda w: warnings.warn(w, stacklevel=3),
    )
