"""Google Perspective (comments:analyze). It has no maintained SDK, so this speaks its REST API with
httpx; the key travels in the X-Goog-Api-Key header, never in a URL that an error could print.
label = any requested attribute at or above the threshold; score = the highest attribute score. The
threshold is a policy applied to the cached response, so changing it sends no request.

Google closes Perspective API on 31 December 2026 (new requests are refused during its wind-down).
A refusal that says so, or any refusal or missing key after that date, is one line naming the
closure, the replay of recorded runs and the open alternatives; recorded answers (the response
cache, the release's published Perspective predictions) stay replayable."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timezone

import httpx

from toxbench.adapters._sdk import error_for_status, read_bounded
from toxbench.adapters.base import Adapter, Capabilities, FatalError, MissingKey, TransientError
from toxbench.adapters.registry import register
from toxbench.redaction import clip
from toxbench.types import Answer, Request

DEFAULT_URL = "https://commentanalyzer.googleapis.com"
CLOSED_AFTER = date(2026, 12, 31)  # Google's announcement: Perspective API stops serving at the end of 2026
CLOSURE_WORDS = ("shut down", "shutdown", "no longer available", "discontinued", "sunset", "wind-down", "wind down")
CLOSURE = (
    "Perspective API closed on 31 December 2026 (Google's announcement; new requests are refused). "
    "Recorded Perspective answers stay usable: the release's published Perspective predictions replay offline "
    "(toxbench leaderboard, toxbench paper) and earlier runs answer from the response cache. For new runs, use an open "
    "detector toxbench runs: encoder:MODEL (a toxicity classifier), shieldgemma:MODEL or llamaguard:MODEL, or the "
    "openai-moderation and mistral-moderation APIs"
)


def today() -> date:
    return datetime.now(timezone.utc).date()


def closure_error(status: int | None, text: str) -> FatalError | None:
    """The closure, said in one line, when a refusal announces it, or when any refusal (400, 401,
    403, 404, 410) comes after the closing date."""
    announced = any(word in text.lower() for word in CLOSURE_WORDS)
    refused_after = today() > CLOSED_AFTER and status in (400, 401, 403, 404, 410)
    if announced or refused_after:
        return FatalError(f"{CLOSURE} (the server answered HTTP {status}: {text[:120]})", stops_run=True)
    return None


DEFAULT_ATTRIBUTES = ("TOXICITY", "SEVERE_TOXICITY", "INSULT", "THREAT", "PROFANITY")


@register("perspective")
class Perspective(Adapter):
    kind = "moderation"
    capabilities = Capabilities(concurrency=1, scores=True)  # the default quota is one request a second
    required_env = ("PERSPECTIVE_API_KEY",)
    description = "Google Perspective API (REST over httpx); threshold and attributes are arguments"

    def __init__(
        self,
        model: str = "perspective",
        base_url: str | None = None,
        threshold: float = 0.5,
        attributes: str | list | None = None,
        api_key_env: str | None = None,
    ) -> None:
        """`--model-arg` keys of `perspective:`.

        Args:
            base_url: Another server speaking Perspective's API (recorded answers, a local fake).
            threshold: Score at or above which the label is toxic.
            attributes: Attributes asked for (comma-separated); the score is their highest. Default: TOXICITY,
                SEVERE_TOXICITY, INSULT, THREAT, PROFANITY.
            api_key_env: The environment variable the key is read from, instead of the provider's usual one.
        """
        if isinstance(attributes, str):
            attributes = [a.strip().upper() for a in attributes.split(",") if a.strip()]
        self.model, self.base_url, self.threshold = model, base_url or DEFAULT_URL, float(threshold)
        self.attributes = tuple(attributes or DEFAULT_ATTRIBUTES)
        try:
            key: str | None = self.key_from_env(api_key_env)
        except MissingKey:
            if today() <= CLOSED_AFTER:
                raise
            key = None  # after the closure: recorded answers still replay from the cache; a request is refused below
        self.secrets = (key,) if key else ()
        headers = {"X-Goog-Api-Key": key} if key else {}
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=None)

    def identity(self) -> dict:
        return {**self.cache_identity(), "threshold": self.threshold}

    def cache_identity(self) -> dict:
        return {"base_url": self.base_url, "attributes": list(self.attributes)}

    async def answer(self, request: Request) -> Answer:
        if "X-Goog-Api-Key" not in self.client.headers:  # only after the closure: see __init__
            raise FatalError(f"{CLOSURE} (no {' or '.join(self.required_env)} is set)", stops_run=True)
        body = {
            "comment": {"text": request.text},
            "languages": [request.lang.split("-")[0]],
            "requestedAttributes": {a: {} for a in self.attributes},
            "doNotStore": True,
        }
        try:
            response = await self.client.send(
                self.client.build_request("POST", "/v1alpha1/comments:analyze", json=body), stream=True
            )
            text = (await read_bounded(response)).decode("utf-8", errors="replace")
        except httpx.HTTPError as exc:
            raise TransientError(f"{type(exc).__name__}: {clip(str(exc), 300)}") from None
        if response.status_code != 200:
            closed = closure_error(response.status_code, text)
            raise closed or error_for_status(response.status_code, clip(text, 300), response.headers.get("retry-after"))
        try:
            _scores(text)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TransientError(f"malformed response: {type(exc).__name__}") from None
        return Answer(raw=text)

    def decide(self, answer: Answer) -> Answer:
        scores = _scores(answer.raw)
        return replace(
            answer,
            pred=int(any(v >= self.threshold for v in scores.values())),
            score=max(scores.values()) if scores else None,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def _scores(raw: str) -> dict[str, float]:
    """Attribute -> summary score of a comments:analyze response."""
    return {a: float(v["summaryScore"]["value"]) for a, v in json.loads(raw)["attributeScores"].items()}
