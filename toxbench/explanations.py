"""Explanation files, beside a run's records: `explainers.json` (the settings of each explainer
that wrote into the run, by id) and `explanations.jsonl` (one line per sample and explainer).

An explainer's id is a hash of its settings (method, span rule and its constants, faithfulness
fractions, ...), so explaining again with the same settings resumes (samples already explained
are skipped, error lines are retried and superseded), and other settings add lines beside them.
Lines are appended and flushed as they arrive; a torn last line (a crash) is ignored on reading
and cut off when the next explainer opens the file.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import orjson
from filelock import FileLock, Timeout

from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError

EXPLAINERS = "explainers.json"
EXPLANATIONS = "explanations.jsonl"
LOCK = "explain.lock"


def explainer_id(settings: dict) -> str:
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:12]


def read_explainers(run_dir: Path) -> dict[str, dict]:
    path = Path(run_dir) / EXPLAINERS
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ToxbenchError(
            f"{path}: not valid JSON ({exc}); delete it and explanations.jsonl, then explain again"
        ) from None


def _lines(path: Path) -> tuple[list[dict], int]:
    """Parsed lines and the byte length of the complete ones (a torn tail is left out)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    complete = data[: data.rfind(b"\n") + 1]
    out = []
    for number, line in enumerate(complete.splitlines(), start=1):
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise ToxbenchError(
                f"{path}: line {number} is not valid JSON; remove that line and explain again (its sample is redone)"
            ) from None
    return out, len(complete)


def read_explanations(run_dir: Path, explainer: str | None = None) -> tuple[str, dict, dict[str, dict]]:
    """(explainer id, its settings, the last line per sample). `explainer` is an id or a prefix of
    one; it may be left out when only one explainer wrote into the run."""
    run_dir = Path(run_dir)
    known = read_explainers(run_dir)
    if not known:
        raise ToxbenchError(f"{run_dir}: no explanations; write them with `toxbench explain --run {run_dir}`")
    if explainer is None:
        if len(known) > 1:
            listed = "; ".join(
                f"{k} ({v['settings']['method']}, {v['settings']['extraction']['rule']})" for k, v in known.items()
            )
            raise ToxbenchError(
                f"{run_dir}: {len(known)} explainers wrote into this run ({listed}); choose one with --explainer ID"
            )
        explainer = next(iter(known))
    matches = [k for k in known if k.startswith(explainer)]
    if len(matches) != 1:
        raise ToxbenchError(
            f"{run_dir}: no single explainer {explainer!r} (known: {', '.join(known)}); give --explainer with one of them"
        )
    chosen = matches[0]
    lines, _ = _lines(run_dir / EXPLANATIONS)
    return (
        chosen,
        known[chosen]["settings"],
        {line["sample_id"]: line for line in lines if line.get("explainer") == chosen},
    )


def every_explanation(run_dir: Path) -> dict[str, tuple[dict, dict[str, dict]]]:
    """Explainer id -> (its settings, the last line per sample), for every explainer of a run, from
    one read of the file (leaderboards summarise them all)."""
    known = read_explainers(run_dir)
    out: dict[str, tuple[dict, dict[str, dict]]] = {k: (v["settings"], {}) for k, v in known.items()}
    for line in _lines(Path(run_dir) / EXPLANATIONS)[0] if known else ():
        if line.get("explainer") in out:
            out[line["explainer"]][1][line["sample_id"]] = line
    return out


class ExplanationWriter:
    """Appends one explainer's lines to a run directory (one writer per run at a time)."""

    def __init__(self, run_dir: Path, settings: dict) -> None:
        self.dir = Path(run_dir)
        self.settings = settings
        self.id = explainer_id(settings)
        self._lock = FileLock(self.dir / LOCK)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise ToxbenchError(
                f"{self.dir}: another toxbench process is explaining this run; wait for it to finish or stop it"
            ) from None
        try:
            path = self.dir / EXPLANATIONS
            lines, complete = _lines(path)
            if path.is_file() and path.stat().st_size > complete:  # a torn line from a crash
                with open(path, "r+b") as fh:
                    fh.truncate(complete)
            mine = {line["sample_id"]: line for line in lines if line.get("explainer") == self.id}
            self.recorded = {sid for sid, line in mine.items() if line.get("status") == "ok"}
            self.counts = {"ok": len(self.recorded), "error": 0}
            self._fh = open(path, "ab")  # noqa: SIM115 -- appended to line by line, closed by close()
        except BaseException:
            self._lock.release()
            raise

    def append(self, line: dict) -> None:
        if line["sample_id"] in self.recorded:
            return
        line = {
            "sample_id": line["sample_id"],
            "explainer": self.id,
            **{k: v for k, v in line.items() if k != "sample_id"},
        }
        if not self.counts["ok"] and not self.counts["error"]:
            self._register()
        self._fh.write(orjson.dumps(line) + b"\n")
        self._fh.flush()
        self.counts[line["status"]] += 1
        if line["status"] == "ok":
            self.recorded.add(line["sample_id"])

    def _register(self) -> None:
        known = read_explainers(self.dir)
        if self.id not in known:
            known[self.id] = {
                "settings": self.settings,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            write_atomic(self.dir / EXPLAINERS, json.dumps(known, indent=2, ensure_ascii=False))

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        if self._lock.is_locked:
            self._lock.release()
