"""Mistral chat and Mistral moderation, through the official `mistralai` SDK (3.x:
`from mistralai.client import Mistral`). The SDK's own retries are off: the engine retries.

`base_url` is the SDK's `server_url` (the old name is still accepted). Mistral's chat answers carry
no refusal field. A request blocked by a guardrail comes back as an HTTP 4xx error whose body names
the guardrail or moderation; that is recorded as `refused`, not as an error. A model that declines
in words is recognised by the answer parser."""

from __future__ import annotations

import json
from dataclasses import replace

from toxbench.adapters._logprobs import TOP_LOGPROBS, answer_word_score, mode_identity, use_mode
from toxbench.adapters._sdk import (
    batch_result_line,
    bounded_http_client,
    error_for_status,
    jsonl_objects,
    reading_response,
    require,
)
from toxbench.adapters.base import Adapter, AdapterError, BatchState, Capabilities, TransientError
from toxbench.adapters.registry import register
from toxbench.errors import ToxbenchError
from toxbench.redaction import clip
from toxbench.types import Answer, Request

# The release's rule: toxic when any of these moderation flags is raised.
DEFAULT_CATEGORIES = (
    "sexual",
    "hate_and_discrimination",
    "violence_and_threats",
    "dangerous_and_criminal_content",
    "selfharm",
)
NORMAL_FINISH = {"stop", "length", "model_length", "tool_calls", "error"}
BLOCK_WORDS = ("guardrail", "moderation", "blocked")


def _base_url(base_url: str | None, server_url: str | None) -> str | None:
    if base_url and server_url and base_url != server_url:
        raise ToxbenchError(
            f"mistral: base_url={base_url!r} and server_url={server_url!r} differ; give base_url only (server_url is its old name)"
        )
    return base_url or server_url


def _client(api_key: str, base_url: str | None, who: str, bounded: bool = True):
    """The SDK's client without its retries; `bounded`: every body read to at most ANSWER_CHARS (a
    batch's results file is larger than any one answer, so batch calls use an unbounded one)."""
    require("mistralai.client", "api", f"adapter {who!r}")
    import httpx
    from mistralai.client import Mistral
    from mistralai.client.utils.retries import BackoffStrategy, RetryConfig

    no_retries = RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False)
    return Mistral(
        api_key=api_key,
        server_url=base_url,
        retry_config=no_retries,
        async_client=bounded_http_client(httpx.AsyncClient, timeout=None)
        if bounded
        else httpx.AsyncClient(timeout=None),
    )


def guardrail_refusal(status: int | None, body: str | None) -> Answer | None:
    """A 4xx whose body names a guardrail or moderation is a refusal, not an error (live or batched)."""
    if status and 400 <= status < 500 and status != 429 and any(w in (body or "").lower() for w in BLOCK_WORDS):
        return Answer(refused=True, raw=body)
    return None


def _translate(exc: Exception) -> Exception:
    from mistralai.client import errors

    if isinstance(exc, AdapterError):  # an unbounded body, stopped in the transport
        return exc
    if isinstance(exc, errors.NoResponseError):
        return TransientError(f"no response: {clip(str(exc), 200)}")
    if isinstance(exc, errors.ResponseValidationError):
        return TransientError(f"malformed response: {clip(str(exc), 200)}")
    if isinstance(exc, errors.MistralError):
        return error_for_status(exc.status_code, clip(exc.body, 300), exc.headers.get("retry-after"))
    if type(exc).__module__.startswith(("httpx", "httpcore")) or isinstance(exc, ValueError):
        return TransientError(f"{type(exc).__name__}: {clip(str(exc), 200)}")
    return exc


