"""Download one pinned file: stream it to a temporary file, check size and sha256, then rename.

A file whose checksum differs is never placed: the temporary file is removed and the caller gets
an error naming the URL and both digests. The rename is atomic, so a crash leaves either the old
state or the verified file, never a partial one.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from toxbench._util import give_ordinary_mode
from toxbench.data.datadir import ManifestFile

TIMEOUT_S = 30.0


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


def fetch_file(entry: ManifestFile, url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _progress() as progress:
            task = progress.add_task(entry.path, total=entry.bytes)
            try:
                with httpx.stream("GET", url, timeout=TIMEOUT_S, follow_redirects=True) as response:
                    if response.status_code != 200:
                        raise FetchError(f"download of {url} failed: HTTP {response.status_code}")
                    for chunk in response.iter_bytes(1 << 16):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        progress.update(task, advance=len(chunk))
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
                unreachable = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                raise FetchError(f"download of {url} failed ({reason})", unreachable) from None
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if size != entry.bytes or got != entry.sha256:
            raise FetchError(
                f"refused {url}: got {size} bytes with sha256 {got[:12]}…, expected {entry.bytes} "
                f"bytes with sha256 {entry.sha256[:12]}… (the upstream file changed or the download "
                "was corrupted)"
            )
        give_ordinary_mode(tmp, target)  # not the temporary file's 0600: a data directory is often shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
