"""Where the data files live, and how they get there verified.

The data directory mirrors the upstream layout (`toxifrench/benchmark/...`, `rtp-lx/...`). It is
found in this order: an explicit `--data-dir`, `TOXBENCH_DATA_DIR`, then a per-user cache
directory. Every file the project reads is listed in the shipped manifest with its pinned upstream
URL and sha256, so a file is either verified or refused, never silently different.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path

from toxbench._util import DATA_DIR_ENV, MIRROR_ENV, OFFLINE_ENV, data_dir_default
from toxbench._util import sha256_file as sha256_of
from toxbench.data.manifest import Manifest, ManifestFile
from toxbench.errors import DataError


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The data directory and how it was chosen (for `data list` to say)."""
    if explicit:
        return Path(explicit).expanduser().resolve(), "--data-dir"
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve(), DATA_DIR_ENV
    return data_dir_default(), "user cache directory"


FileStatus = str  # "ok" | "missing" | "mismatch"


class DataDir:
    """A data directory checked against the shipped manifest.

    `path(rel)` is the one way code reaches a data file: it fetches the file on first use when it
    is missing and checks its sha256 once per process.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        manifest: Manifest | None = None,
        mirror: str | None = None,
        auto_fetch: bool | None = None,
    ) -> None:
        self.root, self.source = resolve_data_dir(root)
        self.manifest = manifest or Manifest.shipped()
        self.mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
        if auto_fetch is None:
            auto_fetch = os.environ.get(OFFLINE_ENV, "").lower() not in ("1", "true", "yes")
        self.auto_fetch = auto_fetch
        self._verified: set[str] = set()

    def url_for(self, entry: ManifestFile) -> str:
        """The pinned upstream URL, or the same path under a mirror (an institution's or a test's)."""
        if self.mirror:
            return self.mirror.rstrip("/") + "/" + entry.path
        return entry.url

    def status(self, rel: str) -> FileStatus:
        entry = self.manifest.get(rel)
        target = self.root / rel
        if not target.is_file():
            return "missing"
        if target.stat().st_size != entry.bytes or sha256_of(target) != entry.sha256:
            return "mismatch"
        return "ok"

    def path(self, rel: str) -> Path:
        """The verified local path of a manifest file, fetching it first if it is missing."""
        target = self.root / rel
        if rel in self._verified:
            return target
        entry = self.manifest.get(rel)
        if not target.is_file():
            self._fetch_missing(entry)
        elif target.stat().st_size != entry.bytes or sha256_of(target) != entry.sha256:
            raise DataError(
                f"{target}: checksum does not match the pinned upstream file (expected sha256 "
                f"{entry.sha256[:12]}…); run `toxbench data fetch --force` to replace it"
            )
        self._verified.add(rel)
        return target

    def _fetch_missing(self, entry: ManifestFile) -> None:
        from toxbench.data.fetch import FetchError, fetch_file

        target = self.root / entry.path
        how = (
            f"run `toxbench data fetch` where there is network, copy the file to {target}, "
            f"or point --data-dir / {DATA_DIR_ENV} at a directory that has it"
        )
        if not self.auto_fetch:
            raise DataError(f"missing data file {entry.path} in {self.root} ({OFFLINE_ENV} is set); {how}")
        try:
            fetch_file(entry, self.url_for(entry), target)
        except FetchError as exc:
            raise DataError(f"missing data file {entry.path} in {self.root} and {exc}; {how}") from None

    def fetch(
        self,
        rels: Iterable[str] | None = None,
        *,
        force: bool = False,
        on_file: Callable[[str, str], None] | None = None,
    ) -> dict[str, str]:
        """Download every listed file that is missing (or differs, with force); returns rel -> outcome.
        When the source cannot be reached at all, it stops at the first file with one error that
        says how many files are missing and how to provide them, rather than failing each in turn."""
        from toxbench.data.fetch import FetchError, fetch_file

        rels = list(rels if rels is not None else sorted(self.manifest.files))
        outcomes: dict[str, str] = {}
        for rel in rels:
            entry = self.manifest.get(rel)
            state = self.status(rel)
            if state == "ok" and not force:
                outcome = "present"
            elif state == "mismatch" and not force:
                outcome = "mismatch (kept; use --force to replace)"
            else:
                try:
                    fetch_file(entry, self.url_for(entry), self.root / rel)
                    outcome = "fetched"
                except FetchError as exc:
                    if exc.unreachable:
                        todo = sum(1 for r in rels[len(outcomes) :] if self.status(r) != "ok" or force)
                        raise DataError(
                            f"{todo} of {len(rels)} files are not in {self.root} and {exc}; run where there is network, "
                            f"point --mirror / {MIRROR_ENV} at a reachable copy, or copy the files into {self.root}"
                        ) from None
                    outcome = f"failed: {exc}"
            outcomes[rel] = outcome
            if on_file:
                on_file(rel, outcome)
        return outcomes

    @cached_property
    def known_files(self) -> list[str]:
        return sorted(self.manifest.files)
