"""The release's published prediction files, replayed into ordinary run records.

Each file's dataset comes from its name where the name says it, checked by joining its rows; a
file whose name says nothing (or the wrong thing) is joined against each dataset in turn and the
choice is written into the run's notes. Import is idempotent: a file already recorded under the
same specification is skipped, so the leaderboard's warm path reads records only.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toxbench.adapters.replay import ImportReport, PublishedName, ReplayAdapter, parse_published_name
from toxbench.data.datadir import DataDir
from toxbench.data.datasets import REGISTRY, Dataset, identity_sha256, load_dataset
from toxbench.records import MANIFEST, RunSpec, RunWriter, read_manifest
from toxbench.types import Record

RecordsHook = Callable[[Path, list[Record]], None]
"""Called with a replayed run's directory and records while they are in memory (in the worker that
replayed them): the leaderboard passes its metrics cache, so the records are not read back."""

PREDICTIONS_DIR = "toxifrench/predictions/"
NOT_PREDICTIONS = {"metrics_summary.csv"}  # the release's own summary table, not per-sample predictions
# Datasets tried, in order, for a file whose name does not say which: the release names its
# English Jigsaw runs with an eng- prefix, so an unprefixed Jigsaw file is the French one.
FALLBACK_ORDER = ("toxifrench", "jigsaw-fr", "rtplx-fr", "hateday-fr", "jigsaw-en")
PUBLISHED_DATASETS = ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr")


def published_files(data: DataDir) -> list[str]:
    return [
        rel
        for rel in data.known_files
        if rel.startswith(PREDICTIONS_DIR)
        and rel.endswith(".csv")
        and rel[len(PREDICTIONS_DIR) :] not in NOT_PREDICTIONS
    ]


@dataclass
class Imported:
    rel: str
    name: PublishedName
    dataset: str | None
    run_dir: Path | None
    problems: list[str]
    skipped: bool  # already recorded


class DatasetCache:
    """Datasets loaded at most once per process, only when a join needs them."""

    def __init__(self, data: DataDir) -> None:
        self.data = data
        self._loaded: dict[str, Dataset] = {}

    def __getitem__(self, name: str) -> Dataset:
        if name not in self._loaded:
            self._loaded[name] = load_dataset(name, self.data)
        return self._loaded[name]


def _spec(name: PublishedName, dataset: str, data: DataDir, sha: str, filename: str) -> RunSpec:
    info = REGISTRY[dataset]
    return RunSpec(
        adapter="replay",
        model=name.model,
        adapter_params=ReplayAdapter.params(filename, sha),
        dataset=dataset,
        dataset_sha256=identity_sha256(info.identity(data)),
        prompt=name.prompt,
        lang=info.lang,
        shots=name.shots,
        label=name.stem,
    )


def _choose(
    adapter: ReplayAdapter, name: PublishedName, datasets: DatasetCache
) -> tuple[Dataset, list[Record], ImportReport, list[str]]:
    """The dataset the file's rows belong to: the named one if its rows join, else the first that does."""
    notes: list[str] = []
    order = ([name.dataset] if name.dataset else []) + [d for d in FALLBACK_ORDER if d != name.dataset]
    first = None
    for candidate in order:
        dataset = datasets[candidate]
        records, report = adapter.replay(dataset.samples)
        if first is None:
            first = (dataset, records, report)
        if report.rows and not report.unmatched_rows:
            if candidate != name.dataset:
                said = f"its name says {name.dataset}, but " if name.dataset else "its name names no dataset; "
                notes.append(f"dataset {candidate}: {said}all {report.rows} rows join {candidate}")
            return dataset, records, report, notes
    dataset, records, report = first
    return dataset, records, report, notes


def import_published(
    data: DataDir,
    runs_dir: Path,
    rels: list[str] | None = None,
    datasets: DatasetCache | None = None,
    only_dataset: str | None = None,
    workers: int = 1,
    on_done: Callable[[Imported], None] | None = None,
    on_records: RecordsHook | None = None,
) -> list[Imported]:
    """Replay published files into runs_dir; with only_dataset, skip files named for another dataset.

        Files already recorded are skipped without being read. The others are independent, so with
        workers > 1 they are replayed in forked worker processes (where the platform can fork; else
        one after another). on_done is called in this process as each file finishes; on_records where
    the records were made (see RecordsHook)."""
    datasets = datasets or DatasetCache(data)
    results: list[Imported] = []
    todo: list[str] = []

    def done(item: Imported | None) -> None:
        if item is None:
            return
        results.append(item)
        if on_done:
            on_done(item)

    for rel in rels if rels is not None else published_files(data):
        name = published_name(rel)
        if only_dataset and name.dataset and name.dataset != only_dataset:
            continue
        recorded = _already_imported(rel, name, data, runs_dir)
        if recorded:
            done(recorded)
        else:
            todo.append(rel)
    if workers > 1 and len(todo) > 1 and "fork" in multiprocessing.get_all_start_methods():
        for dataset in PUBLISHED_DATASETS:  # load once here; forked workers inherit them
            datasets[dataset]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(todo)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(data, runs_dir, datasets, only_dataset, on_records),
        ) as pool:
            for item in pool.map(_import_in_worker, todo):
                done(item)
    else:
        for rel in todo:
            done(_import_one(rel, data, runs_dir, datasets, only_dataset, on_records))
    return results


_WORKER_ARGS: tuple = ()


def _init_worker(*args) -> None:
    """Runs once in each forked worker: what every file's import needs."""
    global _WORKER_ARGS
    _WORKER_ARGS = args


def published_name(rel: str) -> PublishedName:
    return parse_published_name(rel.rsplit("/", 1)[-1].removesuffix(".csv"))


def _import_in_worker(rel: str) -> Imported | None:
    data, runs_dir, datasets, only_dataset, on_records = _WORKER_ARGS
    return _import_one(rel, data, runs_dir, datasets, only_dataset, on_records)


def _already_imported(rel: str, name: PublishedName, data: DataDir, runs_dir: Path) -> Imported | None:
    """The recorded run of a file whose name gives its dataset, found without reading the file."""
    if not name.dataset:
        return None
    run_dir = (
        Path(runs_dir) / _spec(name, name.dataset, data, data.manifest.get(rel).sha256, name.stem + ".csv").run_id()
    )
    if not (run_dir / MANIFEST).is_file():
        return None
    manifest = read_manifest(run_dir)
    if manifest.status != "complete":
        return None
    return Imported(rel, name, name.dataset, run_dir, manifest.notes, skipped=True)


def _import_one(
    rel: str,
    data: DataDir,
    runs_dir: Path,
    datasets: DatasetCache,
    only_dataset: str | None,
    on_records: RecordsHook | None = None,
) -> Imported | None:
    name = published_name(rel)
    filename = name.stem + ".csv"
    sha = data.manifest.get(rel).sha256
    adapter = ReplayAdapter(data.path(rel), sha)
    if not adapter.rows:
        return Imported(rel, name, None, None, ["the file has no prediction rows; nothing to replay"], skipped=False)
    dataset, records, report, notes = _choose(adapter, name, datasets)
    if only_dataset and dataset.name != only_dataset:
        return None
    writer = RunWriter(runs_dir, _spec(name, dataset.name, data, sha, filename), n_expected=len(dataset))
    writer.extend(records)
    problems = notes + report.problems()
    run_dir = writer.finish(notes=problems)
    if records and on_records:
        on_records(run_dir, records)
    return Imported(rel, name, dataset.name, run_dir, problems, skipped=False)
