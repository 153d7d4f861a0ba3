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
from toxbench.adapters.base import Adapter, AdapterError, BatchState, Capabilities, TransientError
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

    def generate_args(self, request: Request) -> dict:
        """The generate_content arguments for a request (live, or one line of a batch)."""
        from google.genai import types

        system, messages = split_system(request.messages)
        user = "\n\n".join(m["content"] for m in messages if m["role"] == "user")
        scored = {"response_logprobs": True, "logprobs": self.top_logprobs} if self.mode == "score" else {}
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=self.temperature, max_output_tokens=self.max_tokens, **scored
        )
        return {"contents": user, "config": config}

    async def answer(self, request: Request) -> Answer:
        try:
            response = await self.client.aio.models.generate_content(model=self.model, **self.generate_args(request))
        except Exception as exc:
            raise _translate(exc) from None
        return self.answer_from_response(response, request.labels)

    def answer_from_response(self, response, labels: tuple[str, ...]) -> Answer:
        """A GenerateContentResponse read as an answer: the same for a live answer and a batch's."""
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
                score=answer_word_score(((c.token, c.log_probability) for c in first), labels) if first else None,
                refused=blocked or finish in BLOCKING_FINISH,
                raw=raw,
                tokens_in=usage.prompt_token_count if usage else None,
                tokens_out=usage.candidates_token_count if usage else None,
            )

    def batch_backend(self) -> GeminiBatches:
        return GeminiBatches(self)

    async def aclose(self) -> None:
        await self.client.aio.aclose() if hasattr(self.client.aio, "aclose") else None


class GeminiBatches:
    """Gemini's Batch Mode for `toxbench run --batch`: requests sent inline, each batch under the
    20 MB an inline batch may weigh (a larger run is split into several batches), sample ids carried
    in each request's metadata, answers read back from the batch's inlined responses. Batch calls
    use a client of their own: a batch's responses are larger than any one answer, which the
    adapter's client refuses to read past."""

    max_requests = 100_000
    max_bytes = 19 * 1024 * 1024  # under the inline limit of 20 MB, with room for the request's envelope
    ENDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")

    def __init__(self, adapter: GeminiChat) -> None:
        import httpx
        from google import genai
        from google.genai import types

        self.adapter = adapter
        self._http = httpx.AsyncClient(timeout=None)
        options = types.HttpOptions(
            base_url=adapter.base_url, retry_options=types.HttpRetryOptions(attempts=1), httpx_async_client=self._http
        )
        self.client = genai.Client(api_key=adapter.secrets[0], http_options=options)

    def line(self, custom_id: str, request: Request) -> bytes:
        from google.genai import types

        inlined = types.InlinedRequest(**self.adapter.generate_args(request), metadata={"key": custom_id})
        return inlined.model_dump_json(exclude_none=True).encode()

    async def submit(self, lines: list[bytes], label: str) -> str:
        from google.genai import types

        requests = [types.InlinedRequest.model_validate_json(line) for line in lines]
        job = await self.client.aio.batches.create(
            model=self.adapter.model, src=requests, config=types.CreateBatchJobConfig(display_name=label[:128])
        )
        return job.name

    async def poll(self, batch_id: str) -> BatchState:
        job = await self.client.aio.batches.get(name=batch_id)
        state = str(job.state.value if job.state else "JOB_STATE_UNSPECIFIED")
        return BatchState(state, state in self.ENDED)

    async def results(self, batch_id: str, requests: dict[str, Request]) -> dict[str, tuple[Answer | None, str | None]]:
        job = await self.client.aio.batches.get(name=batch_id)
        out: dict[str, tuple[Answer | None, str | None]] = {}
        for item in (job.dest.inlined_responses or []) if job.dest else []:
            sid = (item.metadata or {}).get("key")
            if sid not in requests:
                continue
            if item.response is not None and item.error is None:
                try:
                    out[sid] = (self.adapter.answer_from_response(item.response, requests[sid].labels), None)
                except AdapterError as exc:
                    out[sid] = (None, f"{type(exc).__name__}: {exc}")
            else:
                error = item.error
                out[sid] = (
                    None,
                    f"batch request failed ({getattr(error, 'code', '?')}): {getattr(error, 'message', None) or 'no message'}",
                )
        return out

    async def cancel(self, batch_id: str) -> None:
        await self.client.aio.batches.cancel(name=batch_id)

    async def aclose(self) -> None:
        await self._http.aclose()
