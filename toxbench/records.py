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
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import orjson
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field

from toxbench import __version__
from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError
from toxbench.types import STATUSES, Record

MANIFEST = "manifest.json"
LOCK = "run.lock"
PREDICTIONS = "predictions.jsonl"


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
    parser: str | None = None
    prompt_sha256: str | None = None  # the rendered prompt frame: editing a template makes a new run
    subset: str | None = None  # a seeded balanced sample of the dataset, e.g. "balanced-200-seed0"
    label: str | None = None  # a human name for the run (a replayed file's name); ids stay hash-based
    toxbench_version: str = __version__

    def run_id(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True, ensure_ascii=False).encode("utf-8")
        digest = hashlib.sha256(blob).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{self.dataset}--{self.label or self.adapter + '-' + self.model}").strip("-")
        return f"{slug[:80]}--{digest}"


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="allow")

    run_id: str
    spec: RunSpec
    status: str = "running"  # running | complete
    n_expected: int | None = None
    counts: dict[str, int] = Field(default_factory=dict)
    cost_usd: float = 0.0
    started_at: str
    finished_at: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


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


def read_records(path: Path, *, repair: bool = False) -> list[Record]:
    """Records of a predictions file. A torn last line (a crash mid-write) is cut off if repair."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline, else a torn line
    loads = orjson.loads
    records: list[Record] = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(Record(**loads(line)))
        except (orjson.JSONDecodeError, TypeError) as exc:
            raise ToxbenchError(f"{path}: line {number} is not a valid record ({exc}); remove that line to resume") from None
    if tail:
        if not repair:
            raise ToxbenchError(f"{path}: the last line is cut off (the run was interrupted); run it again to resume")
        with open(path, "r+b") as fh:
            fh.truncate(len(data) - len(tail))
    return records


class RunWriter:
    """Opens (or resumes) a run directory and appends records as they arrive."""

    def __init__(self, runs_dir: Path, spec: RunSpec, n_expected: int | None = None) -> None:
        self.spec = spec
        self.run_id = spec.run_id()
        self.dir = Path(runs_dir) / self.run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(self.dir / LOCK)
        try:  # one writer per run: a second process stops here instead of interleaving lines
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ToxbenchError(f"{self.dir}: another toxbench process is writing this run; wait for it to finish or stop it") from None
        manifest_path = self.dir / MANIFEST
        if manifest_path.exists():
            self.manifest = RunManifest.model_validate_json(manifest_path.read_text("utf-8"))
            self.manifest.status = "running"
        else:
            self.manifest = RunManifest(run_id=self.run_id, spec=spec, started_at=_now(), versions=dict(library_versions()))
        self.manifest.n_expected = n_expected
        existing = read_records(self.dir / PREDICTIONS, repair=True)
        self.recorded: set[str] = {r.sample_id for r in existing}
        self._counts = {s: 0 for s in STATUSES}
        self._cost = 0.0
        for record in existing:
            self._tally(record)
        self._save_manifest()
        self._fh = open(self.dir / PREDICTIONS, "ab")

    def _tally(self, record: Record) -> None:
        self._counts[record.status] = self._counts.get(record.status, 0) + 1
        self._cost += record.cost_usd or 0.0

    def _save_manifest(self) -> None:
        self.manifest.counts = dict(self._counts)
        self.manifest.cost_usd = round(self._cost, 6)
        write_atomic(self.dir / MANIFEST, self.manifest.model_dump_json(indent=2))

    def append(self, record: Record) -> None:
        if record.sample_id in self.recorded:
            return
        self._fh.write(record.to_line())
        self._fh.flush()  # on disk as soon as it arrives: a crash loses only in-flight requests
        self.recorded.add(record.sample_id)
        self._tally(record)

    def extend(self, records: list[Record]) -> None:
        """Append results that arrived together (a replayed file) with one flush."""
        lines = []
        for record in records:
            if record.sample_id not in self.recorded:
                lines.append(record.to_line())
                self.recorded.add(record.sample_id)
                self._tally(record)
        self._fh.write(b"".join(lines))
        self._fh.flush()

    def finish(self, notes: list[str] | None = None) -> Path:
        self._fh.close()
        self.manifest.status = "complete"
        self.manifest.finished_at = _now()
        if notes is not None:
            self.manifest.notes = notes
        self._save_manifest()
        self._lock.release()
        return self.dir

    def close(self) -> None:
        """Stop without marking complete (Ctrl-C, crash): what was recorded stays for resume."""
        if not self._fh.closed:
            self._fh.close()
            self._save_manifest()
        if self._lock.is_locked:
            self._lock.release()


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
    def load(cls, run_dir: Path) -> "Run":
        manifest = read_manifest(run_dir)
        return cls(run_dir, manifest, read_records(run_dir / PREDICTIONS))


def read_manifest(run_dir: Path) -> RunManifest:
    path = Path(run_dir) / MANIFEST
    try:
        return RunManifest.model_validate_json(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ToxbenchError(f"{run_dir}: not a run directory (no {MANIFEST})") from None
    except ValueError as exc:
        raise ToxbenchError(f"{path}: unreadable manifest ({str(exc).splitlines()[0]}); delete the run directory to redo it") from None


def iter_run_dirs(runs_dir: Path) -> Iterator[Path]:
    """Every run directory under runs_dir (those with a manifest), in name order."""
    if not Path(runs_dir).is_dir():
        return
    for child in sorted(Path(runs_dir).iterdir()):
        if (child / MANIFEST).is_file():
            yield child


def find_run(ref: str | Path, runs_dir: Path) -> Path:
    """A run directory from a path, a run id, a unique prefix of one, or a unique label."""
    path = Path(ref)
    if (path / MANIFEST).is_file():
        return path
    ref = str(ref)
    dirs = list(iter_run_dirs(runs_dir))
    exact = [d for d in dirs if d.name == ref]
    if exact:
        return exact[0]
    matches = [d for d in dirs if d.name.startswith(ref)] or [d for d in dirs if read_manifest(d).spec.label == ref]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ToxbenchError(f"no run {ref!r} under {runs_dir}: give a run directory, a run id or a label (`toxbench runs list --runs {runs_dir}`)")
    raise ToxbenchError(f"{ref!r} matches {len(matches)} runs under {runs_dir} ({', '.join(d.name for d in matches[:3])}, ...): give more of the id")
