"""Adapters by name, loaded lazily (lm-eval's `api/registry.py` is the model).

Built-in adapters register with `@register("name")` in their own module, which is imported only
when that name is asked for, so listing adapters never imports a provider SDK or torch. Other
packages add adapters through the `toxbench.adapters` entry-point group. A name is taken once: a
second class under the same name, or a class that is not an `Adapter`, is refused.
"""

from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from toxbench.adapters.base import Adapter, MissingKey
from toxbench.errors import ToxbenchError

ENTRY_POINT_GROUP = "toxbench.adapters"
# name -> module that defines it
BUILTIN_MODULES: dict[str, str] = {
    "replay": "toxbench.adapters.replay",
    "baseline": "toxbench.adapters.baseline",
    "hf": "toxbench.adapters.hf",
    "vllm": "toxbench.adapters.vllm_engine",
    "encoder": "toxbench.adapters.encoder",
    "llamaguard": "toxbench.adapters.guards",
    "shieldgemma": "toxbench.adapters.guards",
    "finetuned": "toxbench.adapters.finetuned",
    "openai": "toxbench.adapters.openai_api",
    "openai-moderation": "toxbench.adapters.openai_api",
    "mistral": "toxbench.adapters.mistral_api",
    "mistral-moderation": "toxbench.adapters.mistral_api",
    "anthropic": "toxbench.adapters.anthropic_api",
    "gemini": "toxbench.adapters.gemini_api",
    "perspective": "toxbench.adapters.perspective_api",
}

_REGISTRY: dict[str, type[Adapter]] = {}


def _add(name: str, cls: object, origin: str) -> type[Adapter]:
    if not (inspect.isclass(cls) and issubclass(cls, Adapter)):
        raise ToxbenchError(
            f"adapter {name!r} from {origin} is {cls!r}, not a subclass of toxbench.adapters.base.Adapter"
        )
    if getattr(cls, "kind", None) is None:
        raise ToxbenchError(f"adapter {name!r} from {origin} declares no kind (chat, classifier, moderation or replay)")
    taken = _REGISTRY.get(name)
    if taken is not None and taken is not cls:
        raise ToxbenchError(
            f"adapter name {name!r} is taken by {taken.__module__}.{taken.__qualname__}; "
            f"{origin} must register {cls.__qualname__} under another name"
        )
    cls.name = name
    _REGISTRY[name] = cls
    return cls


def register(name: str):
    """Class decorator: make an adapter available as `name` (e.g. `--model name:model-id`)."""

    def wrap(cls: type[Adapter]) -> type[Adapter]:
        return _add(name, cls, getattr(cls, "__module__", "?"))

    return wrap


def adapter_names() -> list[str]:
    names = set(BUILTIN_MODULES) | set(_REGISTRY)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names)


def get_adapter(name: str) -> type[Adapter]:
    """The adapter class registered as `name`, importing its module on first use."""
    if name not in _REGISTRY:
        if name in BUILTIN_MODULES:
            claims = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP, name=name)]
            if claims:
                raise ToxbenchError(
                    f"adapter name {name!r} is built in, and entry point {claims[0]!r} claims it too; rename the entry point"
                )
            import_module(BUILTIN_MODULES[name])
        else:
            for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
                _add(name, ep.load(), f"entry point {ep.value!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ToxbenchError(f"unknown adapter {name!r}; known: {', '.join(adapter_names())}") from None


def parse_model(model: str) -> tuple[str, str | None]:
    """`openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini"); `perspective` -> ("perspective", None)."""
    name, _, model_id = model.partition(":")
    return name, model_id or None


def parse_model_args(pairs: list[str]) -> dict:
    """`key=value` pairs; values read as JSON when they can be (numbers, true/false, null)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ToxbenchError(
                f"--model-arg {pair!r} is not key=value (e.g. --model-arg base_url=http://127.0.0.1:8000/v1)"
            )
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def create(model: str, model_args: dict, data=None) -> Adapter:
    """An adapter instance from `ADAPTER[:MODEL]` and its arguments. Adapters whose constructor
    takes `data` (the baseline's training files) get the data directory."""
    name, model_id = parse_model(model)
    cls = get_adapter(name)
    kwargs = dict(model_args)
    if model_id:
        kwargs["model"] = model_id
    if data is not None and "data" in inspect.signature(cls.__init__).parameters:
        kwargs["data"] = data
    try:
        return cls(**kwargs)
    except MissingKey as exc:
        raise ToxbenchError(str(exc)) from None
    except TypeError as exc:
        raise ToxbenchError(
            f"adapter {name!r} does not take these arguments ({exc}); see `toxbench adapters`"
        ) from None


@dataclass(frozen=True)
class ModelArg:
    """One `--model-arg` key of an adapter: its default and what it means (from the `Args:`
    section of the adapter's `__init__` docstring, which the API reference renders too)."""

    name: str
    default: object
    meaning: str
    required: bool = False


def _args_section(doc: str) -> dict[str, str]:
    """`name: text` entries of a Google-style `Args:` section, continuation lines joined."""
    out: dict[str, str] = {}
    lines = inspect.cleandoc(doc).splitlines()
    if "Args:" not in lines:
        return out
    current = None
    for line in lines[lines.index("Args:") + 1 :]:
        if not line.strip():
            break
        entry = re.match(r"^    (\w+): (.*)$", line)
        if entry:
            current = entry[1]
            out[current] = entry[2].strip()
        elif current and line.startswith("        "):
            out[current] += " " + line.strip()
        else:
            break
    return out


NOT_ARGS = ("self", "model", "data")  # the model comes from ADAPTER:MODEL, the data directory from the run


def model_args(name: str) -> list[ModelArg]:
    """The `--model-arg` keys adapter `name` takes, in its constructor's order; an adapter that
    passes `**kwargs` on to its base class (a guard model on `hf`) takes that class's keys too,
    except those it sets itself."""
    cls = get_adapter(name)
    out: list[ModelArg] = []
    seen: set[str] = set()
    fixed: set[str] = set(getattr(cls, "fixed_model_args", ()))
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        doc = _args_section(init.__doc__ or "")
        params = inspect.signature(init).parameters
        for p in params.values():
            if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.name in NOT_ARGS or p.name in seen | fixed:
                continue
            seen.add(p.name)
            required = p.default is p.empty
            out.append(ModelArg(p.name, None if required else p.default, doc.get(p.name, ""), required))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
        fixed |= set(klass.__dict__.get("fixed_model_args", ()))
    return out


@cache
def priced(name: str) -> bool:
    """Whether runs of adapter `name` can have a price: a remote API with a key. Local models,
    replays and ensembles have none ("n/a", not "unknown")."""
    try:
        return bool(get_adapter(name).required_env)
    except ToxbenchError:  # not an adapter (an ensemble, a calibration): nothing was paid
        return False
    except ImportError:
        return True


def describe_all() -> list[dict]:
    """One row per adapter for `toxbench adapters`: its class-level declarations, what arguments
    change them, and why an adapter cannot be loaded here (a missing SDK)."""
    rows = []
    for name in adapter_names():
        try:
            cls = get_adapter(name)
        except (ImportError, ToxbenchError) as exc:
            rows.append({"name": name, "error": f"not available: {exc} (pip install 'toxbench[api]')"})
            continue
        caps = cls.capabilities
        rows.append(
            {
                "name": name,
                "kind": cls.kind,
                "scores": caps.scores,
                "concurrency": caps.concurrency,
                "batching": caps.batching,
                "key_from": " or ".join(cls.required_env),
                "description": cls.description,
                "varies": cls.varies,
            }
        )
    return rows
