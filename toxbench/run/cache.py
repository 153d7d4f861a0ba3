"""The response cache: SQLite in WAL mode, shared by every run and process.

The key is a hash of everything that determines a backend's raw answer (adapter name and its
`cache_identity`, the rendered messages or text); a hit sends no request. What is stored is the
backend's answer before any label policy (HELM keys its cache by the raw request and applies no
decision rule in the client). Only answers are cached, never errors, and never anything secret:
keys are not part of requests, and an answer that echoes one is redacted before it is stored.
"""

from __future__ import annotations

import errno
import hashlib
import sqlite3
import threading
from dataclasses import fields, replace
from pathlib import Path

import orjson

from toxbench._util import CACHE_ENV
from toxbench.errors import ToxbenchError
from toxbench.redaction import redact
from toxbench.types import Answer, Request

SCHEMA = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer BLOB NOT NULL, created INTEGER DEFAULT (strftime('%s', 'now')))"


def cache_key(adapter_name: str, adapter_identity: dict, request: Request) -> str:
    payload = {
        "adapter": adapter_name,
        "params": adapter_identity,
        "text": request.text,
        "lang": request.lang,
        "messages": list(request.messages),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


COLUMNS = {"key", "answer"}
ANSWER_FIELDS = {f.name for f in fields(Answer)}


class ResponseCache:
    """A cache that cannot be written (a read-only file system, a full disk) is an optimisation
    lost, said once in `notes`, never a failed run; a file that is not this cache (another schema,
    not SQLite) is one line before any request. A row that cannot be read back (damaged, or written
    by a newer toxbench with other fields) is a miss, and the new answer replaces it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.writable = True
        self.notes: list[str] = []
        if self.path.exists() and not self.path.is_file():
            raise self._unusable("not a regular file")
        try:
            self._db = self._open()
        except (sqlite3.OperationalError, OSError) as exc:
            if not _unwritable(exc):
                raise self._unusable(exc) from None
            self.writable = False
            self._db = self._open_read_only(exc)
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        self._check_schema()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _open_read_only(self, why: Exception) -> sqlite3.Connection | None:
        """The cache read as it is (immutable: no journal is written), or None when there is none."""
        if not self.path.is_file():
            self.notes.append(f"response cache {self.path} cannot be created ({why}); this run asks every request")
            return None
        self.notes.append(f"response cache {self.path} is read-only ({why}): answers are read from it, none are added")
        try:
            return sqlite3.connect(
                f"{self.path.resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None

    def _check_schema(self) -> None:
        if self._db is None:
            return
        try:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(answers)")}
        except sqlite3.Error as exc:
            raise self._unusable(exc) from None
        if not columns and self._tables() == []:  # an empty file: SQLite could not write its table (a full disk)
            self._db.close()
            self._db, self.writable = None, False
            self.notes.append(
                f"response cache {self.path} cannot be written (its table was not created: a full disk?); this run asks every request"
            )
            return
        if not columns >= COLUMNS:
            self._db.close()
            raise self._unusable(
                f"its table `answers` has columns {', '.join(sorted(columns)) or 'none'}, not {', '.join(sorted(COLUMNS))}"
            )

    def _tables(self) -> list[str]:
        try:
            return [name for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        except sqlite3.Error:
            return []

    def _unusable(self, why: object) -> ToxbenchError:
        return ToxbenchError(
            f"{self.path}: not a usable response cache ({why}); delete the file (cached answers are then asked "
            f"again), point {CACHE_ENV} elsewhere, or run with --no-cache"
        )

    def get(self, key: str) -> Answer | None:
        if self._db is None:
            return None
        try:
            with self._lock:
                row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            stored = orjson.loads(row[0])
            if not isinstance(stored, dict) or not set(stored) <= ANSWER_FIELDS:
                return None  # damaged, or a newer toxbench's row: asked again, and replaced
            return Answer(**stored)
        except (sqlite3.Error, orjson.JSONDecodeError, TypeError, ValueError):
            return None

    def put(self, key: str, answer: Answer) -> None:
        if not self.writable:
            return
        blob = orjson.dumps(
            replace(answer, raw=redact(answer.raw), text=redact(answer.text))
        )  # a server may echo the key
        try:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, blob))
        except sqlite3.Error as exc:  # a full disk: the run goes on, uncached from here
            self.writable = False
            self.notes.append(
                f"response cache {self.path}: answers are no longer added ({exc}); the run's records are complete"
            )

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()


def _unwritable(exc: Exception) -> bool:
    """SQLite's (or the file system's) way of saying it cannot write where the cache lives, not that
    the file is not a cache."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC)
    text = str(exc).lower()
    return any(s in text for s in ("readonly", "read-only", "unable to open", "disk is full", "disk i/o error"))
