"""The unit every dataset yields and every record refers to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled text. `id` is stable across runs so records join to data by id, never by text."""

    id: str
    text: str
    label: int  # 1 = toxic, 0 = non-toxic
    lang: str


def text_id(text: str, prefix: str = "") -> str:
    """A stable id for data without ids: the first 12 hex digits of the text's sha1."""
    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
