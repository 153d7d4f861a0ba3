"""Anthropic messages, through the official `anthropic` SDK. The SDK's own retries are off.

Recent SDK releases no longer list `temperature` among `messages.create`'s keywords; when that is
so it is sent in the request body. `--model-arg temperature=null` leaves it out for models that
refuse it."""

from __future__ import annotations

from toxbench.adapters._sdk import (
    bounded_http_client,
    reading_response,
    require,
    routed_base_url,
    split_system,
    translate_sdk_error,
)
from toxbench.adapters.base import Adapter, Capabilities
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

    async def answer(self, request: Request) -> Answer:
        system, messages = split_system(request.messages)
        params: dict = {"model": self.model, "max_tokens": self.max_tokens, "messages": messages}
        if system:
            params["system"] = system
        if self.temperature is not None:
            if self._takes_temperature:
                params["temperature"] = self.temperature
            else:
                params["extra_body"] = {"temperature": self.temperature}
        try:
            response = await self.client.messages.create(**params)
        except Exception as exc:
            raise _translate(exc) from None
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
