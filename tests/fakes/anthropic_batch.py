"""A loopback server speaking Anthropic's Message Batches wire format: POST /v1/messages/batches,
GET /v1/messages/batches/{id} (in_progress for `polls_in_progress` polls, then ended with a
results_url), GET /v1/messages/batches/{id}/results (JSONL, in reverse order: results need not
follow the requests). `expire_after` answers only the first N requests and marks the rest expired."""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeMessageBatches:
    def __init__(self, responder, polls_in_progress: int = 1) -> None:
        self.responder, self.polls_in_progress = responder, polls_in_progress
        self.expire_after: int | None = None
        self.batches: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []
        self.ids = itertools.count(1)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                api.calls.append(("POST", self.path))
                if self.path == "/v1/messages/batches":
                    return api.send(self, 200, api.create(body["requests"]))
                api.send(self, 404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

            def do_GET(self):
                api.calls.append(("GET", self.path))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 4:
                    return api.send(self, 200, api.poll(parts[3]))
                if parts[:3] == ["v1", "messages", "batches"] and len(parts) == 5 and parts[4] == "results":
                    data = api.results(parts[3]).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/binary")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                api.send(self, 404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def send(handler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

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
