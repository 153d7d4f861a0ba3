"""The response cache: SQLite in WAL mode, shared by every run and process.

The key is a hash of everything that determines a backend's raw answer (adapter name and its
`cache_identity`, the rendered messages or text); a hit sends no request. What is stored is the
backend's answer before any label policy (HELM keys its cache by the raw request and applies no
decision rule in the client). Only answers are cached, never errors, and never anything secret:
keys are not part of requests, and an answer that echoes one is redacted before it is stored.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path

import orjson

from toxbench._util import CACHE_ENV
from toxbench.errors import ToxbenchError
from toxbench.redaction import redact
from toxbench.types import Answer, Request

SCHEMA = "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, answer BLOB NOT NULL, created INTEGER DEFAULT (strftime('%s', 'now')))"


def cache_key(adapter_name: str, adapter_identity: dict, request: Request) -> str:
    payload = {"adapter": adapter_name, "params": adapter_identity, "text": request.text, "lang": request.lang, "messages": list(request.messages)}
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._db.execute("SELECT count(*) FROM answers LIMIT 1").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise ToxbenchError(f"{self.path}: not a usable response cache ({exc}); delete the file (cached answers are then asked "
                                f"again), point {CACHE_ENV} elsewhere, or run with --no-cache") from None

    def get(self, key: str) -> Answer | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM answers WHERE key = ?", (key,)).fetchone()
        return Answer(**orjson.loads(row[0])) if row else None

    def put(self, key: str, answer: Answer) -> None:
        blob = orjson.dumps(replace(answer, raw=redact(answer.raw), text=redact(answer.text)))  # a server may echo the key
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO answers (key, answer) VALUES (?, ?)", (key, blob))

    def close(self) -> None:
        with self._lock:
            self._db.close()
