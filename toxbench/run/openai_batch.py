"""One annotation step through OpenAI's Batch API (half the price of live requests; results within
its 24-hour window), for large corpora.

The step's requests become one JSONL file (`custom_id` = the comment id, `body` = exactly what the
live request would post), uploaded and submitted as a batch. The batch's id is checkpointed in
OUT/batches/<step>.json as soon as it exists, so a command stopped while waiting polls the same
batch when run again instead of paying for a second one. When the batch ends, its results are
merged into the step's run by custom_id: an answer is recorded like a live one (cost at half the
price table's), and a request the batch failed or never answered (expired, cancelled) is recorded
as `error`, to be sent again by the next command. The checkpoint goes once every result is in.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.adapters.base import AdapterError
from toxbench.errors import ToxbenchError
from toxbench.redaction import clip, redact
from toxbench.run.engine import to_record
from toxbench.types import Request

BATCHES_DIR = "batches"
ENDED = ("completed", "failed", "expired", "cancelled")
BATCH_DISCOUNT = 0.5  # the Batch API's price against live requests


def check_batchable(adapter) -> None:
    if not hasattr(adapter, "request_body") or getattr(adapter, "prompt_template", None) is not None:
        raise ToxbenchError(
            f"--batch-api: {adapter.name!r} has no Batch API here; use an openai: chat model (or leave --batch-api out)"
        )


def _error_of(item: dict | None, status: str) -> str:
    if item is None:
        return f"batch {status}: no result for this request; run the command again to send it"
    response, error = item.get("response") or {}, item.get("error")
    body = response.get("body") if isinstance(response, dict) else None
    message = (error or {}).get("message") if isinstance(error, dict) else None
    if message is None and isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    return f"batch request failed (HTTP {response.get('status_code', '?')}): {message or clip(json.dumps(item, ensure_ascii=False), 200)}"


async def run_step_batch(
    adapter,
    step: str,
    requests: list[Request],
    writer,
    parser,
    golds: dict,
    out: Path,
    poll_s: float,
    cost,
    say=print,
    max_retries: int = 5,
) -> None:
    """Submit (or resume) the step's batch, wait for it, and record its results (`say` reports
    each stage). A failed poll is tried again after `poll_s`, up to `max_retries` times in
    a row, before the command stops (the batch stays checkpointed)."""
    checkpoint = out / BATCHES_DIR / f"{step}.json"
    state = json.loads(checkpoint.read_text("utf-8")) if checkpoint.exists() else None
    client = adapter.client
    try:
        if state is None:
            if not requests:
                return
            lines = []
            for request in requests:
                path, body = adapter.request_body(request)
                lines.append(
                    json.dumps(
                        {"custom_id": request.sample_id, "method": "POST", "url": f"/v1{path}", "body": body},
                        ensure_ascii=False,
                    )
                )
            uploaded = await client.files.create(
                file=(f"toxbench-{step}.jsonl", ("\n".join(lines) + "\n").encode("utf-8")), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"toxbench_step": step},
            )
            state = {
                "batch_id": batch.id,
                "input_file_id": uploaded.id,
                "custom_ids": [r.sample_id for r in requests],
                "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(checkpoint, json.dumps(state, indent=2) + "\n")
            say(
                f"{step}: batch {batch.id} submitted ({len(requests)} requests); waiting (Ctrl-C is safe: the same command polls it again)"
            )
        else:
            say(f"{step}: polling batch {state['batch_id']} submitted at {state['submitted_at']}")
        last, failures = None, 0
        while True:
            try:
                batch = await client.batches.retrieve(state["batch_id"])
                failures = 0
            except Exception:  # a poll that failed: wait and poll again, up to max_retries in a row
                failures += 1
                if failures > max_retries:
                    raise
                await asyncio.sleep(poll_s)
                continue
            if batch.status in ENDED:
                break
            counts = batch.request_counts
            seen = (batch.status, counts.completed if counts else None)
            if seen != last:
                say(
                    f"{step}: batch {batch.status}"
                    + (f", {counts.completed + counts.failed}/{counts.total} done" if counts else "")
                )
                last = seen
            await asyncio.sleep(poll_s)
        results: dict[str, dict] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await client.files.content(file_id)
                for line in content.text.splitlines():
                    if line.strip():
                        item = json.loads(line)
                        results[item["custom_id"]] = item
    except Exception as exc:  # an SDK or HTTP failure: one line; the checkpoint stays
        problem = clip(redact(f"{type(exc).__name__}: {exc}", getattr(adapter, "secrets", ())), 300)
        raise ToxbenchError(
            f"--batch-api, step {step}: {problem}; run the same command again to resume"
            + (f" (batch {state['batch_id']} is checkpointed)" if state else "")
        ) from None
    by_id = {r.sample_id: r for r in requests}
    records, answered = [], 0
    for cid in state["custom_ids"]:
        request = by_id.get(cid)
        if request is None:  # recorded since (or no longer asked): nothing to merge
            continue
        item = results.get(cid)
        response = (item or {}).get("response") or {}
        answer, error = None, None
        if response.get("status_code") == 200 and isinstance(response.get("body"), dict):
            try:
                answer = adapter.answer_from_body(
                    json.dumps(response["body"], ensure_ascii=False).encode("utf-8"),
                    "/chat/completions",
                    request.labels,
                )
            except AdapterError as exc:
                error = f"{type(exc).__name__}: {exc}"
        else:
            error = _error_of(item, batch.status)
        price = None if answer is None else cost(answer.tokens_in, answer.tokens_out)
        records.append(
            to_record(
                request,
                answer if error is None else None,
                error,
                parser,
                golds.get(cid),
                attempts=1,
                cached=False,
                latency_s=None,
                cost_usd=None if price is None else price * BATCH_DISCOUNT,
            )
        )
        answered += error is None
    writer.extend(records)
    checkpoint.unlink()
    say(
        f"{step}: batch {state['batch_id']} {batch.status}: {answered} answered, {len(records) - answered} recorded as errors"
    )
