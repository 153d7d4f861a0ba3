"""The adapter interface and registry.

An adapter translates one backend's answers into `Prediction`s and nothing else: retries,
caching, rate limits and progress belong to the engine. Built-in adapters register with
`@register("name")`; other packages add theirs through the `toxbench.adapters` entry-point group
without touching this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import ClassVar, Literal

Status = Literal["ok", "unparseable", "refused", "error"]
Kind = Literal["chat", "classifier", "moderation", "replay"]
STATUSES: tuple[Status, ...] = ("ok", "unparseable", "refused", "error")

ENTRY_POINT_GROUP = "toxbench.adapters"
# name -> module that defines it; modules are imported only when the adapter is asked for, so
# listing adapters never imports a provider SDK or torch.
BUILTIN_MODULES: dict[str, str] = {
    "replay": "toxbench.adapters.replay",
}


@dataclass(slots=True, kw_only=True)
class Prediction:
    """What an adapter returns for one sample. pred is 0, 1 or None (no label could be read)."""

    sample_id: str
    pred: int | None
    status: Status
    score: float | None = None  # probability of toxic, when the backend gives a real one
    raw: str | None = None  # the model's text or the API's JSON, kept verbatim
    latency_s: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    attempts: int = 1
    cached: bool = False


@dataclass(frozen=True)
class Capabilities:
    concurrency: int = 1
    batching: bool = False
    scores: bool = False  # can it give P(toxic), not only a label
    cost_per_1k_tokens_in: float | None = None
    cost_per_1k_tokens_out: float | None = None


class Adapter:
    """Base class: subclasses set `name`, `kind`, `capabilities` and `required_env`."""

    name: ClassVar[str]
    kind: ClassVar[Kind]
    capabilities: ClassVar[Capabilities] = Capabilities()
    required_env: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    def identity(self) -> dict:
        """The non-secret parameters that determine this adapter's answers (part of a run's id)."""
        return {}


_REGISTRY: dict[str, type[Adapter]] = {}


def register(name: str):
    """Class decorator: make an adapter available as `name` (e.g. `--model name:model-id`)."""

    def wrap(cls: type[Adapter]) -> type[Adapter]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def adapter_names() -> list[str]:
    names = set(BUILTIN_MODULES) | set(_REGISTRY)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def get_adapter(name: str) -> type[Adapter]:
    """The adapter class registered as `name`, importing its module on first use."""
    if name not in _REGISTRY:
        if name in BUILTIN_MODULES:
            import_module(BUILTIN_MODULES[name])
        else:
            for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
                cls = ep.load()
                _REGISTRY.setdefault(name, cls)
    try:
        return _REGISTRY[name]
    except KeyError:
        from toxbench.errors import ToxbenchError

        raise ToxbenchError(f"unknown adapter {name!r}; known: {', '.join(adapter_names())}") from None
