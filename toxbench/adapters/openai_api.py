"""OpenAI chat completions and OpenAI moderation, through the official `openai` SDK.

`base_url` points the chat adapter at any OpenAI-compatible server (DeepSeek, vLLM, llama.cpp);
`api_key_env` names the variable holding that server's key. `prompt_template` (with `{text}`)
sends that bare prompt to the completions endpoint instead, read with the `cot` parser: how a
`toxbench finetune` CoT model served by vLLM (its LoRA adapter) is evaluated at scale. Reasoning models (o1/o3/o4, gpt-5,
deepseek-reasoner) take no temperature and count output tokens with max_completion_tokens.
The SDK's own retries are off: the engine retries. A chat answer's record keeps the server's
response body as it came, not the SDK's re-serialisation of it.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace

import orjson

from toxbench.adapters._logprobs import TOP_LOGPROBS, answer_word_score, mode_identity, use_mode
from toxbench.adapters._sdk import (
    batch_result_line,
    blocked_by_filter,
    jsonl_objects,
    read_bounded,
    reading_response,
    require,
    routed_base_url,
    translate_sdk_error,
)
from toxbench.adapters.base import Adapter, AdapterError, BatchState, Capabilities
from toxbench.adapters.registry import register
from toxbench.types import Answer, Request

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
RAW_STREAM = (
    "X-Stainless-Raw-Response",
    "stream",
)  # the SDK hands back the HTTP response unread (openai._constants.RAW_RESPONSE_HEADER)


def first_token_score(data: dict, labels: tuple[str, ...]) -> float | None:
    """P(toxic) from the first generated token's `top_logprobs` (see `answer_word_score`)."""
    content = ((data["choices"][0].get("logprobs") or {}).get("content")) or []
    if not content:
        return None
    return answer_word_score(((e["token"], e["logprob"]) for e in content[0].get("top_logprobs") or []), labels)


def _client(api_key: str, base_url: str | None, who: str):
    openai = require("openai", "api", f"adapter {who!r}")
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=None)


def _http_response_type() -> type:
    """The SDK's transport's response class: `post(..., cast_to=it)` hands back the HTTP response
    as it came. openai 3.x is built on httpx2, earlier releases on httpx."""
    import openai

    if hasattr(openai, "DefaultAsyncHttpx2Client"):
        import httpx2

        return httpx2.Response
    import httpx

    return httpx.Response


def _translate(exc: Exception) -> Exception:
    import openai

    return translate_sdk_error(exc, openai)