@register("mistral")
class MistralChat(Adapter):
    kind = "chat"
    capabilities = Capabilities(concurrency=8)
    varies = "mode=score gives scores (P(toxic) from the first token's log-probabilities)"
    required_env = ("MISTRAL_API_KEY",)
    description = "Mistral chat completions"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        api_key_env: str | None = None,
        server_url: str | None = None,
        mode: str = "label",
        top_logprobs: int = TOP_LOGPROBS,
    ) -> None:
        """`--model-arg` keys of `mistral:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            temperature: Sampling temperature (0: the most likely answer).
            max_tokens: Most tokens in the answer (default: the provider's).
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
            server_url: The mistralai SDK's name for base_url (either works).
            mode: `label`: read the answer word; `score`: also P(toxic) from the first answer token's log-
                probabilities (ROC-AUC for an API run).
            top_logprobs: Log-probabilities asked for in score mode (1–20), for a model that allows fewer.
        """
        self.model, self.base_url, self.temperature, self.max_tokens = (
            model,
            _base_url(base_url, server_url),
            temperature,
            max_tokens,
        )
        use_mode(self, mode, top_logprobs)
        key = self.key_from_env(api_key_env)
        self.secrets = (key,)
        self.client = _client(key, self.base_url, self.name)

    def identity(self) -> dict:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **mode_identity(self),
        }

    def params(self, request: Request) -> dict:
        """The chat request's body, less the model (live, or one line of a batch)."""
        params = {"messages": list(request.messages), "temperature": self.temperature}
        if self.max_tokens:
            params["max_tokens"] = self.max_tokens
        if self.mode == "score":
            params["logprobs"], params["top_logprobs"] = True, self.top_logprobs
        return params

    async def answer(self, request: Request) -> Answer:
        from mistralai.client import errors

        try:
            response = await self.client.chat.complete_async(model=self.model, **self.params(request))
        except errors.MistralError as exc:
            if (refusal := guardrail_refusal(exc.status_code, exc.body)) is not None:
                return refusal
            raise _translate(exc) from None
        except Exception as exc:
            raise _translate(exc) from None
        return self.answer_from_response(response, request.labels)

    def answer_from_response(self, response, labels: tuple[str, ...]) -> Answer:
        """A ChatCompletionResponse read as an answer: the same for a live answer and a batch's."""
        with reading_response():
            if not response.choices:
                raise TransientError("malformed response: no choices")
            choice = response.choices[0]
            content = choice.message.content
            text = (
                content
                if isinstance(content, str) or content is None
                else "".join(getattr(c, "text", "") for c in content)
            )
            finish = str(choice.finish_reason or "stop")
            usage = response.usage
            first = choice.logprobs.content[:1] if self.mode == "score" and choice.logprobs else []
            return Answer(
                text=text,
                score=answer_word_score(((t.token, t.logprob) for t in first[0].top_logprobs or []), labels)
                if first
                else None,
                refused=finish not in NORMAL_FINISH and not text,  # a guardrail or filter stop with no answer
                raw=response.model_dump_json(),
                tokens_in=usage.prompt_tokens if usage else None,
                tokens_out=usage.completion_tokens if usage else None,
            )

    def batch_backend(self) -> MistralBatches:
        return MistralBatches(self)

    async def aclose(self) -> None:
        await self.client.__aexit__(None, None, None)


@register("mistral-moderation")
class MistralModeration(Adapter):
    """label = any flag in `categories` raised; score = the highest of their scores. The categories
    are a policy applied to the cached response, so changing them sends no request."""

    kind = "moderation"
    capabilities = Capabilities(concurrency=8, scores=True)
    required_env = ("MISTRAL_API_KEY",)
    description = "Mistral moderation (mistral-moderation-latest); categories are an argument"

    def __init__(
        self,
        model: str = "mistral-moderation-latest",
        base_url: str | None = None,
        categories: str | list | None = None,
        api_key_env: str | None = None,
        server_url: str | None = None,
    ) -> None:
        """`--model-arg` keys of `mistral-moderation:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            categories: Categories whose flag makes a text toxic (comma-separated); default: sexual,
                hate_and_discrimination, violence_and_threats, dangerous_and_criminal_content, selfharm.
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
            server_url: The mistralai SDK's name for base_url (either works).
        """
        self.model, self.base_url = model, _base_url(base_url, server_url)
        if isinstance(categories, str):
            categories = [c.strip() for c in categories.split(",") if c.strip()]
        self.categories = tuple(categories or DEFAULT_CATEGORIES)
        key = self.key_from_env(api_key_env)
        self.secrets = (key,)
        self.client = _client(key, self.base_url, self.name)

    def identity(self) -> dict:
        return {**self.cache_identity(), "categories": list(self.categories)}

    def cache_identity(self) -> dict:
        return {"model": self.model, "base_url": self.base_url}

    async def answer(self, request: Request) -> Answer:
        try:
            response = await self.client.classifiers.moderate_async(model=self.model, inputs=[request.text])
        except Exception as exc:
            raise _translate(exc) from None
        with reading_response():
            raw = response.model_dump_json()
            self.decide(Answer(raw=raw))  # the shape the policy reads
            return Answer(raw=raw)

    def decide(self, answer: Answer) -> Answer:
        result = json.loads(answer.raw)["results"][0]
        flags, scores = result.get("categories") or {}, result.get("category_scores") or {}
        chosen = [scores[c] for c in self.categories if c in scores]
        return replace(
            answer, pred=int(any(flags.get(c) for c in self.categories)), score=max(chosen) if chosen else None
        )

    async def aclose(self) -> None:
        await self.client.__aexit__(None, None, None)


