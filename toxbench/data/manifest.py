"""The shipped manifest: every data file toxbench reads, with its pinned upstream URL, size and
sha256. Its own module so that the data directory (which fetches) and the fetcher (which checks
what it fetched against an entry) both read it without importing each other."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from toxbench.errors import DataError


@dataclass(frozen=True)
class ManifestFile:
    """One pinned upstream file."""

    path: str
    url: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    sources: dict
    files: dict[str, ManifestFile]

    @classmethod
    def shipped(cls) -> Manifest:
        text = resources.files("toxbench.data").joinpath("manifest.json").read_text("utf-8")
        raw = json.loads(text)
        files = {f["path"]: ManifestFile(**f) for f in raw["files"]}
        return cls(sources=raw["sources"], files=files)

    def get(self, rel: str) -> ManifestFile:
        try:
            return self.files[rel]
        except KeyError:
            raise DataError(f"{rel} is not a file toxbench knows (not in its data manifest)") from None
