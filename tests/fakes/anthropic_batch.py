"""A loopback server speaking Anthropic's Message Batches wire format: POST /v1/messages/batches,
GET /v1/messages/batches/{id} (in_progress for `polls_in_progress` polls, then ended with a
results_url), GET /v1/messages/batches/{id}/results (JSONL, in reverse order: results need not
follow the requests). `expire_after` answers only the first N requests and marks the rest expired."""

from __future__ import annotations

import json

from fakes.loopback import LoopbackServer


class FakeMessageBatches(LoopbackServer):
    def __init__(self, responder, polls_in_progress: int = 1) -> None:
        self.expire_after: int | None = None
        self.batches: dict[str, dict] = {}
        super().__init__(responder, polls_in_progress)

    def route(self, method, path, headers, body):
        parts = path.split("?")[0].strip("/").split("/")
        if (method, path) == ("POST", "/v1/messages/batches"):
            return 200, self.create(json.loads(body)["requests"])
        if method == "GET" and parts[:3] == ["v1", "messages", "batches"] and len(parts) == 4:
            return 200, self.poll(parts[3])
        if method == "GET" and parts[:3] == ["v1", "messages", "batches"] and parts[4:] == ["results"]:
            return 200, self.results(parts[3]).encode()
        return 404, {"type": "error", "error": {"type": "not_found_error", "message": path}}

    def create(self, requests: list[dict]) -> dict:
        for r in requests:
            assert set(r) == {"custom_id", "params"} and r["params"]["max_tokens"] >= 1
        batch_id = f"msgbatch_{next(self.ids)}"
        self.batches[batch_id] = {"requests": requests, "polls": 0}
        return self._object(batch_id, "in_progress", len(requests), 0)

    def _object(self, batch_id: str, status: str, total: int, done: int) -> dict:
        ended = status == "ended"
        answered = min(done, self.expire_after) if self.expire_after is not None else done
        return {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": {
                "processing": total - done,
                "succeeded": answered,
                "errored": 0,
                "canceled": 0,
                "expired": done - answered,
            },
            "created_at": "2026-12-05T00:00:00Z",
            "expires_at": "2026-12-06T00:00:00Z",
            "ended_at": "2026-12-05T00:01:00Z" if ended else None,
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{self.url}/v1/messages/batches/{batch_id}/results" if ended else None,
        }

    def poll(self, batch_id: str) -> dict:
        batch = self.batches[batch_id]
        batch["polls"] += 1
        total = len(batch["requests"])
        if batch["polls"] <= self.polls_in_progress:
            return self._object(batch_id, "in_progress", total, 0)
        return self._object(batch_id, "ended", total, total)

    def results(self, batch_id: str) -> str:
        lines = []
        for i, r in enumerate(self.batches[batch_id]["requests"]):
            if self.expire_after is not None and i >= self.expire_after:
                lines.append({"custom_id": r["custom_id"], "result": {"type": "expired"}})
                continue
            text = self.responder(r["params"])
            message = {
                "id": f"msg_{i}",
                "type": "message",
                "role": "assistant",
                "model": r["params"]["model"],
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 120, "output_tokens": 4},
            }
            lines.append({"custom_id": r["custom_id"], "result": {"type": "succeeded", "message": message}})
        return "".join(json.dumps(line) + "\n" for line in reversed(lines))
