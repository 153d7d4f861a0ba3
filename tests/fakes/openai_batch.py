"""A loopback server speaking OpenAI's Files and Batch API wire format: POST /v1/files (multipart
upload), POST /v1/batches, GET /v1/batches/{id}, GET /v1/files/{id}/content, POST
/v1/batches/{id}/cancel (cancelling, then cancelled with nothing answered).

A batch is `validating`, then `in_progress` for `polls_in_progress` polls, then ends with
`end_status` (completed by default; `expired` answers only the first `expire_after` lines). Each
input line's body is answered by `responder(body)` (the chat answer's text); a custom_id in
`fail_ids` gets a 500 line in the error file instead. `polls_down` makes every poll a 500.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeBatchAPI:
    def __init__(self, responder, polls_in_progress: int = 2) -> None:
        self.responder = responder
        self.polls_in_progress = polls_in_progress
        self.end_status = "completed"
        self.expire_after: int | None = None
        self.fail_ids: set[str] = set()
        self.polls_down = False  # True: GET /v1/batches/{id} answers 500 (a command that dies while waiting)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.calls: list[tuple[str, str]] = []  # (method, path)
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                api.calls.append(("POST", self.path))
                if self.path == "/v1/files":
                    return api.send(self, 200, api.upload(self.headers.get("content-type", ""), body))
                if self.path == "/v1/batches":
                    return api.send(self, 200, api.create(json.loads(body)))
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v1", "batches"] and parts[3:] == ["cancel"]:
                    return api.send(self, 200, api.cancel(parts[2]))
                api.send(self, 404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

            def do_GET(self):
                api.calls.append(("GET", self.path))
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v1", "batches"] and len(parts) == 3:
                    if api.polls_down:
                        return api.send(
                            self, 500, {"error": {"message": "The server had an error", "type": "server_error"}}
                        )
                    return api.send(self, 200, api.poll(parts[2]))
                if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                    data = api.files[parts[2]]
                    self.send_response(200)
                    self.send_header("content-type", "application/octet-stream")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    return self.wfile.write(data)
                api.send(self, 404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

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

    def upload(self, content_type: str, body: bytes) -> dict:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + body
        )
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        assert fields["purpose"].get_content().strip() == "batch"
        data = fields["file"].get_payload(decode=True)
        file_id = f"file-{next(self.ids)}"
        self.files[file_id] = data
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": 0,
            "filename": fields["file"].get_filename(),
            "purpose": "batch",
            "status": "processed",
        }

    def create(self, params: dict) -> dict:
        assert params["endpoint"] == "/v1/chat/completions" and params["completion_window"] == "24h"
        lines = [json.loads(line) for line in self.files[params["input_file_id"]].decode().splitlines() if line.strip()]
        for line in lines:
            assert line["method"] == "POST" and line["url"] == "/v1/chat/completions" and "messages" in line["body"]
        batch_id = f"batch_{next(self.ids)}"
        with self.lock:
            self.batches[batch_id] = {
                "lines": lines,
                "polls": 0,
                "object": self._object(batch_id, params["input_file_id"], "validating", len(lines)),
            }
        return self.batches[batch_id]["object"]

    @staticmethod
    def _object(batch_id: str, input_file_id: str, status: str, total: int) -> dict:
        return {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 0,
            "in_progress_at": None,
            "expires_at": 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": total, "completed": 0, "failed": 0},
            "metadata": {},
        }

    def cancel(self, batch_id: str) -> dict:
        with self.lock:
            self.batches[batch_id]["object"]["status"] = "cancelling"
            return self.batches[batch_id]["object"]

    def poll(self, batch_id: str) -> dict:
        with self.lock:
            entry = self.batches[batch_id]
            entry["polls"] += 1
            obj = entry["object"]
            if obj["status"] == "cancelling":  # cancelled before any request was answered
                obj["status"] = "cancelled"
            elif obj["status"] in ("validating", "in_progress") and entry["polls"] > self.polls_in_progress:
                self._finish(entry)
            elif obj["status"] == "validating":
                obj["status"] = "in_progress"
            return obj

    def _finish(self, entry: dict) -> None:
        obj, lines = entry["object"], entry["lines"]
        answered = lines if self.expire_after is None else lines[: self.expire_after]
        out, errors = [], []
        for n, line in enumerate(answered):
            if line["custom_id"] in self.fail_ids:
                errors.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": line["custom_id"],
                        "error": None,
                        "response": {
                            "status_code": 500,
                            "request_id": f"req_{n}",
                            "body": {"error": {"message": "The server had an error", "type": "server_error"}},
                        },
                    }
                )
                continue
            text = self.responder(line["body"])
            body = {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": 0,
                "model": line["body"]["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 200, "completion_tokens": 20, "total_tokens": 220},
            }
            out.append(
                {
                    "id": f"batch_req_{n}",
                    "custom_id": line["custom_id"],
                    "response": {"status_code": 200, "request_id": f"req_{n}", "body": body},
                    "error": None,
                }
            )
        for kind, items in (("output_file_id", out), ("error_file_id", errors)):
            if items:
                file_id = f"file-{next(self.ids)}"
                self.files[file_id] = "".join(json.dumps(i) + "\n" for i in items).encode()
                obj[kind] = file_id
        obj["status"] = self.end_status
        obj["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(errors)}
