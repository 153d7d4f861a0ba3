"""The adapter interface and registry.

An adapter translates one backend's answers into `Prediction`s and nothing else: retries,
caching, rate limits and progress belong to the engine. Built-in adapters register with
`@register("name")`; other packages add theirs through the `toxbench.adapters` entry-point group
without touching this one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import ClassVar, Literal

Status = Literal["ok", "unparseable", "refused", "error"]
Kind = Literal["chat", "classifier", "moderation", "replay"]
STATUSES: tuple[Status, ...] = ("ok", "unparseable", "refused", "error")

ENTRY_POINT_GROUP = "toxbench.adapters"
# name -> module that defines it; modules are imported only when the adapter is asked for, so
# listing adapters never imports a provider SDK or torch.
BUILTIN_MODULES: dict[str, str] = {
    "replay": "toxbench.adapters.replay",
    "baseline": "toxbench.adapters.baseline",
    "hf": "toxbench.adapters.hf",
    "encoder": "toxbench.adapters.encoder",
    "llamaguard": "toxbench.adapters.guards",
    "shieldgemma": "toxbench.adapters.guards",
    "finetuned": "toxbench.adapters.finetuned",
    "openai": "toxbench.adapters.openai_api",
    "openai-moderation": "toxbench.adapters.openai_api",
    "mistral": "toxbench.adapters.mistral_api",
    "mistral-moderation": "toxbench.adapters.mistral_api",
    "anthropic": "toxbench.adapters.anthropic_api",
    "gemini": "toxbench.adapters.gemini_api",
    "perspective": "toxbench.adapters.perspective_api",
}


@dataclass(slots=True, kw_only=True)
class Prediction:
    """What an adapter returns for one sample. pred is 0, 1 or None (no label could be read)."""

    sample_id: str
    pred: int | None
    status: Status
    score: float | None = None  # probability of toxic, when the backend gives a real one
    raw: str | None = None  # the model's text or the API's JSON, kept verbatim
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    attempts: int = 1
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Request:
    """One sample as an adapter receives it: chat adapters read messages, the others text."""

    sample_id: str
    text: str
    lang: str
    messages: tuple[dict, ...] = ()
    labels: tuple[str, ...] = ()  # the prompt's answer words (non-toxic, toxic), for likelihood scoring

    @property
    def chars(self) -> int:
        """Characters sent: the text plus every message (the engine's size estimate)."""
        return len(self.text) + sum(len(m.get("content", "")) for m in self.messages)


@dataclass(slots=True, kw_only=True)
class Answer:
    """What a backend said. Chat adapters fill text (the harness parses it); classifier and
    moderation adapters fill pred and score by their declared policy. refused marks a provider
    block or refusal (finish reason, block reason, refusal field)."""

    text: str | None = None
    pred: int | None = None
    score: float | None = None
    refused: bool = False
    raw: str | None = None  # the provider's response as JSON text
    tokens_in: int | None = None
    tokens_out: int | None = None


class AdapterError(Exception):
    """Raised by an adapter for a failed request; the engine decides what to do with it."""

    retryable = False

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(AdapterError):
    """HTTP 429 or the provider's equivalent: retried after Retry-After, and concurrency is lowered."""

    retryable = True


class TransientError(AdapterError):
    """5xx, timeouts, connection resets, malformed responses: retried with backoff."""

    retryable = True


class FatalError(AdapterError):
    """Not retried. With stops_run (bad key, unknown model) the whole run stops with this
    message; without it (a request the provider rejects) only this sample ends as an error."""

    def __init__(self, message: str, stops_run: bool = True) -> None:
        super().__init__(message)
        self.stops_run = stops_run


class MissingKey(Exception):
    """A required environment variable is not set (raised before any request)."""


@dataclass(frozen=True)
class Capabilities:
    concurrency: int = 1
    batching: bool = False  # implements answer_batch(requests) -> answers (run in a worker thread)
    batch_size: int = 8
    scores: bool = False  # can it give P(toxic), not only a label
    cost_per_1k_tokens_in: float | None = None
    cost_per_1k_tokens_out: float | None = None


class Adapter:
    """Base class: subclasses set `name`, `kind`, `capabilities` and `required_env`, and implement
    `answer` (async, one request). They translate, nothing more: no retries, caching or pacing."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    capabilities: ClassVar[Capabilities] = Capabilities()
    required_env: ClassVar[tuple[str, ...]] = ()  # any one of them holds the key
    description: ClassVar[str] = ""

    def identity(self) -> dict:
        """The non-secret parameters that determine this adapter's answers (part of a run's id)."""
        return {}

    async def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release clients and connections."""

    def batch_length(self, request: Request) -> int:
        """What the engine sorts batching adapters' requests by, so a batch holds inputs of similar
        size and little padding: characters here; adapters with a tokenizer count its tokens."""
        return request.chars

    secrets: tuple[str, ...] = ()  # values the engine redacts from every error it records
    renders_own_prompt: ClassVar[bool] = False  # guard models: their own policy prompt around the text
    default_parser: ClassVar[str | None] = None  # the parser their answers need (else --parser's)

    @classmethod
    def key_from_env(cls, override: str | None = None) -> str:
        """The API key from the provider's usual environment variable (or `override`), or MissingKey."""
        import os

        for name in (override,) if override else cls.required_env:
            if os.environ.get(name):
                return os.environ[name]
        names = (override,) if override else cls.required_env
        raise MissingKey(f"adapter {cls.name!r} needs an API key: set {' or '.join(names)}")


_REGISTRY: dict[str, type[Adapter]] = {}


def register(name: str):
    """Class decorator: make an adapter available as `name` (e.g. `--model name:model-id`)."""

    def wrap(cls: type[Adapter]) -> type[Adapter]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def adapter_names() -> list[str]:
    names = set(BUILTIN_MODULES) | set(_REGISTRY)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def get_adapter(name: str) -> type[Adapter]:
    """The adapter class registered as `name`, importing its module on first use."""
    if name not in _REGISTRY:
        if name in BUILTIN_MODULES:
            import_module(BUILTIN_MODULES[name])
        else:
            for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
                cls = ep.load()
                cls.name = name  # the entry point's name is the adapter's name
                _REGISTRY.setdefault(name, cls)
    try:
        return _REGISTRY[name]
    except KeyError:
        from toxbench.errors import ToxbenchError

        raise ToxbenchError(f"unknown adapter {name!r}; known: {', '.join(adapter_names())}") from None


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


def translate_sdk_error(exc: Exception, sdk) -> Exception:
    """An `openai`- or `anthropic`-style SDK exception (the two share one hierarchy: APIStatusError,
    APITimeoutError, APIConnectionError, APIResponseValidationError) as the engine's error class.
    The key never appears in these messages: they carry the status and the response body."""
    if isinstance(exc, sdk.APIStatusError):
        body = exc.body
        message = json.dumps(body)[:300] if isinstance(body, dict) else str(exc)[:300]
        return error_for_status(exc.status_code, message, exc.response.headers.get("retry-after"))
    if isinstance(exc, (sdk.APITimeoutError, sdk.APIConnectionError)):
        return TransientError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
        return TransientError(f"malformed response: {str(exc)[:200]}")
    return exc
