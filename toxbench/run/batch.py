"""Runs through a provider's batch API (half the price of live requests, answers within a day):
the provider-neutral half. A `BatchBackend` (one small class beside each adapter that has one)
turns requests into the provider's input lines and submits, polls, fetches and cancels; this module
does the rest the same way for every provider.

A batched run is the same run as a live one (batching is how requests are sent, like concurrency):
samples already recorded are not asked, cached answers are recorded as cached, the others go out in
batches split at the provider's request and byte limits. Each batch id is checkpointed in the run
directory (`batches.json`) the moment it exists, so the same command run again polls the same
batches instead of paying twice. When they end, each result is recorded exactly as a live answer
(the adapter reads the response body, its label policy applies, the raw response is kept, the
answer goes into the cache), at the batch price; a request the batch failed or never answered is
recorded as `error`, which the next command (live or batched) asks again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from toxbench._util import TABLE_BYTES, read_user_text, write_atomic
from toxbench.adapters.base import BatchBackend, BatchState, FatalError
from toxbench.errors import ToxbenchError
from toxbench.redaction import clip, redact
from toxbench.run.cache import cache_key
from toxbench.run.engine import bounded_answer, to_record
from toxbench.types import Request

T = TypeVar("T")
CHECKPOINT = "batches.json"


def chunked(items: Iterable[tuple[T, int]], max_requests: int, max_bytes: int) -> Iterator[list[T]]:
    """Consecutive (item, size) pairs gathered into lists within both limits, lazily: only one
    batch's lines are ever in memory (an item larger than max_bytes alone is one batch: the
    provider says what it thinks of it)."""
    chunk: list[T] = []
    size = 0
    for item, n in items:
        if chunk and (len(chunk) >= max_requests or size + n > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += n
    if chunk:
        yield chunk


async def run_batched(
    adapter,
    backend: BatchBackend,
    requests: list[Request],
    writer,
    parser,
    golds: dict,
    cache,
    cost: Callable[[int | None, int | None], float | None],  # at the batch price (pricing.cost_usd(batch=True))
    poll_s: float,
    say: Callable[[str], None] = print,
    max_poll_failures: int = 5,
    cancel: bool = False,
    checkpoint: Path | None = None,
    option: str = "--batch",
    close_adapter: bool = True,
    submit_only: bool = False,
) -> dict:
    """Record every request through the batch API (or the cache); returns counts for the summary.
    `cancel`: cancel the checkpointed batches, record what they answered before they ended (the
    rest as errors) and send nothing new. `checkpoint` (default RUN_DIR/batches.json), `option`
    (how errors name the command's option) and `close_adapter` let a pipeline of several runs over
    one adapter (annotate's steps) use the same layer. `submit_only`: submit what is to send and
    return without waiting (a sweep submits every cell's batches before it waits on any)."""
    checkpoint = checkpoint or Path(writer.dir) / CHECKPOINT
    identity = adapter.cache_identity()
    by_id = {r.sample_id: r for r in requests}
    stats = {"cache_hits": 0, "submitted": 0, "answered": 0, "errors": 0, "batches": 0}
    state: dict = {"batches": []}
    try:  # from here on, whatever fails closes the clients in `finally`
        state = read_checkpoint(checkpoint)
        pending_ids = {cid for b in state["batches"] for cid in b["custom_ids"]}
        cached_records, to_send = [], []
        for request in requests:
            if request.sample_id in pending_ids:
                continue
            answer = cache.get(cache_key(adapter.name, identity, request)) if cache else None
            if answer is not None:
                stats["cache_hits"] += 1
                cached_records.append(_record(adapter, request, answer, None, parser, golds, cached=True))
            else:
                to_send.append(request)
        writer.extend(cached_records)
        if cancel:
            for batch in state["batches"]:
                await backend.cancel(batch["batch_id"])
                say(f"batch {batch['batch_id']}: cancel requested ({len(batch['custom_ids'])} requests)")
            to_send = []
        if to_send:
            lines = ((r.sample_id, backend.line(r.sample_id, r)) for r in to_send)
            for chunk in chunked(((pair, len(pair[1]) + 1) for pair in lines), backend.max_requests, backend.max_bytes):
                batch_id = await backend.submit([line for _, line in chunk], label=Path(writer.dir).name)
                state["batches"].append(
                    {
                        "batch_id": batch_id,
                        "custom_ids": [sid for sid, _ in chunk],
                        "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                )
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(checkpoint, json.dumps(state, indent=2) + "\n")  # before anything else can fail
                stats["submitted"] += len(chunk)
                say(f"batch {batch_id} submitted ({len(chunk)} requests)")
                del chunk
        if submit_only:
            return stats
        if not to_send and state["batches"]:
            say(f"polling {len(state['batches'])} checkpointed batch(es) of {checkpoint.parent.name}")
        for batch in list(state["batches"]):
            final = await _wait(backend, batch["batch_id"], poll_s, say, max_poll_failures)
            results = await backend.results(batch["batch_id"], by_id)
            records = []
            for cid in batch["custom_ids"]:
                request = by_id.get(cid)
                if request is None:  # recorded since, or no longer asked
                    continue
                answer, error = results.get(
                    cid, (None, f"batch {final.status}: no result for this request; run the command again to send it")
                )
                record = _record(adapter, request, answer, error, parser, golds, cached=False, cost=cost)
                if record.status != "error" and answer is not None and cache:
                    cache.put(cache_key(adapter.name, identity, request), answer)
                records.append(record)
                stats["answered" if record.status != "error" else "errors"] += 1
            writer.extend(records)
            state["batches"].remove(batch)
            if state["batches"]:
                write_atomic(checkpoint, json.dumps(state, indent=2) + "\n")
            else:
                checkpoint.unlink(missing_ok=True)
            stats["batches"] += 1
            say(f"batch {batch['batch_id']} {final.status}: {len(records)} recorded")
    except ToxbenchError:
        raise
    except asyncio.CancelledError:  # Ctrl-C: the batches run on at the provider
        if state["batches"]:
            say(
                f"stopped; the batches run on at the provider, checkpointed in {checkpoint}: the same command "
                "picks them up (add --cancel to cancel them; `toxbench runs status RUN` shows them)"
            )
        raise
    except Exception as exc:  # an SDK or HTTP failure: one line; the checkpoint stays
        problem = clip(redact(f"{type(exc).__name__}: {exc}", getattr(adapter, "secrets", ())), 300)
        kept = f" ({len(state['batches'])} batch(es) checkpointed in {checkpoint})" if state["batches"] else ""
        raise ToxbenchError(f"{option}: {problem}; run the same command again to resume{kept}") from None
    finally:
        if (close := getattr(backend, "aclose", None)) is not None:  # a client of the backend's own
            await close()
        if close_adapter:
            await adapter.aclose()
    return stats


def read_checkpoint(path: Path) -> dict:
    """The checkpointed batches ({"batches": [{batch_id, custom_ids, submitted_at}]}) in `path` (a
    run directory's batches.json, or the run directory itself), or none. An annotation step's
    checkpoint of one batch, as `annotate --batch-api` wrote it before this layer, reads as a list
    of one."""
    path = Path(path)
    path = path / CHECKPOINT if path.is_dir() else path
    if not path.exists():
        return {"batches": []}
    text = read_user_text(path, "batch checkpoint", TABLE_BYTES)
    try:
        state = json.loads(text)
        if "batch_id" in state:  # one batch, the annotation pipeline's earlier checkpoint
            state = {"batches": [state]}
        for batch in state["batches"]:
            if not isinstance(batch["batch_id"], str) or not all(isinstance(c, str) for c in batch["custom_ids"]):
                raise TypeError("batch_id is a string and custom_ids a list of strings")
    except (ValueError, KeyError, TypeError) as exc:
        raise ToxbenchError(
            f"{path}: not a batch checkpoint toxbench wrote ({type(exc).__name__}: {exc}); "
            "if its batches are gone, delete the file and run the command again"
        ) from None
    return state


def has_batch_api(adapter_class: type) -> bool:
    """Whether an adapter class has a batch backend (checked before building the adapter)."""
    from toxbench.adapters.base import Adapter

    return adapter_class.batch_backend is not Adapter.batch_backend


def with_batch_api() -> list[str]:
    """The registered adapters that have a batch API, as an error names them (`openai:, ...`)."""
    from toxbench.adapters.registry import adapter_names, get_adapter

    have = []
    for name in adapter_names():
        try:
            if has_batch_api(get_adapter(name)):
                have.append(f"{name}:")
        except (ToxbenchError, ImportError):  # a plugin that cannot be imported has no batch API here
            continue
    return have


async def poll_all(adapter, backend: BatchBackend, batches: list[dict]) -> list[BatchState | str]:
    """Each checkpointed batch's state now, or why it could not be read (for `runs status`); the
    backend's and the adapter's clients closed after, in the same event loop."""
    out: list[BatchState | str] = []
    try:
        for batch in batches:
            try:
                out.append(await backend.poll(batch["batch_id"]))
            except Exception as exc:
                out.append(clip(redact(f"{type(exc).__name__}: {exc}", getattr(adapter, "secrets", ())), 200))
    finally:
        if (close := getattr(backend, "aclose", None)) is not None:
            await close()
        await adapter.aclose()
    return out


async def _wait(backend: BatchBackend, batch_id: str, poll_s: float, say, max_failures: int) -> BatchState:
    last, failures = None, 0
    started = time.monotonic()
    while True:
        try:
            state = await backend.poll(batch_id)
            failures = 0
        except Exception:  # a poll that failed: wait and poll again, up to max_failures in a row
            failures += 1
            if failures > max_failures:
                raise
            await asyncio.sleep(poll_s)
            continue
        if state.ended:
            return state
        seen = (state.status, state.done)
        if seen != last:
            progress = f", {state.done}/{state.total} done" if state.total else ""
            say(f"batch {batch_id} {state.status}{progress} ({time.monotonic() - started:.0f} s)")
            last = seen
        await asyncio.sleep(poll_s)


def _record(adapter, request, answer, error, parser, golds, cached: bool, cost=None):
    if answer is not None and error is None:
        try:
            answer = adapter.decide(bounded_answer(answer))  # a results file's answer is bounded as a live one is
        except FatalError as exc:
            answer, error = None, str(exc)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            answer, error = None, f"malformed response: {type(exc).__name__}: {exc}"
    price = None if cached or answer is None or cost is None else cost(answer.tokens_in, answer.tokens_out)
    return to_record(
        request,
        answer if error is None else None,
        error,
        parser,
        golds.get(request.sample_id),
        attempts=0 if cached else 1,
        cached=cached,
        latency_s=None,
        cost_usd=None if price is None else round(price, 10),
    )
