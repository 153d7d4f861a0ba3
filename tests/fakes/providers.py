"""A real HTTP server on 127.0.0.1 speaking providers' wire formats, scripted by the sample text.

Markers in a text choose what happens: `[429]` a rate limit with Retry-After on the first
attempt, `[500]` a server error once, `[slow]` a reply slower than the client's timeout once,
`[badjson]` a malformed body once, `[down]` a 500 every time, `[filter]` a content-filter finish,
`[refuse]` a refusal, `[nolp]` log-probabilities whose top list begins neither answer word, `[echo]` an answer that echoes the
request's credentials, `[echo400]` a 400 whose long body ends with them, `[quota]` and `[quotadate]` a 429
whose Retry-After is years away (seconds or an HTTP date), `[huge]` 20 KB of gzip inflating to a 20 MB answer. Otherwise the answer is "toxique" when the text contains "TOX", else
"non-toxique". Every request is counted and its headers kept, so tests can check what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKERS = re.compile(
    r"\[(429|500|slow|badjson|down|filter|refuse|nullmsg|nullbody|emptyjson|cfilter|nolp|echo|echo400|quota|quotadate|huge)\]"
)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 resets bursts of concurrent connections


class FakeProvider:
    def __init__(self, slow_s: float = 1.5, delay_s: float = 0.0) -> None:
        self.slow_s = slow_s
        self.delay_s = delay_s  # every answer takes this long (a run that lasts long enough to kill)
        self.requests: list[dict] = []
        self.attempts: Counter = Counter()
        self.healed = False  # True: the [down] outage is over
        self.responder = (
            None  # body -> the answer's text, in place of the scripted verdict (a replay of recorded answers)
        )
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                try:
                    provider.handle(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout under test)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- scripting -----------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, body: dict) -> None:
        text = self.sample_text(h.path, body)
        with self.lock:
            self.attempts[text] += 1
            attempt = self.attempts[text]
            self.requests.append(
                {"path": h.path, "headers": {k.lower(): v for k, v in h.headers.items()}, "body": body, "text": text}
            )
        markers = set(MARKERS.findall(text))
        if self.delay_s:
            time.sleep(self.delay_s)
        if "429" in markers and attempt == 1:
            return self.send(h, 429, self.error_body("rate limited"), {"Retry-After": "0.2"})
        if ("500" in markers and attempt == 1) or ("down" in markers and not self.healed):
            return self.send(h, 500, self.error_body("server error"))
        if attempt == 1 and markers & {"nullmsg", "nullbody", "emptyjson"}:  # valid JSON of a shape no client expects
            odd = {
                "nullmsg": {
                    "id": "x",
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": None, "finish_reason": "stop"}],
                    "results": None,
                    "content": None,
                    "type": "message",
                },
                "nullbody": None,
                "emptyjson": {},
            }
            return self.send(h, 200, odd[next(iter(markers & set(odd)))])
        if "cfilter" in markers and h.path.endswith(
            "/chat/completions"
        ):  # the prompt filter's 400 (Azure OpenAI and compatible servers)
            return self.send(
                h,
                400,
                {
                    "error": {
                        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content "
                        "management policy. Please modify your prompt and retry.",
                        "type": None,
                        "param": "prompt",
                        "code": "content_filter",
                        "status": 400,
                        "innererror": {
                            "code": "ResponsibleAIPolicyViolation",
                            "content_filter_result": {"hate": {"filtered": True, "severity": "high"}},
                        },
                    }
                },
            )
        credentials = (
            h.headers.get("authorization") or h.headers.get("x-api-key") or h.headers.get("x-goog-api-key") or ""
        )
        if "echo400" in markers:  # a careless server: the credentials at the end of a long error body
            return self.send(
                h,
                400,
                {
                    "error": {
                        "message": "invalid request " + "." * 230 + f" (you sent {credentials})",
                        "type": "invalid",
                    }
                },
            )
        if markers & {"quota", "quotadate"}:
            later = "1000000000" if "quota" in markers else "Fri, 31 Dec 2100 23:59:59 GMT"
            return self.send(h, 429, self.error_body("daily quota exceeded"), {"Retry-After": later})
        if "slow" in markers and attempt == 1:
            time.sleep(self.slow_s)
        if "badjson" in markers and attempt == 1:
            return self.send_raw(h, 200, b'{"id": "x", "choices": [', "application/json")
        verdict = self.responder(body) if self.responder else "toxique" if "TOX" in text else "non-toxique"
        self.from_mistral = "mistral" in h.headers.get("user-agent", "")
        if self.from_mistral and h.path.endswith("/chat/completions"):
            # Mistral has no refusal field: a guardrail blocks the request with an error, and a
            # model that declines says so in words.
            if "filter" in markers:
                return self.send(
                    h,
                    403,
                    {
                        "object": "error",
                        "message": "Request blocked by guardrail: hate_and_discrimination",
                        "type": "guardrail_error",
                        "param": None,
                        "code": "guardrail_blocked",
                    },
                )
            if "refuse" in markers:
                verdict, markers = "Je ne peux pas répondre à cette demande.", markers - {"refuse"}
        reply = self.reply(h.path, body, verdict, markers)
        if "huge" in markers:
            import gzip

            reply["padding"] = "x" * (20 << 20)  # a field every client ignores, 20 MB of it
            return self.send_raw(
                h, 200, gzip.compress(json.dumps(reply).encode()), "application/json", {"content-encoding": "gzip"}
            )
        if "echo" in markers:
            reply["debug"] = {"headers_received": credentials}
        return self.send(h, 200, reply)

    def send(self, h, status: int, payload: dict, headers: dict | None = None) -> None:
        self.send_raw(h, status, json.dumps(payload).encode(), "application/json", headers)

    def send_raw(self, h, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("content-type", ctype)
        h.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    # -- wire formats ----------------------------------------------------------------------------
    @staticmethod
    def sample_text(path: str, body: dict) -> str:
        if "messages" in body:  # OpenAI / Mistral / Anthropic chat: the user message holds the text
            content = body["messages"][-1]["content"]
            if isinstance(content, list):
                content = " ".join(part.get("text", "") for part in content)
            return content.rsplit("«", 1)[-1] if "«" in content else content
        if "prompt" in body:  # OpenAI completions (a fine-tuned CoT model's bare prompt)
            return body["prompt"]
        if "input" in body or "inputs" in body:  # moderation endpoints
            value = body.get("input", body.get("inputs"))
            return value if isinstance(value, str) else value[0]
        if "contents" in body:  # Gemini
            return body["contents"][-1]["parts"][0]["text"].rsplit("«", 1)[-1]
        if "comment" in body:  # Perspective
            return body["comment"]["text"]
        return ""

    @staticmethod
    def first_token(verdict: str, top: int, neither: bool) -> dict:
        """The first token's entry: `tox` at 0.8 and `non` at 0.15 for a toxic verdict (swapped
        otherwise), then other tokens; with `neither`, only tokens that begin no answer word."""
        import math

        def entry(token: str, p: float) -> dict:  # Mistral's SDK also requires token_id
            return {
                "token": token,
                "logprob": math.log(p),
                "bytes": list(token.encode()),
                "token_id": sum(token.encode()),
            }

        first, second = ("tox", "non") if verdict == "toxique" else ("non", "tox")
        ranked = (
            [entry("**", 0.7), entry("Le", 0.2), entry("La", 0.05)]
            if neither
            else [entry(first, 0.8), entry(second, 0.15), entry(" ", 0.03)]
        )
        return {**ranked[0], "top_logprobs": ranked[:top]}

    @staticmethod
    def error_body(message: str) -> dict:
        # OpenAI's and Google's envelope; Anthropic adds {"type": "error"} around the same shape
        return {"type": "error", "error": {"message": message, "type": "api_error", "code": 500, "status": "INTERNAL"}}

    def reply(self, path: str, body: dict, verdict: str, markers: set) -> dict:
        if path.endswith("/chat/completions"):
            finish = "content_filter" if "filter" in markers else "stop"
            message = {"role": "assistant", "content": None if "refuse" in markers else verdict}
            if "refuse" in markers:
                message["refusal"] = "I can't help with that."
            choice = {"index": 0, "message": message, "finish_reason": finish}
            if body.get("logprobs"):  # the chat completions logprobs shape: per generated token, its top alternatives
                choice["logprobs"] = {
                    "content": [self.first_token(verdict, body.get("top_logprobs") or 0, "nolp" in markers)],
                    "refusal": None,
                }
            return {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [choice],
                "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103},
            }
        if path.endswith("/completions"):  # OpenAI completions: a CoT answer ending in its conclusion
            text = f"<think>analyse</think>\nQuestion : ce message est-il toxique ?\nConclusion : {'oui' if verdict == 'toxique' else 'non'}"
            return {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 0,
                "model": body.get("model"),
                "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60},
            }
        if path.endswith("/moderations") and self.from_mistral:  # Mistral's shape (its SDK also sends "input")
            flagged = verdict == "toxique"
            scores = {
                "sexual": 0.01,
                "hate_and_discrimination": 0.88 if flagged else 0.03,
                "violence_and_threats": 0.2,
                "dangerous_and_criminal_content": 0.01,
                "selfharm": 0.0,
                "health": 0.97,
                "financial": 0.0,
                "law": 0.0,
                "pii": 0.0,
            }
            return {
                "id": "mod-1",
                "model": body.get("model"),
                "results": [{"categories": {k: v >= 0.5 for k, v in scores.items()}, "category_scores": scores}],
            }
        if path.endswith("/moderations"):
            flagged = verdict == "toxique"
            scores = {"harassment": 0.91 if flagged else 0.02, "hate": 0.40 if flagged else 0.01, "violence": 0.05}
            categories = {k: v >= 0.5 for k, v in scores.items()}
            return {
                "id": "modr-1",
                "model": body.get("model"),
                "results": [{"flagged": flagged, "categories": categories, "category_scores": scores}],
            }
        if path.endswith("/messages"):  # Anthropic
            blocked = "refuse" in markers or "filter" in markers
            return {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [] if blocked else [{"type": "text", "text": verdict}],
                "stop_reason": "refusal" if blocked else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 120, "output_tokens": 4},
            }
        if ":generateContent" in path:  # Gemini
            usage = {"promptTokenCount": 90, "candidatesTokenCount": 2, "totalTokenCount": 92}
            if "refuse" in markers:
                return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": usage}
            finish = "SAFETY" if "filter" in markers else "STOP"
            parts = [] if "filter" in markers else [{"text": verdict}]
            candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
            config = body.get("generationConfig") or {}
            if config.get(
                "responseLogprobs"
            ):  # Gemini's shape: per decoding step, the top candidates and the chosen one
                first = self.first_token(verdict, config.get("logprobs") or 0, "nolp" in markers)
                gemini = [
                    {"token": e["token"], "tokenId": e["token_id"], "logProbability": e["logprob"]}
                    for e in first["top_logprobs"]
                ]
                candidate["logprobsResult"] = {
                    "topCandidates": [{"candidates": gemini}],
                    "chosenCandidates": gemini[:1],
                }
                candidate["avgLogprobs"] = first["logprob"]
            return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-fake"}
        if path.startswith("/v1alpha1/comments:analyze"):  # Perspective
            base = 0.82 if verdict == "toxique" else 0.12
            attrs = body.get("requestedAttributes", {})
            scores = {a: round(base - 0.1 * i, 3) for i, a in enumerate(sorted(attrs))}
            return {
                "attributeScores": {
                    a: {"summaryScore": {"value": v, "type": "PROBABILITY"}, "spanScores": []}
                    for a, v in scores.items()
                },
                "languages": body.get("languages", ["fr"]),
                "detectedLanguages": ["fr"],
            }
        raise AssertionError(f"unexpected path {path}")
