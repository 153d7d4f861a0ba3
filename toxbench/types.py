"""The neutral types every layer passes: a sample going in, a request to an adapter, a backend's
answer coming out, and the record a run keeps. Plain frozen dataclasses with nothing behind them,
so data, adapters, the engine and analysis share one vocabulary and import nothing of each other
(HELM's `common/request.py` is the model)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import orjson

Status = Literal["ok", "unparseable", "refused", "error"]
"""A record's outcome: `ok` has a label; `unparseable` answered without a readable label; `refused`
is a provider block or a declined answer; `error` is a failed request (no answer at all)."""
STATUSES: tuple[Status, ...] = ("ok", "unparseable", "refused", "error")

Kind = Literal["chat", "classifier", "moderation", "replay"]
"""What an adapter returns: `chat` text the harness parses; `classifier` and `moderation` a score or
categories that a declared policy turns into a label; `replay` recorded predictions."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One labelled text of a dataset."""

    id: str
    """Stable across runs: records join to data by id, never by text."""
    text: str
    """The text exactly as the dataset holds it."""
    label: int
    """Gold label: 1 toxic, 0 non-toxic."""
    lang: str
    """Language code of the text (`fr`, `en`, `zh-Hans`, `und` when unknown)."""
    spans: tuple[tuple[int, int], ...] | None = None
    """Gold toxic character ranges `(start, end)` of `text`, sorted and merged, when the dataset
    annotates them; `()` annotated with no span; None when the dataset has no span annotation."""


@dataclass(frozen=True, slots=True)
class Request:
    """One sample as an adapter receives it: chat adapters read `messages`, the others `text`."""

    sample_id: str
    """The sample's id, so the answer joins back to it."""
    text: str
    """The sample's text, unrendered."""
    lang: str
    """The sample's language."""
    messages: tuple[dict, ...] = ()
    """The rendered chat messages (`role`, `content`); empty for adapters that take the bare text."""
    labels: tuple[str, ...] = ()
    """The prompt's answer words (non-toxic, toxic), for label-likelihood scoring."""

    @property
    def chars(self) -> int:
        """Characters sent: the text plus every message (the engine's size estimate)."""
        return len(self.text) + sum(len(m.get("content", "")) for m in self.messages)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What a backend said for one request. This is what the response cache stores, so it holds the
    backend's output before any decision rule: a moderation or classifier adapter's policy turns it
    into `pred` afterwards (`Adapter.decide`)."""

    text: str | None = None
    """A chat model's text, parsed into a label by the run's parser."""
    pred: int | None = None
    """A label the backend itself gave (1 toxic, 0 non-toxic), or the adapter's decision."""
    score: float | None = None
    """Probability of toxic, when the backend gives a real one."""
    refused: bool = False
    """A provider block or refusal (finish reason, block reason, refusal field)."""
    raw: str | None = None
    """The provider's response as JSON text (or the model's text), kept verbatim."""
    tokens_in: int | None = None
    """Input tokens the provider counted."""
    tokens_out: int | None = None
    """Output tokens the provider counted."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One line of a run's `predictions.jsonl`: what was answered for a sample, and how."""

    sample_id: str
    """The sample's id in its dataset."""
    pred: int | None
    """1 toxic, 0 non-toxic, None when no label could be read."""
    status: Status
    """How the sample ended (see `Status`)."""
    score: float | None = None
    """Probability of toxic, when the backend gave a real one."""
    raw: str | None = None
    """The model's text or the API's JSON, or the (redacted) error message."""
    latency_s: float | None = None
    """Seconds the backend took; None for cached and replayed answers."""
    tokens_in: int | None = None
    """Input tokens the provider counted."""
    tokens_out: int | None = None
    """Output tokens the provider counted."""
    cost_usd: float | None = None
    """Price of the request from the price table; None when unpriced or cached."""
    attempts: int = 1
    """Requests sent for this sample (0: cached or replayed)."""
    cached: bool = False
    """Answered from the response cache."""
    gold: int | None
    """The sample's gold label, kept so metrics need no dataset; None for a text that has none (a
    comment being annotated)."""

    def to_line(self) -> bytes:
        """One JSONL line (UTF-8, newline-terminated)."""
        return orjson.dumps(self) + b"\n"


RECORD_FIELDS = tuple(f.name for f in fields(Record))
