"""The engine: sends requests through an adapter and records what comes back.

It owns everything adapters must not do: a bound on requests in flight that halves on rate limits
and grows back by one (additive increase, multiplicative decrease), request and token rate limits
(aiolimiter), retries with exponential backoff and jitter that honour Retry-After (tenacity),
per-request timeouts, the response cache, parsing, and appending each record as it completes.
A sample whose retries run out is recorded with status `error` and its (redacted) message.

The cache holds what the backend said; the adapter's `decide` (its label policy) is applied after
it, so a changed threshold or category list re-uses cached answers. The bound on requests in
flight is the user's --concurrency, else the adapter's declared concurrency.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from toxbench.adapters.base import ANSWER_CHARS, Adapter, AdapterError, FatalError, RateLimited, TransientError
from toxbench.data.tables import LONE_SURROGATE
from toxbench.errors import ToxbenchError
from toxbench.records import RunWriter
from toxbench.redaction import clip, redact
from toxbench.run.cache import ResponseCache, cache_key
from toxbench.run.parsing import Parsed
from toxbench.types import Answer, Record, Request


@dataclass(frozen=True)
class ExecutionSettings:
    """How to send requests. Not part of a run's identity: changing them resumes the same run."""

    concurrency: int | None = None  # default: the adapter's declared concurrency
    rpm: float | None = None
    tpm: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    batch_size: int | None = None  # for batching (local) adapters; default: the adapter's own
    max_retry_after_s: float = 300.0  # a provider asking to wait longer (a daily quota) ends the sample as an error
    batch: bool = False  # through the provider's batch API (toxbench.run.batch): half the price, answers within a day
    poll_s: float = 30.0  # seconds between polls of a batch
    batch_where_available: bool = False  # a sweep's --batch: models without a batch API are sent live
    cancel: bool = False  # --cancel: cancel the run's checkpointed batches, record what they answered, send nothing
    submit_only: bool = False  # submit the run's batches and return without waiting (a sweep's first pass)

    def __post_init__(self) -> None:
        """Every number checked before any work, named as the command line names it."""
        checks = (
            ("--concurrency", self.concurrency, int, 1),
            ("--batch-size", self.batch_size, int, 1),
            ("--max-retries", self.max_retries, int, 0),
            ("--rpm", self.rpm, float, None),
            ("--tpm", self.tpm, float, None),
            ("--timeout", self.timeout_s, float, None),
            ("--poll-interval", self.poll_s, float, None),
        )
        for option, value, kind, least in checks:
            if value is None:
                continue
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ToxbenchError(f"{option} {value}: give a whole number of at least {least}")
            if kind is float and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf")
            ):
                raise ToxbenchError(f"{option} {value}: give a number above 0")


class AdaptiveLimit:
    """At most `limit` requests in flight; a rate limit halves it, `limit` successes add one, and
    its Retry-After holds every request, not only the refused one.
    A freed slot, or one more allowed, wakes one waiter: waking all of them only to have all but
    one wait again costs a scheduler round per waiter per request."""

    def __init__(self, maximum: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = self.maximum
        self.in_flight = 0
        self.resume_at = 0.0  # monotonic time before which no request goes (a Retry-After)
        self._successes = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def __aexit__(self, *exc) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify(1)

    def rate_limited(self, retry_after: float | None = None) -> None:
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        if retry_after:  # the server said when: nobody sends before then, not only the refused request
            self.resume_at = max(self.resume_at, time.monotonic() + float(retry_after))

    async def until_resumed(self) -> None:
        """Wait out the latest Retry-After any request received."""
        while (wait := self.resume_at - time.monotonic()) > 0:
            await asyncio.sleep(wait)

    async def succeeded(self) -> None:
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0
            async with self._cond:
                self._cond.notify(1)


RPM_BURST = 5  # requests --rpm lets out at once; then one every 60/rpm seconds
TPM_BURST_S = 5  # seconds' worth of --tpm tokens that may go at once


def pacers(settings: ExecutionSettings) -> tuple[AsyncLimiter | None, AsyncLimiter | None]:
    """Leaky buckets for --rpm and --tpm that pace: refilled continuously at the rate asked for,
    holding only a small burst. (AsyncLimiter(rpm, 60) would let a whole minute's requests out at
    once, and a server that counts per second answers most of them 429.)"""
    rpm = (
        AsyncLimiter(min(RPM_BURST, settings.rpm), 60 * min(RPM_BURST, settings.rpm) / settings.rpm)
        if settings.rpm
        else None
    )
    if not settings.tpm:
        return rpm, None
    capacity = max(1.0, settings.tpm * TPM_BURST_S / 60)
    return rpm, AsyncLimiter(capacity, 60 * capacity / settings.tpm)


@dataclass
class EngineStats:
    requests_sent: int = 0
    cache_hits: int = 0
    retries: Counter = field(default_factory=Counter)  # kind of failure -> count
    statuses: Counter = field(default_factory=Counter)
    cost_usd: float = 0.0
    min_limit: int = 0


async def _within(awaitable, seconds: float | None):
    """`awaitable`'s result, or asyncio.TimeoutError after `seconds`. asyncio.timeout (3.11+)
    cancels in place; wait_for wraps every request in one more task (a third of the engine's
    CPU per request at high concurrency)."""
    if hasattr(asyncio, "timeout"):
        async with asyncio.timeout(seconds):
            return await awaitable
    return await asyncio.wait_for(awaitable, seconds)


ERROR_CHARS = 2000  # what a recorded error message keeps, after redaction


def bounded_answer(answer: Answer) -> Answer:
    """`answer`, or a per-sample error when it is larger than any answer toxbench keeps (a body that
    inflated to megabytes): records and the cache never hold it."""
    size = len(answer.raw or "") + len(answer.text or "")
    if size > ANSWER_CHARS:
        raise FatalError(
            f"an answer of {size:,} characters, more than the {ANSWER_CHARS:,} toxbench keeps; the server sent an "
            "unbounded body",
            stops_run=False,
        )
    return answer


def _too_long_to_wait(exc: AdapterError, cap: float) -> FatalError | None:
    """The sample's error when the provider asks to wait longer than toxbench waits (a daily or
    monthly quota, an HTTP date years away): the run goes on rather than hanging."""
    if exc.retry_after is None or exc.retry_after <= cap:
        return None
    wait = f"{exc.retry_after / 86400:,.0f} days" if exc.retry_after >= 86400 else f"{exc.retry_after:,.0f} s"
    return FatalError(
        f"{type(exc).__name__}: the provider asks to wait {wait} before retrying, more than the {cap:g} s toxbench waits "
        f"(a daily or monthly quota?); run the same command later to ask again ({exc})",
        stops_run=False,
    )


def _redact(text: str, secrets: Iterable[str]) -> str:
    """An error message as it may be recorded and printed: every secret out, then cut to length."""
    return clip(redact(text, tuple(secrets)), ERROR_CHARS)


def _wait(settings: ExecutionSettings):
    backoff = wait_exponential_jitter(initial=settings.backoff_initial_s, max=settings.backoff_max_s)

    def wait(state) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, AdapterError) and exc.retry_after is not None:
            return min(float(exc.retry_after), settings.backoff_max_s)
        return backoff(state)

    return wait


