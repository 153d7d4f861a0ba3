"""Run records, the source of truth: `manifest.json` plus `predictions.jsonl` in one directory.

A run's id is a hash of its full specification, so re-running the same specification finds the
same directory and resumes: samples already recorded are skipped. Lines are appended and flushed
as results arrive; a crash loses at most the line being written, which is cut off on resume.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import orjson
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field

from toxbench import __version__
from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError
from toxbench.types import RECORD_FIELDS, STATUSES, Record

MANIFEST = "manifest.json"
LOCK = "run.lock"
PREDICTIONS = "predictions.jsonl"


def run_label(adapter: str, model_id: str, model_args: dict) -> str:
    """The human name of a live run: `adapter:model` and its adapter arguments, e.g.
    `hf:smollm2-135m-instruct mode=score` (sweeps find recorded runs by it)."""
    return " ".join([f"{adapter}:{model_id}", *(f"{k}={v}" for k, v in sorted(model_args.items()))])


class RunSpec(BaseModel):
    """Everything that determines a run's answers; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    adapter: str
    model: str
    adapter_params: dict = Field(default_factory=dict)
    dataset: str
    dataset_sha256: str
    prompt: str | None = None
    lang: str | None = None
    shots: str | None = None
    shots_seed: int | None = None
    shot_pool: str | None = None  # k-shot runs: "first" (the release's examples) or "random" (drawn with shots_seed)
    parser: str | None = None
    prompt_sha256: str | None = None  # the rendered prompt frame: editing a template makes a new run
    subset: str | None = None  # a seeded balanced sample of the dataset, e.g. "balanced-200-seed0"
    label: str | None = None  # a human name for the run (a replayed file's name); ids stay hash-based
    toxbench_version: str = __version__

    def run_id(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        digest = hashlib.sha256(blob).hexdigest()[:12]
        slug = re.sub(
            r"[^A-Za-z0-9._-]+", "-", f"{self.dataset}--{self.label or self.adapter + '-' + self.model}"
        ).strip("-")
        return f"{slug[:80]}--{digest}"


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    spec: RunSpec
    status: str = "running"  # running | complete
    n_expected: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    cost_usd: float | None = None  # None: no record has a price (an unpriced model, a replay)
    started_at: str
    finished_at: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    retried_errors: int = 0  # error records superseded by a new attempt on a later run

    @property
    def recorded(self) -> int:
        return sum(self.counts.values())

    @property
    def partial(self) -> bool:
        """Fewer records than the samples the run set out to record: a run in progress, or a
        complete published file that covers part of its dataset."""
        return bool(self.n_expected) and self.recorded < self.n_expected


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    out = {"toxbench": __version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


_LABELS = (None, 0, 1)
_COUNTS = ("latency_s", "tokens_in", "tokens_out", "cost_usd")


def record_from_line(line: bytes) -> Record:
    """A record from one JSONL line, checked by value as well as by key: a `status` of "OK" or a
    `pred` of 2 would otherwise be scored silently. ValueError names the field at fault."""
    row = orjson.loads(line)
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    record = Record(**row)  # TypeError: a key missing or unknown
    if not isinstance(record.sample_id, str) or not record.sample_id:
        raise ValueError(f"sample_id {record.sample_id!r} is not an id")
    if record.status not in STATUSES:
        raise ValueError(f"status {record.status!r} is not one of {', '.join(STATUSES)}")
    for name in ("pred", "gold"):
        value = getattr(record, name)
        if isinstance(value, bool) or value not in _LABELS:
            raise ValueError(f"{name} {value!r} is not 0, 1 or null")
    if record.pred is not None and record.status != "ok":
        raise ValueError(f"status {record.status!r} with pred {record.pred!r} (only an ok record has a label)")
    score = record.score
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0
    ):
        raise ValueError(f"score {score!r} is not a probability")
    if record.raw is not None and not isinstance(record.raw, str):
        raise ValueError("raw is not a text")
    for name in _COUNTS:
        value = getattr(record, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
            raise ValueError(f"{name} {value!r} is not a number of at least 0")
    if (
        isinstance(record.attempts, bool)
        or not isinstance(record.attempts, int)
        or record.attempts < 0
        or not isinstance(record.cached, bool)
    ):
        raise ValueError("attempts or cached of the wrong type")
    return record


def read_records(path: Path, *, repair: bool = False) -> list[Record]:
    """One record per sample, the last line written for it (a retried error is superseded by its
    new answer), in the order samples were first recorded. A torn last line (a crash mid-write) is
    cut off if repair, else reported with the command that repairs it."""
    if path.exists() and not path.is_file():  # a FIFO would block, a device never end
        raise ToxbenchError(f"{path}: not a regular file; a run's records are a file `toxbench run` wrote")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a torn line
    records: dict[str, Record] = {}
    for number, line in enumerate(lines, start=1):
        try:
            record = record_from_line(line)
        except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise ToxbenchError(
                f"{path}: line {number} is not a valid record ({exc}); remove that line, or run "
                f"`toxbench runs repair {path.parent}` to drop it"
            ) from None
        records[record.sample_id] = record
    if tail:
        if not repair:
            raise ToxbenchError(
                f"{path}: the last line is cut off (the run was interrupted); run it again to resume, "
                f"or `toxbench runs repair {path.parent}`"
            )
        with open(path, "r+b") as fh:
            fh.truncate(len(data) - len(tail))
    return list(records.values())


class RunWriter:
    """Opens (or resumes) a run directory and appends records as they arrive.

    Samples already recorded are skipped, except `error` records when retry_errors: those samples
    are asked again and their new line supersedes the error (the file is compacted to one line per
    sample when the run finishes). A run's status only moves from running to complete: opening a
    run, or a command that fails before recording anything, changes nothing on disk."""

    def __init__(self, runs_dir: Path, spec: RunSpec, n_expected: int | None = None, retry_errors: bool = True) -> None:
        self.spec = spec
        self.run_id = spec.run_id()
        self.dir = Path(runs_dir) / self.run_id
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ToxbenchError(
                f"{runs_dir}: cannot create the run directory ({exc.strerror}); choose a writable --out/--runs"
            ) from None
        self._lock = FileLock(self.dir / LOCK)
        self.read_only = False
        try:  # one writer per run: a second process stops here instead of interleaving lines
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ToxbenchError(
                f"{self.dir}: another toxbench process is writing this run; wait for it to finish or stop it"
            ) from None
        except OSError as exc:  # a read-only checkout: a complete run is read as it is; anything to record is one line
            self._open_read_only(exc, retry_errors)
            return
        try:
            self._open(n_expected, retry_errors)
        except BaseException:
            self._lock.release()
            raise

    def _open_read_only(self, why: OSError, retry_errors: bool) -> None:
        """A run on a file system that cannot be written: fine when it is complete with nothing to
        ask again (re-running a published run from a read-only checkout), else one line."""
        self.read_only = True
        cannot = f"{self.dir}: cannot write this run ({why.strerror or why})"
        if not (self.dir / MANIFEST).exists():
            raise ToxbenchError(f"{cannot}; give --out a writable runs directory")
        self.manifest = read_manifest(self.dir)
        self._records = {r.sample_id: r for r in read_records(self.dir / PREDICTIONS)}
        if self.manifest.status != "complete":
            raise ToxbenchError(f"{cannot} and it has samples left to record; give --out a writable runs directory")
        if retry_errors and any(r.status == "error" for r in self._records.values()):
            raise ToxbenchError(
                f"{cannot} and its error samples would be asked again; give --out a writable runs directory, "
                "or --no-retry-errors to keep them as they are"
            )
        self.retrying, self.recorded = set(), set(self._records)
        self._counts = {s: 0 for s in STATUSES}
        self._cost, self._priced, self._appended, self._superseded = 0.0, 0, 0, 0
        for record in self._records.values():
            self._tally(record)
        self._fh = None

    def _open(self, n_expected: int | None, retry_errors: bool) -> None:
        new = not (self.dir / MANIFEST).exists()
        if new:
            self.manifest = RunManifest(
                run_id=self.run_id,
                spec=self.spec,
                started_at=_now(),
                versions=dict(library_versions()),
                n_expected=n_expected,
            )
        else:
            self.manifest = read_manifest(self.dir)
        self._records = {r.sample_id: r for r in read_records(self.dir / PREDICTIONS, repair=True)}
        self.retrying: set[str] = (
            {sid for sid, r in self._records.items() if r.status == "error"} if retry_errors else set()
        )
        self.recorded: set[str] = set(self._records) - self.retrying
        self._counts = {s: 0 for s in STATUSES}
        self._cost = 0.0
        self._priced = 0
        for record in self._records.values():
            self._tally(record)
        self._appended = 0
        self._superseded = 0
        if new:
            self._save_manifest()
        self._fh = open(self.dir / PREDICTIONS, "ab")  # noqa: SIM115 -- appended to line by line, closed by close()

    def records(self) -> list[Record]:
        """The run's records as they stand (one per sample)."""
        return list(self._records.values())

    def _tally(self, record: Record, sign: int = 1) -> None:
        self._counts[record.status] = self._counts.get(record.status, 0) + sign
        self._cost += sign * (record.cost_usd or 0.0)
        self._priced += sign * (record.cost_usd is not None)

    def _save_manifest(self) -> None:
        self.manifest.counts = dict(self._counts)
        self.manifest.cost_usd = round(self._cost, 6) if self._priced else None
        write_atomic(self.dir / MANIFEST, self.manifest.model_dump_json(indent=2))

    def _take(self, record: Record) -> bytes | None:
        sid = record.sample_id
        if sid in self.recorded:
            return None
        old = self._records.get(sid)
        if old is not None:  # an error being retried: the new line supersedes it
            self._tally(old, -1)
            self._superseded += 1
            self.manifest.retried_errors += 1
        self._records[sid] = record
        self.recorded.add(sid)
        self._tally(record)
        self._appended += 1
        return record.to_line()

    def append(self, record: Record) -> None:
        line = self._take(record)
        if line is not None:
            self._write(line)  # on disk as soon as it arrives: a crash loses only in-flight requests

    def extend(self, records: list[Record]) -> None:
        """Append results that arrived together (a replayed file) with one flush."""
        lines = [line for line in map(self._take, records) if line is not None]
        if lines:
            self._write(b"".join(lines))

    def _write(self, data: bytes) -> None:
        """Append and flush; a full disk is one line (a torn last line is cut off when the run resumes)."""
        if self._fh is None:
            raise ToxbenchError(f"{self.dir}: cannot write this run (read-only); give --out a writable runs directory")
        try:
            self._fh.write(data)
            self._fh.flush()
        except OSError as exc:
            raise ToxbenchError(
                f"{self.dir / PREDICTIONS}: cannot write records ({exc.strerror}); free space and run the same command "
                "again: what was recorded is kept and resumed"
            ) from None

    def finish(self, notes: list[str] | None = None) -> Path:
        """Mark the run complete (every sample recorded). A complete run that got no new record is
        left as it was."""
        if self.read_only:
            return self.dir
        self._fh.close()
        if self._appended or self.manifest.status != "complete" or (notes is not None and notes != self.manifest.notes):
            if self._superseded:  # one line per sample again
                write_atomic(self.dir / PREDICTIONS, b"".join(r.to_line() for r in self._records.values()))
            self.manifest.status = "complete"
            self.manifest.finished_at = _now()
            if notes is not None:
                self.manifest.notes = notes
            self._save_manifest()
        self._lock.release()
        return self.dir

    def close(self) -> None:
        """Stop without marking complete (Ctrl-C, crash, a full disk): what was recorded stays for
        resume, whose counts are rebuilt from the records (a manifest that cannot be saved now is
        no loss)."""
        if self._fh is not None and not self._fh.closed:
            try:
                self._fh.close()
                if self._appended:
                    self._save_manifest()
            except (OSError, ToxbenchError):
                pass
        if self._lock.is_locked:
            self._lock.release()


def write_run(runs_dir: Path, spec: RunSpec, records: list[Record], notes: list[str]) -> Path:
    """Record a run computed from other runs (an ensemble, a calibrated threshold) in one go; the
    same specification again finds the complete run and changes nothing."""
    writer = RunWriter(runs_dir, spec, n_expected=len(records))
    try:
        writer.extend(records)
    except BaseException:
        writer.close()
        raise
    return writer.finish(notes)


@dataclass
class Run:
    """A run read back from disk."""

    dir: Path
    manifest: RunManifest
    records: list[Record]

    @property
    def spec(self) -> RunSpec:
        return self.manifest.spec

    @classmethod
    def load(cls, run_dir: Path | str) -> Run:
        run_dir = Path(run_dir)
        manifest = read_manifest(run_dir)
        return cls(run_dir, manifest, read_records(run_dir / PREDICTIONS))

    def frame(self):
        """The records as a pandas DataFrame, one row a sample, a column per `Record` field;
        pandas is imported here, on first use."""
        import pandas as pd

        return pd.DataFrame([astuple(r) for r in self.records], columns=list(RECORD_FIELDS))


def read_manifest(run_dir: Path) -> RunManifest:
    path = Path(run_dir) / MANIFEST
    try:
        return RunManifest.model_validate_json(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ToxbenchError(f"{run_dir}: not a run directory (no {MANIFEST})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ToxbenchError(
            f"{path}: unreadable manifest ({str(exc).splitlines()[0]}); delete the run directory to redo it"
        ) from None


def repair_run(run_dir: Path) -> str:
    """Make a damaged run readable again: drop lines that are not records (a torn last line after a
    crash, say), keep one line per sample, and rebuild the manifest's counts and cost from what is
    left. A manifest that cannot be read cannot be rebuilt (it holds the run's specification)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    lock = FileLock(run_dir / LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ToxbenchError(f"{run_dir}: a toxbench process is writing this run; wait for it to finish") from None
    try:
        path = run_dir / PREDICTIONS
        data = path.read_bytes() if path.is_file() else b""
        records: dict[str, Record] = {}
        dropped = []
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line:
                continue
            try:
                record = record_from_line(line)
            except (ValueError, TypeError):
                dropped.append(number)
                continue
            records[record.sample_id] = record
        write_atomic(path, b"".join(r.to_line() for r in records.values()))
        counts = {s: 0 for s in STATUSES}
        for record in records.values():
            counts[record.status] += 1
        manifest.counts = counts
        priced = [r.cost_usd for r in records.values() if r.cost_usd is not None]
        manifest.cost_usd = round(sum(priced), 6) if priced else None
        if manifest.status == "complete" and manifest.n_expected and len(records) < manifest.n_expected:
            manifest.status = "running"  # samples were lost: running it again records them
        write_atomic(run_dir / MANIFEST, manifest.model_dump_json(indent=2))
    finally:
        lock.release()
    lines = (
        f"dropped line{'s' if len(dropped) > 1 else ''} {', '.join(map(str, dropped))}"
        if dropped
        else "no line dropped"
    )
    return f"{run_dir}: {lines}; {len(records)} samples recorded ({', '.join(f'{k} {v}' for k, v in counts.items() if v) or 'none'}); status {manifest.status}"


# What can tell two runs with the same label apart, and how to say it.
DISTINGUISHING = (
    ("dataset", "{}"),
    ("prompt", "{}"),
    ("lang", "{}"),
    ("shots", "{}-shot"),
    ("shots_seed", "seed {}"),
    ("shot_pool", "{} examples"),
    ("subset", "{}"),
    ("parser", "parser {}"),
    ("toxbench_version", "toxbench {}"),
)


def distinct_labels(specs: dict[str, RunSpec]) -> dict[str, str]:
    """run id -> a label no other run in `specs` shows: the run's label, and where several runs
    share it, what differs between them in brackets (prompt, language, shots, seed, subset, ...),
    and the run id's hash as a last resort (adapter arguments that differ)."""
    groups: dict[str, list[str]] = {}
    for run_id, spec in specs.items():
        groups.setdefault(spec.label or run_id, []).append(run_id)
    out = {}
    for label, ids in groups.items():
        if len(ids) == 1:
            out[ids[0]] = label
            continue
        differing = [(f, fmt) for f, fmt in DISTINGUISHING if len({getattr(specs[i], f) for i in ids}) > 1]
        for run_id in ids:
            parts = [
                fmt.format(getattr(specs[run_id], f)) for f, fmt in differing if getattr(specs[run_id], f) is not None
            ]
            out[run_id] = f"{label} [{', '.join(parts) or 'whole dataset'}]" if differing else label
        names = [out[i] for i in ids]
        for run_id in ids:
            if names.count(out[run_id]) > 1:
                out[run_id] += f" #{run_id.rsplit('--', 1)[-1][:6]}"
    return out


def damaged(run_dir: Path, problem: Exception) -> str:
    """The one-line warning for a run that cannot be read, with what repairs it."""
    fix = (
        "delete the run directory to redo it"
        if "manifest" in str(problem)
        else f"repair it with `toxbench runs repair {run_dir}`"
    )
    return f"skipped {run_dir}: {str(problem).split('; ')[0]}; {fix}"


def readable_runs(runs_dir: Path) -> tuple[list[tuple[Path, RunManifest]], list[str]]:
    """Every run directory whose manifest reads, with it, and a warning for each that does not: one
    damaged run never hides the others."""
    runs, warnings = [], []
    for run_dir in iter_run_dirs(runs_dir):
        try:
            runs.append((run_dir, read_manifest(run_dir)))
        except ToxbenchError as exc:
            warnings.append(damaged(run_dir, exc))
    return runs, warnings


def require_runs_dir(runs_dir: Path, option: str = "--runs") -> Path:
    """A runs directory that exists; else a one-line error naming the option that gave it (an empty
    listing would look like no runs)."""
    if not Path(runs_dir).is_dir():
        raise ToxbenchError(
            f"{runs_dir}: no such runs directory; give {option} the directory `toxbench run --out` wrote to"
        )
    return Path(runs_dir)


def iter_run_dirs(runs_dir: Path) -> Iterator[Path]:
    """Every run directory under runs_dir (those with a manifest), in name order."""
    if not Path(runs_dir).is_dir():
        return
    for child in sorted(Path(runs_dir).iterdir()):
        if (child / MANIFEST).is_file():
            yield child


SOURCES = ("yours", "release", "all")


def run_source(spec: RunSpec) -> str:
    """Where a run's answers come from: "release" for a replayed published file of the ToxiFrench
    release, "yours" for every run made here (live, local, ensembles, calibrations)."""
    return "release" if spec.adapter == "replay" else "yours"


SOURCE_WORDS = {
    "release": "replayed from the release's prediction files",
    "yours": "made with toxbench",
    "included": "from other runs directories (--include-runs)",
}


def sources_text(counts: dict[str, int]) -> str:
    """Where a table's runs come from, e.g. "66 replayed from the release's prediction files, 2
    made with toxbench" (the leaderboard and the ensembles say it alike)."""
    return ", ".join(f"{n} {SOURCE_WORDS[k]}" for k, n in counts.items() if n)


def short_id(run_dir: Path | str) -> str:
    """The run id's hash, cut to 8 characters: what tells runs apart at 80 columns (`find_run`
    takes it)."""
    return Path(run_dir).name.rsplit("--", 1)[-1][:8]


def lock_held(run_dir: Path) -> bool:
    """Whether a toxbench process is writing the run now (it holds the run's lock). A run whose
    manifest says `running` and whose lock nobody holds was stopped (Ctrl-C, a crash)."""
    lock = FileLock(Path(run_dir) / LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:  # a read-only runs directory: nobody can be writing it
        return False
    lock.release()
    return False


def run_state(run_dir: Path, manifest: RunManifest) -> str:
    """complete, partial (complete, on part of the samples it expected), running (a process is
    writing it) or stopped (not complete, and nobody is writing it: run the command again)."""
    if manifest.status == "complete":
        return "partial" if manifest.partial else "complete"
    return "running" if lock_held(run_dir) else "stopped"


def find_run(ref: str | Path, runs_dir: Path) -> Path:
    """A run directory from a path, a run id, a unique prefix of one, its short id, a label (as
    `runs list` shows it), or a model name (`adapter:model`, or the model alone) when that names
    one run. Several matches name each; none suggests the closest names."""
    path = Path(ref)
    if (path / MANIFEST).is_file():
        return path
    ref = str(ref)
    dirs = list(iter_run_dirs(runs_dir))
    exact = [d for d in dirs if d.name == ref]
    if exact:
        return exact[0]
    matches = [d for d in dirs if d.name.startswith(ref) or (len(ref) >= 6 and short_id(d).startswith(ref))]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ToxbenchError(
            f"{ref!r} matches {len(matches)} runs under {runs_dir} ({', '.join(d.name for d in matches[:3])}, ...): give more of the id"
        )
    readable = readable_runs(runs_dir)[0]
    labels = distinct_labels({d.name: m.spec for d, m in readable})
    for named in (
        lambda d, m: ref in (m.spec.label, labels[d.name]),
        lambda d, m: ref in (f"{m.spec.adapter}:{m.spec.model}", m.spec.model, labels[d.name].split(" [")[0]),
    ):
        matches = [d for d, m in readable if named(d, m)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = "; ".join(f"{short_id(d)} {labels[d.name]}" for d in matches[:6])
            raise ToxbenchError(
                f"{ref!r} names {len(matches)} runs under {runs_dir}: {listed}{' ...' if len(matches) > 6 else ''}; "
                "give one of these ids"
            )
    import difflib

    names = sorted({labels[d.name] for d, _ in readable} | {f"{m.spec.adapter}:{m.spec.model}" for _, m in readable})
    close = difflib.get_close_matches(ref, names, n=3, cutoff=0.5)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    raise ToxbenchError(
        f"no run {ref!r} under {runs_dir}{hint}: give a run directory, a run id or a label (`toxbench runs list --runs {runs_dir}`)"
    )