class MistralBatches:
    """Mistral's batch jobs for `toxbench run --batch`: a JSONL file of {custom_id, body} uploaded
    with purpose "batch", one job per file (at most 100,000 requests and 512 MB), the model named
    once at job creation; results and errors as JSONL files by custom_id. Batch calls use a client
    of their own: results files are larger than any one answer."""

    max_requests = 100_000
    max_bytes = 512 * 1024 * 1024
    ENDED = ("SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED")

    def __init__(self, adapter: MistralChat) -> None:
        self.adapter = adapter
        self.client = _client(adapter.secrets[0], adapter.base_url, adapter.name, bounded=False)

    def line(self, custom_id: str, request: Request) -> bytes:
        return json.dumps({"custom_id": custom_id, "body": self.adapter.params(request)}, ensure_ascii=False).encode()

    async def submit(self, lines: list[bytes], label: str) -> str:
        uploaded = await self.client.files.upload_async(
            file={"file_name": f"{label}.jsonl", "content": b"".join(line + b"\n" for line in lines)}, purpose="batch"
        )
        job = await self.client.batch.jobs.create_async(
            input_files=[uploaded.id],
            endpoint="/v1/chat/completions",
            model=self.adapter.model,
            metadata={"toxbench_run": label[:500]},
            timeout_hours=24,
        )
        return job.id

    async def poll(self, batch_id: str) -> BatchState:
        job = await self.client.batch.jobs.get_async(job_id=batch_id)
        return BatchState(str(job.status), job.status in self.ENDED, job.completed_requests, job.total_requests)

    async def results(self, batch_id: str, requests: dict[str, Request]) -> dict[str, tuple[Answer | None, str | None]]:
        from mistralai.client import models

        job = await self.client.batch.jobs.get_async(job_id=batch_id)
        out: dict[str, tuple[Answer | None, str | None]] = {}
        for file_id in (job.output_file, job.error_file):
            if not file_id or not isinstance(file_id, str):
                continue
            download = await self.client.files.download_async(file_id=file_id)  # streamed: read it
            for item in jsonl_objects((await download.aread()).decode("utf-8", errors="replace")):
                if (sid := item.get("custom_id")) not in requests:
                    continue
                status, body, problem = batch_result_line(item)
                if status == 200 and body is not None:
                    try:
                        completion = models.ChatCompletionResponse.model_validate(body)
                        out[sid] = (self.adapter.answer_from_response(completion, requests[sid].labels), None)
                    except (AdapterError, ValueError) as exc:
                        out[sid] = (None, f"malformed response: {type(exc).__name__}: {clip(str(exc), 200)}")
                elif (
                    refusal := guardrail_refusal(status, json.dumps(body or item.get("error"), ensure_ascii=False))
                ) is not None:
                    out[sid] = (refusal, None)
                else:
                    out[sid] = (None, f"batch request failed (HTTP {status or '?'}): {problem}")
        return out

    async def cancel(self, batch_id: str) -> None:
        await self.client.batch.jobs.cancel_async(job_id=batch_id)

    async def aclose(self) -> None:
        await self.client.__aexit__(None, None, None)
