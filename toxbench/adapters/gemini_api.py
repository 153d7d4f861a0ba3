"""Google Gemini through the supported `google-genai` SDK (not the deprecated google-generativeai).
Prompt blocks (promptFeedback.blockReason) and safety finishes are recorded as refused."""

from __future__ import annotations

from toxbench.adapters._logprobs import TOP_LOGPROBS, answer_word_score, mode_identity, use_mode
from toxbench.adapters._sdk import (
    bounded_http_client,
    error_for_status,
    reading_response,
    require,
    routed_base_url,
    sdk_environment,
    split_system,
)
from toxbench.adapters.base import Adapter, AdapterError, Capabilities, TransientError
from toxbench.adapters.registry import register
from toxbench.redaction import clip
from toxbench.types import Answer, Request

# The SDK's variables that send requests to Vertex AI instead, or to another API version.
VERTEX_ENVIRONMENT = (
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_VERTEX_BASE_URL",
    "GOOGLE_GENAI_API_VERSION",
)
BLOCKING_FINISH = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION", "IMAGE_SAFETY"}


def _translate(exc: Exception) -> Exception:
    from google.genai import errors

    if isinstance(exc, AdapterError):  # an unbounded body, stopped in the transport
        return exc
    if isinstance(exc, errors.APIError):
        headers = getattr(getattr(exc, "response", None), "headers", None) or {}
        return error_for_status(exc.code, clip(str(exc.message or exc), 300), headers.get("retry-after"))
    if type(exc).__module__.startswith(("httpx", "httpcore", "aiohttp")) or isinstance(exc, ValueError):
        return TransientError(f"{type(exc).__name__}: {clip(str(exc), 200)}")
    return exc


@register("gemini")
class GeminiChat(Adapter):
    kind = "chat"
    capabilities = Capabilities(concurrency=8)
    varies = "mode=score gives scores (P(toxic) from the first token's log-probabilities)"
    required_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    description = "Google Gemini (google-genai SDK)"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        api_key_env: str | None = None,
        mode: str = "label",
        top_logprobs: int = TOP_LOGPROBS,
    ) -> None:
        """`--model-arg` keys of `gemini:`.

        Args:
            base_url: Another server speaking this provider's API (a proxy, a compatible server, a local fake);
                default: the provider's, or its SDK's environment variable.
            temperature: Sampling temperature (0: the most likely answer).
            max_tokens: Most tokens in the answer (default: the provider's).
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
            mode: `label`: read the answer word; `score`: also P(toxic) from the first answer token's log-
                probabilities (ROC-AUC for an API run).
            top_logprobs: Log-probabilities asked for in score mode (1–20), for a model that allows fewer.
        """
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.base_url = routed_base_url(base_url, "GOOGLE_GEMINI_BASE_URL")
        use_mode(self, mode, top_logprobs)
        key = self.key_from_env(api_key_env)
        require("google.genai", "api", f"adapter {self.name!r}")
        from google import genai
        from google.genai import types

        self.secrets = (key,)
        import httpx

        options = types.HttpOptions(
            base_url=self.base_url,
            retry_options=types.HttpRetryOptions(attempts=1),
            httpx_async_client=bounded_http_client(httpx.AsyncClient, timeout=None),
        )
        self.client = genai.Client(api_key=key, http_options=options)

    def identity(self) -> dict:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **mode_identity(self),
            **sdk_environment(VERTEX_ENVIRONMENT),
        }

    async def answer(self, request: Request) -> Answer:
        from google.genai import types

        system, messages = split_system(request.messages)
        user = "\n\n".join(m["content"] for m in messages if m["role"] == "user")
        scored = {"response_logprobs": True, "logprobs": self.top_logprobs} if self.mode == "score" else {}
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=self.temperature, max_output_tokens=self.max_tokens, **scored
        )
        try:
            response = await self.client.aio.models.generate_content(model=self.model, contents=user, config=config)
        except Exception as exc:
            raise _translate(exc) from None
        with reading_response():
            usage = response.usage_metadata
            raw = response.model_dump_json(exclude_none=True, exclude={"sdk_http_response"})
            blocked = bool(response.prompt_feedback and response.prompt_feedback.block_reason)
            candidate = response.candidates[0] if response.candidates else None
            finish = str(candidate.finish_reason.value if candidate and candidate.finish_reason else "")
            parts = (candidate.content.parts or []) if candidate and candidate.content else []
            text = "".join(p.text for p in parts if getattr(p, "text", None)) or None
            if not blocked and candidate is None:
                raise TransientError("malformed response: no candidates and no block reason")
            steps = (
                candidate.logprobs_result.top_candidates
                if self.mode == "score" and candidate and candidate.logprobs_result
                else None
            )
            first = (steps[0].candidates or []) if steps else []
            return Answer(
                text=text,
                score=answer_word_score(((c.token, c.log_probability) for c in first), request.labels)
                if first
                else None,
                refused=blocked or finish in BLOCKING_FINISH,
                raw=raw,
                tokens_in=usage.prompt_token_count if usage else None,
                tokens_out=usage.candidates_token_count if usage else None,
            )

    async def aclose(self) -> None:
        await self.client.aio.aclose() if hasattr(self.client.aio, "aclose") else None
