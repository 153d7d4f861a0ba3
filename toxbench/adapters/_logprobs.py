"""P(toxic) from the log-probabilities of a chat model's first generated token, for the API
adapters whose SDK returns them (`openai` and OpenAI-compatible servers, `mistral`, `gemini`;
Anthropic's API returns none)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

MODES = ("label", "score")
TOP_LOGPROBS = 20  # the most alternatives per position the chat completions API returns (and the default everywhere)


def check_mode(mode: str, top_logprobs: int = TOP_LOGPROBS) -> None:
    from toxbench.errors import ToxbenchError

    if mode not in MODES:
        raise ToxbenchError(
            f"--model-arg mode={mode}: use label (the answer's word) or score (also P(toxic) from log-probabilities)"
        )
    if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int) or not 1 <= top_logprobs <= TOP_LOGPROBS:
        raise ToxbenchError(
            f"--model-arg top_logprobs={top_logprobs}: give a whole number from 1 to 20 (how many alternatives of the first "
            "token the API returns; a model that allows fewer needs a smaller number)"
        )


def use_mode(adapter, mode: str, top_logprobs: int) -> None:
    """Check `mode` and `top_logprobs` and set them on a chat adapter; score mode adds scores to the
    capabilities of the adapter's class."""
    check_mode(mode, top_logprobs)
    adapter.mode, adapter.top_logprobs = mode, top_logprobs
    if mode == "score":
        adapter.capabilities = replace(type(adapter).capabilities, scores=True)


def mode_identity(adapter) -> dict:
    """What score mode adds to a run's identity: nothing in label mode, so label runs keep their ids."""
    return {"mode": "score", "top_logprobs": adapter.top_logprobs} if adapter.mode == "score" else {}


def answer_word_score(top: Iterable[tuple[str, float]], labels: tuple[str, ...]) -> float | None:
    """P(toxic) from the first position's (token, log-probability) list: the probability of the
    tokens that begin only the toxic answer word, over those that begin only one of the two words
    (`non` begins only non-toxique, `tox` only toxique; a token that begins both, or neither,
    counts for neither). None when no listed token begins either word (the answer began with
    something else, e.g. `**`), or when the prompt has not exactly two answer words: the sample
    then has a label and no score."""
    if len(labels) != 2:
        return None
    words = [w.strip().lower() for w in labels]  # (non-toxic, toxic)
    mass = [0.0, 0.0]
    for token, logprob in top:
        token = (token or "").strip().lower()
        begins = [i for i, word in enumerate(words) if token and word.startswith(token)]
        if len(begins) == 1 and logprob is not None:
            mass[begins[0]] += math.exp(logprob)
    total = mass[0] + mass[1]
    return mass[1] / total if total > 0 else None
