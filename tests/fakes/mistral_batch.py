"""A loopback server speaking Mistral's Files and batch jobs wire format: POST /v1/files (multipart,
purpose=batch), POST /v1/batch/jobs, GET /v1/batch/jobs/{id} (QUEUED, RUNNING for
`polls_in_progress` polls, then SUCCESS), GET /v1/files/{id}/content, POST
/v1/batch/jobs/{id}/cancel. Output lines come in reverse order; a custom_id in `fail_ids` gets an
error-file line; `timeout_after` answers only the first N lines and ends TIMEOUT_EXCEEDED; a text
containing "[filter]" is blocked by a guardrail (HTTP 403), as the live API blocks it."""

from __future__ import annotations

import json

from fakes.loopback import LoopbackServer, multipart_fields


class FakeMistralBatches(LoopbackServer):
    def __init__(self, responder, polls_in_progress: int = 1) -> None:
        self.timeout_after: int | None = None
        self.fail_ids: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict] = {}
        super().__init__(responder, polls_in_progress)

    def route(self, method, path, headers, body):
        parts = path.split("?")[0].strip("/").split("/")
        if (method, path) == ("POST", "/v1/files"):
            return 200, self.upload(headers.get("content-type", ""), body)
        if (method, path) == ("POST", "/v1/batch/jobs"):
            return 200, self.create(json.loads(body))
        if method == "GET" and parts[:3] == ["v1", "batch", "jobs"] and len(parts) == 4:
            return 200, self.poll(parts[3])
        if method == "POST" and parts[:3] == ["v1", "batch", "jobs"] and parts[4:] == ["cancel"]:
            self.jobs[parts[3]]["status"] = "CANCELLATION_REQUESTED"
            return 200, self.jobs[parts[3]]
        if method == "GET" and parts[:2] == ["v1", "files"] and parts[3:] == ["content"]:
            return 200, self.files[parts[2]]
        return 404, {"object": "error", "message": f"no route {method} {path}", "type": "invalid_request_error"}

    def upload(self, content_type: str, body: bytes) -> dict:
        fields = multipart_fields(content_type, body)
        assert fields["purpose"].get_content().strip() == "batch"
        data = fields["file"].get_payload(decode=True)
        file_id = f"00000000-0000-0000-0000-{next(self.ids):012d}"
        self.files[file_id] = data
        return {
            "id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
            "filename": fields["file"].get_filename(), "purpose": "batch", "sample_type": "batch_request",
            "source": "upload", "num_lines": data.count(b"\n"),
        }  # fmt: skip

    def create(self, params: dict) -> dict:
        assert params["endpoint"] == "/v1/chat/completions" and params["model"]
        lines = [json.loads(x) for f in params["input_files"] for x in self.files[f].decode().splitlines() if x.strip()]
        for line in lines:
            assert set(line) == {"custom_id", "body"} and "messages" in line["body"] and "model" not in line["body"]
        job_id = f"10000000-0000-0000-0000-{next(self.ids):012d}"
        with self.lock:
            self.jobs[job_id] = {
                "id": job_id, "object": "batch", "input_files": params["input_files"], "endpoint": params["endpoint"],
                "model": params["model"], "errors": [], "status": "QUEUED", "created_at": 0, "total_requests": len(lines),
                "completed_requests": 0, "succeeded_requests": 0, "failed_requests": 0, "metadata": params.get("metadata"),
                "output_file": None, "error_file": None, "_lines": lines, "_polls": 0,
            }  # fmt: skip
        return self.public(job_id)

    def public(self, job_id: str) -> dict:
        return {k: v for k, v in self.jobs[job_id].items() if not k.startswith("_")}

    def poll(self, job_id: str) -> dict:
        with self.lock:
            job = self.jobs[job_id]
            job["_polls"] += 1
            if job["status"] == "CANCELLATION_REQUESTED":
                job["status"] = "CANCELLED"
            elif job["status"] in ("QUEUED", "RUNNING"):
                if job["_polls"] > self.polls_in_progress:
                    self._finish(job)
                else:
                    job["status"] = "RUNNING"
            return self.public(job_id)

    def _finish(self, job: dict) -> None:
        lines = job["_lines"] if self.timeout_after is None else job["_lines"][: self.timeout_after]
        out, errors = [], []
        for n, line in enumerate(lines):
            if line["custom_id"] in self.fail_ids:
                body = {"object": "error", "message": "Service unavailable", "type": "internal_error"}
                errors.append(
                    {"id": f"r{n}", "custom_id": line["custom_id"], "response": {"status_code": 500, "body": body}}
                )
                continue
            if "[filter]" in line["body"]["messages"][-1]["content"]:
                body = {"object": "error", "message": "Request blocked by guardrail: hate_and_discrimination",
                        "type": "guardrail_error", "param": None, "code": "guardrail_blocked"}  # fmt: skip
                errors.append(
                    {"id": f"r{n}", "custom_id": line["custom_id"], "response": {"status_code": 403, "body": body}}
                )
                continue
            message = {"role": "assistant", "content": self.responder(line["body"]), "tool_calls": None}
            completion = {
                "id": f"cmpl-{n}", "object": "chat.completion", "model": job["model"], "created": 0,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 150, "completion_tokens": 5, "total_tokens": 155},
            }  # fmt: skip
            out.append(
                {"id": f"r{n}", "custom_id": line["custom_id"], "response": {"status_code": 200, "body": completion}}
            )
        for key, items in (("output_file", out), ("error_file", errors)):
            if items:
                file_id = f"20000000-0000-0000-0000-{next(self.ids):012d}"
                self.files[file_id] = "".join(json.dumps(i) + "\n" for i in reversed(items)).encode()
                job[key] = file_id
        job["status"] = "SUCCESS" if self.timeout_after is None else "TIMEOUT_EXCEEDED"
        job["completed_requests"] = len(out) + len(errors)
        job["succeeded_requests"], job["failed_requests"] = len(out), len(errors)
