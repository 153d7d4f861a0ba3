"""What the API adapters share: importing a provider SDK with a one-line error when it is missing,
turning HTTP statuses and SDK exceptions into the engine's error classes, and splitting a chat's
system message from the rest for providers that take it apart."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from types import ModuleType

from toxbench.adapters.base import ANSWER_CHARS, AdapterError, FatalError, RateLimited, TransientError
from toxbench.errors import ToxbenchError
from toxbench.redaction import clip

EXTRAS = {
    "api": "the provider SDKs",
    "local": "torch and transformers",
    "quant": "bitsandbytes",
    "train": "TRL and peft",
}


def require(module: str, extra: str, who: str) -> ModuleType:
    """`import module`, or a one-line error telling the user which extra installs it."""
    try:
        return import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        raise ToxbenchError(
            f"{who} needs the Python package {missing!r}, which is not installed: "
            f"pip install 'toxbench[{extra}]' ({EXTRAS.get(extra, extra)})"
        ) from None


def routed_base_url(base_url: str | None, env_name: str) -> str | None:
    """Where requests go: the `base_url` given, else the server the SDK's own environment variable
    names (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`...), else None (the provider's own). It is part of
    the run's identity and the cache key: answers from server B are never server A's."""
    return base_url or os.environ.get(env_name) or None


def sdk_environment(names: tuple[str, ...]) -> dict:
    """The SDK's environment variables that are set and change where or how requests go (Gemini's
    Vertex AI switch, project and location), for an identity: empty when none is set, so the
    identity of a run that sets none stays what it was."""
    found = {name: os.environ[name] for name in names if os.environ.get(name)}
    return {"sdk_environment": found} if found else {}


def parse_retry_after(value: object) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(str(value)) - datetime.now(timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


def error_for_status(status: int | None, message: str, retry_after: object = None) -> AdapterError:
    """The engine's error class for an HTTP status: 429 rate limit, 5xx/408/409 transient,
    401/403/404 stop the run (key, permission, model), other 4xx fail only that sample."""
    text = f"HTTP {status}: {message}" if status else message
    if status == 429:
        return RateLimited(text, parse_retry_after(retry_after))
    if status is None or status >= 500 or status in (408, 409):
        return TransientError(text, parse_retry_after(retry_after))
    return FatalError(text, stops_run=status in (401, 403, 404))


def not_found_hint(url: str, message: str) -> str:
    """A 404 with the URL that answered it, and, when that URL has no version segment, the usual
    one: a base_url without /v1 is the common mistake with OpenAI-compatible servers."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"  # never the query string (a key may travel there)
    hint = ""
    if not re.search(r"/v\d+(beta\d*|alpha\d*)?(/|$)", parts.path):
        hint = f"; servers of this API usually answer under /v1: try base_url={parts.scheme}://{parts.netloc}/v1"
    return f"{where} answered 404 ({message}){hint}, or check the model name"


def translate_sdk_error(exc: Exception, sdk) -> Exception:
    """An `openai`- or `anthropic`-style SDK exception (the two share one hierarchy: APIStatusError,
    APITimeoutError, APIConnectionError, APIResponseValidationError) as the engine's error class.
    A body that echoes the key is redacted before it is cut to length."""
    if isinstance(exc.__cause__, AdapterError):  # raised inside the transport (an unbounded body), wrapped by the SDK
        return exc.__cause__
    if isinstance(exc, sdk.APIStatusError):
        body = exc.body
        message = clip(json.dumps(body, ensure_ascii=False) if isinstance(body, dict) else str(exc), 300)
        if exc.status_code == 404:
            message = not_found_hint(str(exc.response.request.url), message)
        return error_for_status(exc.status_code, message, exc.response.headers.get("retry-after"))
    if isinstance(exc, (sdk.APITimeoutError, sdk.APIConnectionError)):
        return TransientError(f"{type(exc).__name__}: {clip(str(exc), 300)}")
    if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
        return TransientError(f"malformed response: {clip(str(exc), 200)}")
    return exc


async def read_bounded(response, limit: int = ANSWER_CHARS) -> bytes:
    """A streamed HTTP response's decoded body, read until `limit` bytes and no further (a body of
    20 KB on the wire can inflate to 20 MB), then closed. Over the limit it is that sample's error."""
    chunks, size = [], 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FatalError(
                    f"an answer of more than {limit:,} bytes (the server sent an unbounded body); toxbench reads no further",
                    stops_run=False,
                )
            chunks.append(chunk)
    finally:
        await response.aclose()
    return b"".join(chunks)


def bounded_http_client(base: type, **kwargs):
    """An instance of `base` (an httpx AsyncClient class, or an SDK's subclass of it with its
    defaults) whose every response body is read to at most ANSWER_CHARS decoded bytes, for SDKs
    that would otherwise read an inflating body whole before toxbench sees it."""

    class BoundedAsyncClient(base):
        async def send(self, request, *, stream: bool = False, **options):
            # read here even when the SDK asks to stream: some (anthropic) always stream, then read whole;
            # toxbench streams nothing (no server-sent events), so every body is read once, bounded
            response = await super().send(request, stream=True, **options)
            response._content = await read_bounded(response)  # what .content/.text/.json() and aread() return
            return response

    return BoundedAsyncClient(**kwargs)


def split_system(messages) -> tuple[str | None, list[dict]]:
    """(the system messages joined by a blank line, or None; the other messages in order), for
    providers that take the system prompt apart from the conversation (Anthropic, Gemini)."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return system or None, [m for m in messages if m["role"] != "system"]


@contextmanager
def reading_response() -> Iterator[None]:
    """Around the code that reads a parsed response: valid JSON of a shape the client did not
    expect (`null`, `{}`, a null message) is a malformed response, retried like any transient
    failure and recorded as `error` if it persists, never a traceback that ends the run."""
    try:
        yield
    except (AttributeError, TypeError, KeyError, IndexError, ValueError) as exc:
        raise TransientError(f"malformed response: {type(exc).__name__}: {clip(str(exc), 200)}") from None


def blocked_by_filter(exc: Exception) -> dict | None:
    """The error body when an HTTP 400 is a provider's prompt filter (`"code": "content_filter"`,
    as Azure OpenAI and compatible servers send it): a refusal, not an error."""
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    if getattr(exc, "status_code", None) == 400 and isinstance(error, dict):
        inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
        if error.get("code") == "content_filter" or inner.get("code") == "ResponsibleAIPolicyViolation":
            return body
    return None


def jsonl_objects(text: str) -> Iterator[dict]:
    """The JSON objects of a provider's JSONL results file. A line that is not one is skipped: its
    sample has no result, so it is recorded as an error and asked again by the next command, rather
    than one bad line making the whole file unreadable."""
    for line in text.splitlines():
        try:
            item = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(item, dict):
            yield item


def batch_result_line(item: dict) -> tuple[int | None, dict | None, str]:
    """(HTTP status, the response body when it is an object, what the line says went wrong) of one
    line of an OpenAI-style batch results file: {custom_id, response: {status_code, body}, error}.
    OpenAI and Mistral write this shape."""
    response = item.get("response") if isinstance(item.get("response"), dict) else {}
    status, body = response.get("status_code"), response.get("body")
    status = status if isinstance(status, int) else None
    error = item.get("error")
    inner = body.get("error") if isinstance(body, dict) else None
    message = (
        (error.get("message") if isinstance(error, dict) else None)
        or (inner.get("message") if isinstance(inner, dict) else None)
        or (body.get("message") if isinstance(body, dict) else None)
        or json.dumps(body if body is not None else error, ensure_ascii=False)
    )
    return status, body if isinstance(body, dict) else None, clip(str(message), 300)