async def run_requests(
    adapter: Adapter,
    requests: list[Request],
    golds: dict[str, int],
    writer: RunWriter,
    *,
    parser: Callable[[str | None], Parsed] | None,
    settings: ExecutionSettings,
    cache: ResponseCache | None = None,
    cost: Callable[[int | None, int | None], float | None] = lambda i, o: None,
    secrets: Iterable[str] = (),
    on_record: Callable[[Record, EngineStats], None] | None = None,
    stop: threading.Event | None = None,
) -> EngineStats:
    """Answer every request and append one record per sample as it completes. With `stop` set,
    batches stop after the one in progress (its answers are recorded)."""
    stats = EngineStats()
    limit = AdaptiveLimit(settings.concurrency or adapter.capabilities.concurrency)
    stats.min_limit = limit.limit
    rpm, tpm = pacers(settings)
    identity = adapter.cache_identity()
    secrets = [s for s in secrets if s]
    fatal: list[str] = []

    async def send(request: Request, latency: list[float]) -> Answer:
        """One attempt. latency[0] becomes the seconds from sending to the answer (or failure):
        waiting for a concurrency slot or a rate limit is not the provider's latency."""
        async with limit:
            await limit.until_resumed()
            if rpm:
                await rpm.acquire()
            if tpm:  # estimate: ~4 characters a token, prompt included
                await tpm.acquire(min(tpm.max_rate, max(1, request.chars // 4)))
            stats.requests_sent += 1
            sent = time.perf_counter()
            try:
                return bounded_answer(await _within(adapter.answer(request), settings.timeout_s))
            except asyncio.TimeoutError:
                raise TransientError(f"timed out after {settings.timeout_s:g} s") from None
            except AdapterError as exc:
                if (refusal := _too_long_to_wait(exc, settings.max_retry_after_s)) is not None:
                    raise refusal from None
                if isinstance(exc, RateLimited):
                    limit.rate_limited(exc.retry_after)
                    stats.min_limit = min(stats.min_limit, limit.limit)
                raise
            finally:
                latency[:] = [time.perf_counter() - sent]

    def finish(
        request: Request, answer: Answer | None, error: str | None, attempts: int, cached: bool, latency: float | None
    ) -> None:
        if answer is not None and error is None:
            try:
                answer = adapter.decide(answer)
            except (ValueError, KeyError, IndexError, TypeError) as exc:  # a response the policy cannot read
                answer, error = None, _redact(f"malformed response: {type(exc).__name__}: {exc}", secrets)
        record = to_record(
            request,
            answer,
            error,
            parser,
            golds[request.sample_id],
            attempts=attempts,
            cached=cached,
            latency_s=None if cached or latency is None else round(latency, 4),
            cost_usd=None if cached or answer is None else cost(answer.tokens_in, answer.tokens_out),
        )
        stats.cost_usd += record.cost_usd or 0.0
        stats.statuses[record.status] += 1
        writer.append(record)
        if on_record:
            on_record(record, stats)

    def from_cache(request: Request) -> tuple[str | None, Answer | None]:
        if not cache:
            return None, None
        key = cache_key(adapter.name, identity, request)
        answer = cache.get(key)
        if answer is not None:
            try:
                adapter.decide(answer)
            except (
                ValueError,
                KeyError,
                IndexError,
                TypeError,
            ):  # stored by an older toxbench in another shape: ask again
                return key, None
            stats.cache_hits += 1
        return key, answer

    if adapter.capabilities.batching and adapter.implements_batches():
        await _run_batches(adapter, requests, settings, stats, from_cache, finish, cache, secrets, stop)
        return stats

    async def one(request: Request) -> None:
        key, answer = from_cache(request)
        if answer is not None:
            return finish(request, answer, None, 0, True, None)
        attempts, error, latency = 0, None, [None]
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(settings.max_retries + 1),
                wait=_wait(settings),
                retry=retry_if_exception(lambda e: isinstance(e, AdapterError) and e.retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    try:
                        answer = await send(request, latency)
                    except AdapterError as exc:
                        stats.retries[type(exc).__name__] += 1
                        raise
            await limit.succeeded()
            if cache:
                cache.put(key, answer)
        except AdapterError as exc:
            error = _redact(f"{type(exc).__name__}: {exc}", secrets)
            if isinstance(exc, FatalError) and getattr(exc, "stops_run", False):
                fatal.append(error)
        finish(request, answer, error, attempts, False, latency[0])  # the final attempt's latency

    pending = deque(requests)

    async def worker() -> None:
        while pending and not fatal:
            await one(pending.popleft())

    # A fixed pool of workers, one per request the limit can ever allow in flight, pulls samples
    # from the queue: one task per sample would make the scheduler juggle every sample at once.
    workers = [asyncio.create_task(worker()) for _ in range(min(limit.maximum, len(requests)))]
    try:
        for task in asyncio.as_completed(workers):
            await task
            if fatal:
                raise ToxbenchError(f"stopped: {fatal[0]}")
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return stats


async def _run_batches(adapter, requests, settings, stats, from_cache, finish, cache, secrets, stop=None) -> None:
    """Local models: batches of similar length (sorted by the adapter's own measure, its tokens
    where it has a tokenizer, so padding is small), each run in a worker thread so the event loop,
    progress and records keep going."""
    size = settings.batch_size or adapter.capabilities.batch_size
    ordered = sorted(requests, key=adapter.batch_length)
    for start in range(0, len(ordered), size):
        if stop is not None and stop.is_set():
            return
        todo, keys = [], {}
        for request in ordered[start : start + size]:
            key, answer = from_cache(request)
            if answer is not None:
                finish(request, answer, None, 0, True, None)
            else:
                todo.append(request)
                keys[request.sample_id] = key
        if not todo:
            continue
        started = time.perf_counter()
        stats.requests_sent += len(todo)
        try:
            answers = await asyncio.to_thread(adapter.answer_batch, todo)
        except Exception as exc:  # a failed batch is recorded, sample by sample
            message = _redact(f"{type(exc).__name__}: {exc}", secrets)
            for request in todo:
                finish(request, None, message, 1, False, None)
            continue
        each = (time.perf_counter() - started) / len(todo)
        for request, answer in zip(todo, answers):
            if not isinstance(answer, AdapterError):
                try:
                    answer = bounded_answer(answer)
                except FatalError as exc:
                    answer = exc
            if isinstance(
                answer, AdapterError
            ):  # a request the backend cannot take; the rest of the batch was answered
                finish(request, None, _redact(f"{type(answer).__name__}: {answer}", secrets), 1, False, None)
                continue
            if cache:
                cache.put(keys[request.sample_id], answer)
            finish(request, answer, None, 1, False, each)


def to_record(request: Request, answer: Answer | None, error: str | None, parser, gold: int, **how) -> Record:
    """The record of one sample: an error, a provider refusal, the adapter's own label, or the
    parser's reading of the text. `how` holds attempts, cached, latency and cost."""
    if answer is None:
        return Record(sample_id=request.sample_id, gold=gold, pred=None, status="error", raw=redact(error), **how)
    raw = redact(answer.raw if answer.raw is not None else answer.text)  # a server may echo the key in any answer
    if raw and LONE_SURROGATE.search(raw):  # a JSON escape no UTF-8 file can hold: kept visible, never a crash
        raw = LONE_SURROGATE.sub("\ufffd", raw)
    if answer.refused:
        pred, status = None, "refused"
    elif answer.pred is not None or parser is None:
        pred = answer.pred
        status = "ok" if pred is not None else "unparseable"
    else:
        parsed = parser(answer.text)
        pred, status = parsed.pred, parsed.status
    return Record(
        sample_id=request.sample_id,
        gold=gold,
        pred=pred,
        score=answer.score,
        status=status,
        raw=raw,
        tokens_in=answer.tokens_in,
        tokens_out=answer.tokens_out,
        **how,
    )
