"""Download one pinned file: stream it to a temporary file, check size and sha256, then rename.

The manifest's size bounds the download: a body that grows past it (an endless or a
gzip-inflating answer) is stopped there, and the whole download has a deadline, not only each read.
Temporary `.part` files a killed process left behind are removed before the next attempt.

A file whose checksum differs is never placed: the temporary file is removed and the caller gets
an error naming the URL and both digests. The rename is atomic, so a crash leaves either the old
state or the verified file, never a partial one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from toxbench._util import give_ordinary_mode
from toxbench.data.manifest import ManifestFile

TIMEOUT_S = 30.0  # per read
DEADLINE_S = 120.0  # a whole download, plus the time its size takes at SLOWEST_BYTES_S
SLOWEST_BYTES_S = 50_000
STALE_PART_S = 3600.0  # a .part file this old belongs to no running download


class FetchError(Exception):
    """The download failed or produced different bytes; the message is one clause. `unreachable`:
    no connection could be made (no network, a wrong mirror), so other files will fail alike."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    )


def remove_stale_parts(folder: Path, name: str) -> None:
    """Delete the `.part` files of `name` that a killed download left in `folder`."""
    now = time.time()
    for part in folder.glob(f".{name}.*.part"):
        try:
            if now - part.stat().st_mtime > STALE_PART_S:
                part.unlink()
        except OSError:
            pass


def fetch_file(entry: ManifestFile, url: str, target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_parts(target.parent, target.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise FetchError(f"cannot write {target} ({exc.strerror}); give --data-dir a writable directory") from None
    digest = hashlib.sha256()
    size = 0
    tmp = Path(tmp_name)
    deadline = time.monotonic() + DEADLINE_S + entry.bytes / SLOWEST_BYTES_S
    try:
        with os.fdopen(fd, "wb") as out, _progress() as progress:
            task = progress.add_task(entry.path, total=entry.bytes)
            try:
                with httpx.stream("GET", url, timeout=TIMEOUT_S, follow_redirects=True) as response:
                    if response.status_code != 200:
                        raise FetchError(f"download of {url} failed: HTTP {response.status_code}")
                    for (
                        chunk
                    ) in response.iter_bytes():  # as it arrives: a chunk size would wait for 64 KiB before any check
                        size += len(chunk)
                        if size > entry.bytes:
                            raise FetchError(
                                f"refused {url}: more than the {entry.bytes:,} bytes the manifest pins (the upstream file "
                                "changed, or the server sends an endless or inflating body)"
                            )
                        if time.monotonic() > deadline:
                            raise FetchError(
                                f"download of {url} stopped: {size:,} of {entry.bytes:,} bytes after "
                                f"{DEADLINE_S + entry.bytes / SLOWEST_BYTES_S:.0f} s; try again, or another --mirror"
                            )
                        out.write(chunk)
                        digest.update(chunk)
                        progress.update(task, advance=len(chunk))
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
                unreachable = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                raise FetchError(f"download of {url} failed ({reason})", unreachable) from None
            except OSError as exc:  # a full disk
                raise FetchError(
                    f"cannot write {target} ({exc.strerror}); free space in the data directory or give --data-dir another"
                ) from None
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise FetchError(
                    f"cannot write {target} ({exc.strerror}); free space in the data directory or give --data-dir another"
                ) from None
        got = digest.hexdigest()
        if size != entry.bytes or got != entry.sha256:
            raise FetchError(
                f"refused {url}: got {size} bytes with sha256 {got[:12]}…, expected {entry.bytes} "
                f"bytes with sha256 {entry.sha256[:12]}… (the upstream file changed or the download "
                "was corrupted)"
            )
        give_ordinary_mode(tmp, target)  # not the temporary file's 0600: a data directory is often shared
        try:
            os.replace(tmp, target)
        except OSError as exc:
            raise FetchError(f"cannot write {target} ({exc.strerror}); give --data-dir a writable directory") from None
    finally:
        tmp.unlink(missing_ok=True)