@register("openai")
class OpenAIChat(Adapter):
    kind = "chat"
    capabilities = Capabilities(concurrency=16)
    varies = "mode=score gives scores (P(toxic) from the first token's log-probabilities)"
    required_env = ("OPENAI_API_KEY",)
    description = "OpenAI chat completions, or any OpenAI-compatible server via base_url"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        reasoning: bool | None = None,
        api_key_env: str | None = None,
        prompt_template: str | None = None,
        mode: str = "label",
        top_logprobs: int = TOP_LOGPROBS,
    ) -> None:
        """`--model-arg` keys of `openai:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            temperature: Sampling temperature (0: the most likely answer); reasoning models take none.
            max_tokens: Most tokens in the answer (default: the provider's).
            reasoning: Treat the model as a reasoning model (no temperature, max_completion_tokens); default:
                guessed from its name (o1, o3, o4, gpt-5, *reasoner*).
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
            prompt_template: A completions-endpoint model that renders its own prompt (a toxbench CoT model
                served by vLLM): the template, holding `{text}`.
            mode: `label`: read the answer word; `score`: also P(toxic) from the first answer token's log-
                probabilities (ROC-AUC for an API run).
            top_logprobs: Log-probabilities asked for in score mode (1–20), for a model that allows fewer.
        """
        from toxbench.errors import ToxbenchError

        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.base_url = routed_base_url(base_url, "OPENAI_BASE_URL")
        use_mode(self, mode, top_logprobs)
        self.prompt_template = prompt_template
        if (
            prompt_template is not None
        ):  # a fine-tuned CoT model behind a completions endpoint (vLLM with its LoRA adapter)
            try:
                usable = (
                    isinstance(prompt_template, str)
                    and "{text}" in prompt_template
                    and bool(prompt_template.format(text=""))
                )
            except (KeyError, IndexError, ValueError):  # another {field}, or a lone brace
                usable = False
            if not usable:
                raise ToxbenchError(
                    "--model-arg prompt_template must hold {text} and no other {field} (write a literal brace as {{ or }}), "
                    "e.g. 'prompt_template=\"Message:\\n{text}\\n\\nAnalyse:\\n\"'"
                )
            self.renders_own_prompt, self.default_parser = True, "cot"
        self.reasoning = (
            reasoning if reasoning is not None else (model.startswith(REASONING_PREFIXES) or "reasoner" in model)
        )
        if mode == "score" and (self.reasoning or prompt_template is not None):
            raise ToxbenchError(
                f"--model-arg mode=score: {model} "
                + (
                    "is a reasoning model, which returns no log-probabilities"
                    if self.reasoning
                    else "is read through prompt_template (a CoT model), whose answer is not its first token"
                )
                + "; leave mode out"
            )
        self.api_key_env = api_key_env
        key = self.key_from_env(api_key_env)
        self.secrets = (key,)
        self.client = _client(key, self.base_url, self.name)
        self.response_type = _http_response_type()

    def identity(self) -> dict:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": None if self.reasoning else self.temperature,
            "max_tokens": self.max_tokens,
            "reasoning": self.reasoning,
            **({"prompt_template": self.prompt_template} if self.prompt_template is not None else {}),
            **mode_identity(self),
        }

    def request_body(self, request: Request) -> tuple[str, dict]:
        """(endpoint path, JSON body) of one request: what `answer` posts, and what a Batch API
        input line holds."""
        if self.prompt_template is not None:  # the bare training prompt, no chat template: the completions endpoint
            path, params = (
                "/completions",
                {"model": self.model, "prompt": self.prompt_template.format(text=request.text)},
            )
        else:
            path, params = "/chat/completions", {"model": self.model, "messages": list(request.messages)}
        if self.reasoning:
            if self.max_tokens:
                params["max_completion_tokens"] = self.max_tokens
        else:
            params["temperature"] = self.temperature
            if self.max_tokens:
                params["max_tokens"] = self.max_tokens
        if self.mode == "score":
            params["logprobs"], params["top_logprobs"] = True, self.top_logprobs
        return path, params

    def batch_backend(self) -> OpenAIBatches:
        return OpenAIBatches(self)

    def answer_from_body(self, body: bytes, path: str = "/chat/completions", labels: tuple[str, ...] = ()) -> Answer:
        """The answer in a response body (the server's bytes, kept as the record's raw); in score
        mode, with P(toxic) for the prompt's answer words `labels`."""
        with reading_response():
            data = orjson.loads(body)
            choice = data["choices"][0]
            message = choice["message"] if path == "/chat/completions" else {"content": choice["text"]}
            usage = data.get("usage") or {}
            return Answer(
                text=message.get("content"),
                score=first_token_score(data, labels) if self.mode == "score" else None,
                refused=bool(message.get("refusal")) or choice.get("finish_reason") == "content_filter",
                raw=body.decode("utf-8"),
                tokens_in=usage.get("prompt_tokens"),
                tokens_out=usage.get("completion_tokens"),
            )

    async def answer(self, request: Request) -> Answer:
        path, params = self.request_body(request)
        try:
            # The SDK's documented route for any endpoint: auth, headers, errors and transport as
            # `chat.completions.create`, without its per-request typed transform of the messages
            # and response models (together ~45% of the client's CPU per request), and the raw
            # body is what the record keeps.
            # streamed (the SDK's own raw-response header), so the body is read up to a bound, not whole
            response = await self.client.post(
                path, body=params, cast_to=self.response_type, options={"headers": {RAW_STREAM[0]: RAW_STREAM[1]}}
            )
            body = await read_bounded(response)
        except AdapterError:
            raise
        except Exception as exc:  # translated for the engine
            if (body := blocked_by_filter(exc)) is not None:
                return Answer(refused=True, raw=json.dumps(body, ensure_ascii=False))
            raise _translate(exc) from None
        return self.answer_from_body(body, path, request.labels)

    async def aclose(self) -> None:
        await self.client.close()


