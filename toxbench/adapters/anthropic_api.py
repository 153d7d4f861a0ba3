"""Anthropic messages, through the official `anthropic` SDK. The SDK's own retries are off.

Recent SDK releases no longer list `temperature` among `messages.create`'s keywords; when that is
so it is sent in the request body. `--model-arg temperature=null` leaves it out for models that
refuse it."""

from __future__ import annotations

import json

from toxbench.adapters._sdk import (
    bounded_http_client,
    reading_response,
    require,
    routed_base_url,
    split_system,
    translate_sdk_error,
)
from toxbench.adapters.base import Adapter, AdapterError, BatchState, Capabilities
from toxbench.adapters.registry import register
from toxbench.types import Answer, Request


def _translate(exc: Exception) -> Exception:
    import anthropic

    return translate_sdk_error(exc, anthropic)


@register("anthropic")
class AnthropicChat(Adapter):
    kind = "chat"
    capabilities = Capabilities(concurrency=8)
    required_env = ("ANTHROPIC_API_KEY",)
    description = "Anthropic messages API (Claude)"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        temperature: float | None = 0.0,
        max_tokens: int = 256,
        api_key_env: str | None = None,
    ) -> None:
        """`--model-arg` keys of `anthropic:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            temperature: Sampling temperature (0: the most likely answer); `null` for a model that takes none.
            max_tokens: Most tokens in the answer.
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
        """
        import inspect

        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.base_url = routed_base_url(base_url, "ANTHROPIC_BASE_URL")
        key = self.key_from_env(api_key_env)
        anthropic = require("anthropic", "api", f"adapter {self.name!r}")
        self.secrets = (key,)
        self.client = anthropic.AsyncAnthropic(
            api_key=key,
            base_url=self.base_url,
            max_retries=0,
            timeout=None,
            http_client=bounded_http_client(anthropic.DefaultAsyncHttpxClient, timeout=None),
        )
        self._takes_temperature = "temperature" in inspect.signature(self.client.messages.create).parameters

    def identity(self) -> dict:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def params(self, request: Request) -> dict:
        """The Messages API parameters of one request: what `answer` sends, and a batch request's
        `params`."""
        system, messages = split_system(request.messages)
        params: dict = {"model": self.model, "max_tokens": self.max_tokens, "messages": messages}
        if system:
            params["system"] = system
        if self.temperature is not None:
            params["temperature"] = self.temperature
        return params

    def batch_backend(self) -> AnthropicBatches:
        return AnthropicBatches(self)

    async def answer(self, request: Request) -> Answer:
        params = self.params(request)
        if "temperature" in params and not self._takes_temperature:
            params["extra_body"] = {"temperature": params.pop("temperature")}
        try:
            response = await self.client.messages.create(**params)
        except Exception as exc:
            raise _translate(exc) from None
        return self.answer_from_message(response)

    def answer_from_message(self, response) -> Answer:
        """The answer in a Messages API response (live, or one result of a batch)."""
        with reading_response():
            text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text")
            return Answer(
                text=text or None,
                refused=response.stop_reason == "refusal",
                raw=response.model_dump_json(exclude_none=True),
                tokens_in=response.usage.input_tokens if response.usage else None,
                tokens_out=response.usage.output_tokens if response.usage else None,
            )

    async def aclose(self) -> None:
        await self.client.close()


class AnthropicBatches:
    """Anthropic's Message Batches API for `toxbench run --batch`: requests as {custom_id, params},
    at most 100,000 requests or 256 MB a batch; results as JSONL in any order. A custom_id allows
    only [a-zA-Z0-9_-]{1,64}, so each sample id travels as a digest of itself. Batch calls use a
    client of their own: results files are larger than any one answer, which the adapter's client
    refuses to read past."""

    max_requests = 100_000
    max_bytes = 256 * 1024 * 1024

    def __init__(self, adapter: AnthropicChat) -> None:
        import anthropic

        self.adapter = adapter
        self.client = anthropic.AsyncAnthropic(
            api_key=adapter.secrets[0], base_url=adapter.base_url, max_retries=0, timeout=None
        )

    @staticmethod
    def custom_id(sample_id: str) -> str:
        import hashlib

        return "s" + hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:40]

    def line(self, custom_id: str, request: Request) -> bytes:
        return json.dumps({"custom_id": self.custom_id(custom_id), "params": self.adapter.params(request)}).encode()

    async def submit(self, lines: list[bytes], label: str) -> str:
        batch = await self.client.messages.batches.create(requests=[json.loads(line) for line in lines])
        return batch.id

    async def poll(self, batch_id: str) -> BatchState:
        batch = await self.client.messages.batches.retrieve(batch_id)
        c = batch.request_counts
        done = c.succeeded + c.errored + c.canceled + c.expired
        return BatchState(batch.processing_status, batch.processing_status == "ended", done, done + c.processing)

    async def results(self, batch_id: str, requests: dict[str, Request]) -> dict[str, tuple[Answer | None, str | None]]:
        sample_of = {self.custom_id(sid): sid for sid in requests}
        out: dict[str, tuple[Answer | None, str | None]] = {}
        async for item in await self.client.messages.batches.results(batch_id):
            sid = sample_of.get(item.custom_id)
            if sid is None:
                continue
            result = item.result
            if result.type == "succeeded":
                try:
                    out[sid] = (self.adapter.answer_from_message(result.message), None)
                except AdapterError as exc:
                    out[sid] = (None, f"{type(exc).__name__}: {exc}")
            elif result.type == "errored":
                error = getattr(result.error, "error", None)
                out[sid] = (None, f"batch request failed: {getattr(error, 'message', None) or result.error}")
            else:  # canceled, expired
                out[sid] = (None, f"batch request {result.type}: run the command again to send it")
        return out

    async def cancel(self, batch_id: str) -> None:
        await self.client.messages.batches.cancel(batch_id)

    async def aclose(self) -> None:
        await self.client.close()
