"""A loopback server speaking the Gemini API's Batch Mode wire format (inline requests), under
the API version the SDK asks for (v1, v1beta): POST /VERSION/models/{model}:batchGenerateContent,
GET /VERSION/batches/{id} (BATCH_STATE_PENDING,
RUNNING for `polls_in_progress` polls, then SUCCEEDED with the inlined responses, in reverse
order), POST /VERSION/batches/{id}:cancel. `expire_after` answers only the first N requests and
ends EXPIRED; a key in `fail_keys` gets a per-request error instead of a response."""

from __future__ import annotations

import json

from fakes.loopback import LoopbackServer


class FakeGeminiBatches(LoopbackServer):
    def __init__(self, responder, polls_in_progress: int = 1) -> None:
        self.expire_after: int | None = None
        self.fail_keys: set[str] = set()
        self.jobs: dict[str, dict] = {}
        super().__init__(responder, polls_in_progress)

    def route(self, method, path, headers, body):
        version, _, rest = path.split("?")[0].lstrip("/").partition("/")
        if method == "POST" and rest.startswith("models/") and rest.endswith(":batchGenerateContent"):
            return 200, self.create(rest.removesuffix(":batchGenerateContent"), json.loads(body)["batch"])
        if method == "GET" and rest.startswith("batches/") and version in ("v1", "v1beta"):
            return 200, self.poll(rest)
        if method == "POST" and rest.startswith("batches/") and rest.endswith(":cancel"):
            self.jobs[rest.removesuffix(":cancel")]["state"] = "BATCH_STATE_CANCELLED"
            return 200, {}
        return 404, {"error": {"code": 404, "message": f"no route {method} {path}", "status": "NOT_FOUND"}}

    def create(self, model: str, batch: dict) -> dict:
        requests = batch["inputConfig"]["requests"]["requests"]
        for r in requests:
            assert r["request"]["contents"][0]["parts"][0]["text"] and r["metadata"]["key"]
        name = f"batches/b{next(self.ids)}"
        with self.lock:
            self.jobs[name] = {"model": model, "display": batch.get("displayName"), "requests": requests,
                               "state": "BATCH_STATE_PENDING", "polls": 0, "output": None}  # fmt: skip
        return self.operation(name)

    def operation(self, name: str) -> dict:
        job = self.jobs[name]
        ended = job["state"] not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING")
        metadata = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch",
            "model": job["model"], "displayName": job["display"], "state": job["state"],
            "createTime": "2026-12-05T00:00:00Z", "name": name,
            "batchStats": {"requestCount": str(len(job["requests"]))},
        }  # fmt: skip
        if job["output"] is not None:
            metadata["output"] = {"inlinedResponses": {"inlinedResponses": job["output"]}}
        return {"name": name, "metadata": metadata, "done": ended}

    def poll(self, name: str) -> dict:
        with self.lock:
            job = self.jobs[name]
            job["polls"] += 1
            if job["state"] in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                if job["polls"] > self.polls_in_progress:
                    self._finish(job)
                else:
                    job["state"] = "BATCH_STATE_RUNNING"
            return self.operation(name)

    def _finish(self, job: dict) -> None:
        answered = job["requests"] if self.expire_after is None else job["requests"][: self.expire_after]
        out = []
        for r in answered:
            key = r["metadata"]["key"]
            if key in self.fail_keys:
                out.append({"error": {"code": 13, "message": "Internal error"}, "metadata": {"key": key}})
                continue
            text = self.responder(r["request"])
            response = {
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 90, "candidatesTokenCount": 2, "totalTokenCount": 92},
                "modelVersion": "gemini-fake",
            }  # fmt: skip
            out.append({"response": response, "metadata": {"key": key}})
        job["output"] = list(reversed(out))
        job["state"] = "BATCH_STATE_SUCCEEDED" if self.expire_after is None else "BATCH_STATE_EXPIRED"