@register("openai-moderation")
class OpenAIModeration(Adapter):
    """label = the API's `flagged`; score = the highest category score."""

    kind = "moderation"
    capabilities = Capabilities(concurrency=16, scores=True)
    required_env = ("OPENAI_API_KEY",)
    description = "OpenAI moderation endpoint (omni-moderation-latest)"

    def __init__(
        self, model: str = "omni-moderation-latest", base_url: str | None = None, api_key_env: str | None = None
    ) -> None:
        """`--model-arg` keys of `openai-moderation:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
        """
        self.model, self.base_url = model, routed_base_url(base_url, "OPENAI_BASE_URL")
        key = self.key_from_env(api_key_env)
        self.secrets = (key,)
        self.client = _client(key, self.base_url, self.name)

    def identity(self) -> dict:
        return {"model": self.model, "base_url": self.base_url}

    async def answer(self, request: Request) -> Answer:
        try:
            response = await self.client.moderations.create(model=self.model, input=request.text)
        except Exception as exc:
            raise _translate(exc) from None
        with reading_response():
            raw = response.model_dump_json(exclude_none=True)
            self.decide(Answer(raw=raw))  # the shape the policy reads
            return Answer(raw=raw)

    def decide(self, answer: Answer) -> Answer:
        result = json.loads(answer.raw)["results"][0]
        if not isinstance(result["category_scores"], dict):
            raise TypeError("category_scores is not an object")
        scores = [v for v in (result.get("category_scores") or {}).values() if isinstance(v, (int, float))]
        return replace(answer, pred=int(bool(result.get("flagged"))), score=max(scores) if scores else None)

    async def aclose(self) -> None:
        await self.client.close()


class OpenAIBatches:
    """OpenAI's Batch API (and servers that implement /v1/batches) for `toxbench run --batch`: a
    JSONL file of {custom_id, method, url, body} uploaded with purpose "batch", one batch per
    file (at most 50,000 requests and 200 MB), results and errors as JSONL files by custom_id."""

    max_requests = 50_000
    max_bytes = 200 * 1024 * 1024
    ENDED = ("completed", "failed", "expired", "cancelled")

    def __init__(self, adapter: OpenAIChat) -> None:
        self.adapter, self.client = adapter, adapter.client
        self.path = adapter.request_body(Request("probe", "", "und", (), ()))[0]

    def line(self, custom_id: str, request: Request) -> bytes:
        path, body = self.adapter.request_body(request)
        line = {"custom_id": custom_id, "method": "POST", "url": f"/v1{path}", "body": body}
        return json.dumps(line, ensure_ascii=False).encode()

    async def submit(self, lines: list[bytes], label: str) -> str:
        with tempfile.TemporaryFile() as payload:  # streamed from disk: the upload holds no copy of the file in memory
            payload.writelines(line + b"\n" for line in lines)
            payload.seek(0)
            uploaded = await self.client.files.create(file=(f"{label}.jsonl", payload), purpose="batch")
        batch = await self.client.batches.create(
            input_file_id=uploaded.id,
            endpoint=f"/v1{self.path}",
            completion_window="24h",
            metadata={"toxbench_run": label[:500]},
        )
        return batch.id

    async def poll(self, batch_id: str) -> BatchState:
        batch = await self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        done = (counts.completed + counts.failed) if counts else None
        return BatchState(batch.status, batch.status in self.ENDED, done, counts.total if counts else None)

    async def results(self, batch_id: str, requests: dict[str, Request]) -> dict[str, tuple[Answer | None, str | None]]:
        batch = await self.client.batches.retrieve(batch_id)
        out: dict[str, tuple[Answer | None, str | None]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for item in jsonl_objects(content.text):
                if (sid := item.get("custom_id")) in requests:
                    out[sid] = self._result(item, requests[sid].labels)
        return out

    def _result(self, item: dict, labels: tuple[str, ...]) -> tuple[Answer | None, str | None]:
        status, body, problem = batch_result_line(item)
        if status == 200 and body is not None:
            try:
                return self.adapter.answer_from_body(
                    json.dumps(body, ensure_ascii=False).encode(), self.path, labels
                ), None
            except AdapterError as exc:
                return None, f"{type(exc).__name__}: {exc}"
        return None, f"batch request failed (HTTP {status or '?'}): {problem}"

    async def cancel(self, batch_id: str) -> None:
        await self.client.batches.cancel(batch_id)
