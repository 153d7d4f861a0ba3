"""Keeping keys out of everything toxbench keeps or prints.

A server may echo a request's Authorization header in any answer, 200 or 4xx, and an SDK may put
it in an exception's text. Every key an adapter read is remembered here, with the values of
environment variables named like secrets (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`), and
`redact` removes them all from a text. Texts are redacted *before* they are cut to a length
(`clip`): cutting first could split a key so that its first half survives the redaction."""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"
SHORTEST = 8  # values shorter than this are not keys (and replacing them would blank ordinary words)
_SECRET_NAME = re.compile(r"(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_remembered: set[str] = set()


def remember(*values: str | None) -> None:
    """Values that must never be written or printed (an adapter's key, once read)."""
    _remembered.update(v for v in values if isinstance(v, str) and len(v) >= SHORTEST)


def known_secrets() -> list[str]:
    """Every secret known now, longest first (a key that contains another is replaced whole)."""
    from_env = (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= SHORTEST)
    return sorted(_remembered.union(from_env), key=len, reverse=True)


def redact(text: str | None, extra: tuple[str, ...] | list[str] = ()) -> str | None:
    """`text` with every known secret (and each of `extra`) replaced by "[redacted]"."""
    if not text:
        return text
    for secret in [*sorted((e for e in extra if e and len(e) >= SHORTEST), key=len, reverse=True), *known_secrets()]:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def clip(text: str | None, limit: int) -> str:
    """`text` redacted, then cut to `limit` characters (an ellipsis marks the cut)."""
    text = redact(text or "") or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
