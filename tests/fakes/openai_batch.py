"""A loopback server speaking OpenAI's Files and Batch API wire format: POST /v1/files (multipart
upload), POST /v1/batches, GET /v1/batches/{id}, GET /v1/files/{id}/content, POST
/v1/batches/{id}/cancel (cancelling, then cancelled with nothing answered).

A batch is `validating`, then `in_progress` for `polls_in_progress` polls, then ends with
`end_status` (completed by default; `expired` answers only the first `expire_after` lines). Each
input line's body is answered by `responder(body)` (the chat answer's text); a custom_id in
`fail_ids` gets a 500 line in the error file instead. `polls_down` makes every poll a 500.
"""

from __future__ import annotations

import json

from fakes.loopback import LoopbackServer, multipart_fields


class FakeBatchAPI(LoopbackServer):
    URL_PATH = "/v1"

    def __init__(self, responder, polls_in_progress: int = 2) -> None:
        self.end_status = "completed"
        self.expire_after: int | None = None
        self.fail_ids: set[str] = set()
        self.polls_down = False  # True: GET /v1/batches/{id} answers 500 (a command that dies while waiting)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        super().__init__(responder, polls_in_progress)

    def route(self, method, path, headers, body):
        parts = path.strip("/").split("/")
        if (method, path) == ("POST", "/v1/files"):
            return 200, self.upload(headers.get("content-type", ""), body)
        if (method, path) == ("POST", "/v1/batches"):
            return 200, self.create(json.loads(body))
        if method == "POST" and parts[:2] == ["v1", "batches"] and parts[3:] == ["cancel"]:
            return 200, self.cancel(parts[2])
        if method == "GET" and parts[:2] == ["v1", "batches"] and len(parts) == 3:
            if self.polls_down:
                return 500, {"error": {"message": "The server had an error", "type": "server_error"}}
            return 200, self.poll(parts[2])
        if method == "GET" and parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
            return 200, self.files[parts[2]]
        return 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}

    def upload(self, content_type: str, body: bytes) -> dict:
        fields = multipart_fields(content_type, body)
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
