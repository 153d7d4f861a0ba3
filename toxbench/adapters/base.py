"""The adapter contract: what every backend implements, and the errors it may raise.

An adapter translates one backend's answers into `Answer`s and nothing else: retries, caching,
rate limits and progress belong to the engine. It implements `answer` (one request, async) or
`answer_batch` (a list, run in a worker thread) or both; the base class derives the one it lacks.
Moderation and classifier adapters return the backend's raw output and apply their label policy in
`decide`, which the engine calls after the response cache, so a policy change re-uses every cached
answer. Registration lives in `registry.py`.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import ClassVar, Protocol

from toxbench.redaction import remember
from toxbench.types import Answer, Kind, Request

ANSWER_CHARS = 1_000_000
"""The most an answer may hold (its text and raw body): adapters that read a body themselves stop
there, and the engine never keeps more (a body that inflates to megabytes is an error, not a record)."""


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
    """What the engine asks of an adapter. An instance may declare its own (a batch size or a mode
    given as an argument); the class attribute describes the default arguments."""

    concurrency: int = 1
    """Requests in flight when the user gives no --concurrency (the provider's usual quota)."""
    batching: bool = False
    """Run through `answer_batch` in batches of similar length, in a worker thread."""
    batch_size: int = 8
    """Requests per batch when the user gives no --batch-size."""
    scores: bool = False
    """Gives P(toxic), not only a label (ROC-AUC needs it)."""


class Adapter:
    """Base class. Subclasses set the class attributes below and implement `answer` or
    `answer_batch`; they translate, nothing more: no retries, caching or pacing."""

    name: ClassVar[str]
    """Set by the registry: the name before the colon in `--model name:model-id`."""
    kind: ClassVar[Kind]
    capabilities: ClassVar[Capabilities] = Capabilities()
    required_env: ClassVar[tuple[str, ...]] = ()
    """Environment variables that may hold the key (any one); `api_key_env` overrides them."""
    description: ClassVar[str] = ""
    varies: ClassVar[str] = ""
    """Which arguments change the declarations above (shown by `toxbench adapters`)."""
    renders_own_prompt: ClassVar[bool] = False
    """Guard and fine-tuned models wrap the text in their own prompt; --prompt does not apply."""
    default_parser: ClassVar[str | None] = None
    """The parser their answers need (else the run's)."""
    preparing: ClassVar[str] = "starting"
    """What the spinner says while the adapter is made ("loading the model" for local models)."""
    run_notes: tuple[str, ...] = ()
    """What a reader of this adapter's runs must know (an untrained head): written into the run's
    manifest, shown by `runs list` and the leaderboard, and warned about when the run starts."""
    secrets: tuple[str, ...] = ()
    """Values the engine redacts from every error it records (the instance's key)."""

    def identity(self) -> dict:
        """The non-secret parameters that determine this adapter's labels (part of a run's id)."""
        return {}

    def cache_identity(self) -> dict:
        """The parameters that determine the backend's raw answer (part of a cache key). Policy
        parameters that `decide` applies (a threshold, categories) are left out, so changing them
        re-uses cached answers."""
        return self.identity()

    async def answer(self, request: Request) -> Answer:
        """One request. Default: `answer_batch([request])` in a worker thread."""
        if type(self).answer_batch is Adapter.answer_batch:
            raise NotImplementedError(f"{type(self).__name__} implements neither answer nor answer_batch")
        answer = (await asyncio.to_thread(self.answer_batch, [request]))[0]
        if isinstance(answer, AdapterError):
            raise answer
        return answer

    def answer_batch(self, requests: list[Request]) -> list[Answer | AdapterError]:
        """Several requests at once, in order (local models); called in a worker thread. An
        `AdapterError` in a request's place records that sample as an error (a request the backend
        cannot take, such as a prompt longer than the model's context) and the batch's other answers
        as usual; an exception raised ends the whole batch as errors."""
        raise NotImplementedError(f"{type(self).__name__} answers one request at a time")

    def batch_backend(self) -> BatchBackend | None:
        """The provider's batch API for this adapter's requests (`toxbench run --batch`), or None
        where there is none."""
        return None

    def decide(self, answer: Answer) -> Answer:
        """The label (and score) that this adapter's policy gives a raw answer; applied after the
        cache. Default: the answer as it is."""
        return answer

    def batch_length(self, request: Request) -> int:
        """What the engine sorts batching adapters' requests by, so a batch holds inputs of similar
        size and little padding: characters here; adapters with a tokenizer count its tokens."""
        return request.chars

    async def aclose(self) -> None:
        """Release clients and connections."""

    @classmethod
    def implements_batches(cls) -> bool:
        return cls.answer_batch is not Adapter.answer_batch

    @classmethod
    def key_from_env(cls, override: str | None = None) -> str:
        """The API key from `override` (the `api_key_env` argument) or the provider's usual
        variables, or MissingKey naming them."""
        names = (override,) if override else cls.required_env
        for name in names:
            if os.environ.get(name):
                remember(os.environ[name])  # redacted from every record, cache value and message from now on
                return os.environ[name]
        raise MissingKey(f"adapter {cls.name!r} needs an API key: set {' or '.join(names)}")


@dataclass(frozen=True)
class BatchState:
    status: str  # the provider's word
    ended: bool
    done: int | None = None  # requests answered or failed so far, when the provider says
    total: int | None = None


class BatchBackend(Protocol):
    """What a provider's batch API needs from toxbench: lines in, batch ids, results out."""

    max_requests: int
    max_bytes: int

    def line(self, custom_id: str, request: Request) -> bytes:
        """One request as a line of the provider's input file (or inline list), tagged custom_id."""
        ...

    async def submit(self, lines: list[bytes], label: str) -> str: ...

    async def poll(self, batch_id: str) -> BatchState: ...

    async def results(self, batch_id: str, requests: dict[str, Request]) -> dict[str, tuple[Answer | None, str | None]]:
        """custom_id -> (the answer, read as a live one would be, or None with why), for the
        requests given (score mode reads each request's answer words)."""
        ...

    async def cancel(self, batch_id: str) -> None: ...
