"""The adapter contract and the registry: what every adapter gets from the base class and the engine,
one vocabulary of arguments, one-line errors for missing SDKs, and label policies applied after the
response cache (a policy change sends no request)."""

from __future__ import annotations

import asyncio
import sys
import threading
import typing

import pytest

from toxbench.adapters import registry
from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.registry import create, get_adapter, register
from toxbench.errors import ToxbenchError
from toxbench.records import Run
from toxbench.run.engine import ExecutionSettings
from toxbench.run.runner import RunOptions, execute
from toxbench.types import Answer, Request

CANARY = "canary-key-0123456789abcdefghijklmnop"


class BatchOnly(Adapter):
    kind = "classifier"
    threads: typing.ClassVar[list] = []

    def answer_batch(self, requests):
        self.threads.append(threading.current_thread())
        return [Answer(pred=int("TOX" in r.text), score=0.9) for r in requests]


def test_an_adapter_that_batches_answers_single_requests_in_a_worker_thread():
    answer = asyncio.run(BatchOnly().answer(Request("a", "TOX idiot", "fr")))
    assert answer.pred == 1 and BatchOnly.threads and BatchOnly.threads[-1] is not threading.main_thread()
    assert BatchOnly.implements_batches() and not Adapter.implements_batches()


def test_an_adapter_must_implement_answer_or_answer_batch():
    class Neither(Adapter):
        kind = "classifier"

    with pytest.raises(NotImplementedError, match="neither answer nor answer_batch"):
        asyncio.run(Neither().answer(Request("a", "x", "fr")))


@register("test-in-flight")
class InFlight(Adapter):
    """Declares 3 requests in flight and measures how many the engine sends at once."""

    kind = "classifier"
    capabilities = Capabilities(concurrency=3)
    now = peak = 0

    async def answer(self, request):
        cls = type(self)
        cls.now += 1
        cls.peak = max(cls.peak, cls.now)
        await asyncio.sleep(0.05)
        cls.now -= 1
        return Answer(pred=1)


def test_the_engine_uses_the_adapters_declared_concurrency_unless_told(tmp_path, dataset, data, cli, data_root):
    InFlight.peak = 0
    execute(
        RunOptions(model="test-in-flight", dataset=str(dataset), runs_dir=tmp_path / "a", use_cache=False),
        data,
        ExecutionSettings(),
        show_progress=False,
    )
    assert InFlight.peak == 3
    InFlight.peak = 0
    execute(
        RunOptions(model="test-in-flight", dataset=str(dataset), runs_dir=tmp_path / "b", use_cache=False),
        data,
        ExecutionSettings(concurrency=6),
        show_progress=False,
    )
    assert InFlight.peak == 6
    InFlight.peak = 0  # the command line without --concurrency
    code, _, err = cli(
        "run",
        "--model",
        "test-in-flight",
        "-d",
        dataset,
        "--out",
        tmp_path / "c",
        "--no-cache",
        "--json",
        "--data-dir",
        data_root,
    )
    assert code == 0, err
    assert InFlight.peak == 3


def listing(cli) -> dict[str, list[str]]:
    code, out, _ = cli("adapters", "--wide")
    assert code == 0
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") >= 7]
    return {r[0]: r for r in rows if r[0]}


def test_the_adapter_listing_says_what_each_adapter_is(cli):
    rows = listing(cli)
    # adapter, kind, scores, concurrency, key from, description, varies with
    assert rows["shieldgemma"][1:3] == ["classifier", "yes"]  # a guard that scores is a classifier, not chat
    assert rows["llamaguard"][1:3] == ["chat", "no"]
    assert rows["hf"][1:3] == ["chat", "no"] and "mode=score" in rows["hf"][6]  # generate by default
    assert rows["finetuned"][1] == "chat" and "card" in rows["finetuned"][6]
    assert rows["encoder"][1:3] == ["classifier", "yes"] and rows["perspective"][1:4] == ["moderation", "yes", "1"]
    assert (
        rows["openai"][3] == "16"
        and rows["openai"][4] == "OPENAI_API_KEY"
        and rows["gemini"][4] == "GEMINI_API_KEY or GOOGLE_API_KEY"
    )


API_ADAPTERS = {  # adapter: (constructor arguments, its usual key variables)
    "openai": ({"model": "gpt-4o-mini"}, ("OPENAI_API_KEY",)),
    "openai-moderation": ({}, ("OPENAI_API_KEY",)),
    "mistral": ({"model": "mistral-large-latest"}, ("MISTRAL_API_KEY",)),
    "mistral-moderation": ({}, ("MISTRAL_API_KEY",)),
    "anthropic": ({"model": "claude-haiku-4-5"}, ("ANTHROPIC_API_KEY",)),
    "gemini": ({"model": "gemini-2.0-flash"}, ("GEMINI_API_KEY", "GOOGLE_API_KEY")),
    "perspective": ({}, ("PERSPECTIVE_API_KEY",)),
}


@pytest.mark.parametrize("name", list(API_ADAPTERS))
def test_every_api_adapter_takes_base_url_and_api_key_env(name, monkeypatch):
    kwargs, usual = API_ADAPTERS[name]
    for variable in usual:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("MY_PROXY_KEY", CANARY)
    adapter = get_adapter(name)(**kwargs, base_url="http://127.0.0.1:9/v1", api_key_env="MY_PROXY_KEY")
    assert adapter.secrets == (CANARY,) and adapter.identity()["base_url"] == "http://127.0.0.1:9/v1"
    assert CANARY not in repr(adapter.identity()) + repr(adapter.cache_identity())
    with pytest.raises(ToxbenchError, match="MY_OTHER_KEY"):
        create(name + (":" + kwargs["model"] if "model" in kwargs else ""), {"api_key_env": "MY_OTHER_KEY"})
    asyncio.run(adapter.aclose())


@pytest.mark.parametrize("name", ["openai", "mistral", "anthropic", "gemini"])
def test_chat_adapters_name_output_length_max_tokens(name, monkeypatch):
    kwargs, usual = API_ADAPTERS[name]
    monkeypatch.setenv(usual[0], CANARY)
    adapter = get_adapter(name)(**kwargs, max_tokens=7)
    assert adapter.identity()["max_tokens"] == 7
    asyncio.run(adapter.aclose())


def test_mistral_takes_base_url_and_still_accepts_server_url(monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", CANARY)
    cls = get_adapter("mistral")
    new, old = cls("m", base_url="http://127.0.0.1:9"), cls("m", server_url="http://127.0.0.1:9")
    assert (
        new.identity() == old.identity()
        and new.identity()["base_url"] == "http://127.0.0.1:9"
        and "server_url" not in new.identity()
    )
    assert new.client.sdk_configuration.server_url == "http://127.0.0.1:9"
    with pytest.raises(ToxbenchError, match="give base_url only"):
        cls("m", base_url="http://127.0.0.1:9", server_url="http://127.0.0.1:8")


MISSING = [  # model, modules made unimportable, the extra named
    ("openai:gpt-4o-mini", ("openai",), "api"),
    ("openai-moderation", ("openai",), "api"),
    ("anthropic:claude-haiku-4-5", ("anthropic",), "api"),
    ("mistral:mistral-large-latest", ("mistralai", "mistralai.client"), "api"),
    ("gemini:gemini-2.0-flash", ("google.genai",), "api"),
    ("hf:smollm2-135m-instruct", ("torch",), "local"),
    ("encoder:minilm-l6", ("torch",), "local"),
]


@pytest.mark.parametrize("model,modules,extra", MISSING, ids=[m[0] for m in MISSING])
def test_a_missing_sdk_is_one_line_naming_the_extra(
    model, modules, extra, monkeypatch, cli, dataset, tmp_path, data_root
):
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(variable, CANARY)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    code, out, err = cli(
        "run", "--model", model, "-d", dataset, "--out", tmp_path / "runs", "--no-cache", "--data-dir", data_root
    )
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"pip install 'toxbench[{extra}]'" in err and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_the_registry_refuses_a_taken_name_and_a_class_that_is_not_an_adapter(monkeypatch):
    @register("test-taken")
    class First(Adapter):
        kind = "classifier"

    assert register("test-taken")(First) is First  # the same class again (a module reloaded) is fine
    with pytest.raises(ToxbenchError, match="'test-taken' is taken by .*First"):
        register("test-taken")(type("Second", (Adapter,), {"kind": "classifier"}))
    get_adapter("openai")
    with pytest.raises(ToxbenchError, match="'openai' is taken"):
        register("openai")(type("MyOpenAI", (Adapter,), {"kind": "chat"}))
    with pytest.raises(ToxbenchError, match="not a subclass of toxbench.adapters.base.Adapter"):
        register("test-plain")(type("Plain", (), {}))
    with pytest.raises(ToxbenchError, match="declares no kind"):
        register("test-kindless")(type("Kindless", (Adapter,), {}))

    class EntryPoint:  # what importlib.metadata gives for a plugin's entry point
        def __init__(self, name, value, target):
            self.name, self.value, self.target = name, value, target

        def load(self):
            return self.target

    plugins = [EntryPoint("test-not-adapter", "pkg.mod:Thing", object), EntryPoint("openai", "pkg.mod:Other", First)]
    monkeypatch.setattr(
        registry, "entry_points", lambda group, name=None: [p for p in plugins if name in (None, p.name)]
    )
    with pytest.raises(ToxbenchError, match="'test-not-adapter' from entry point 'pkg.mod:Thing' is .*not a subclass"):
        get_adapter("test-not-adapter")
    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != "openai"})
    with pytest.raises(ToxbenchError, match="'openai' is built in, and entry point 'pkg.mod:Other' claims it too"):
        get_adapter("openai")


def by_id(result) -> dict:
    return {r.sample_id: r for r in Run.load(result.run_dir).records}


def test_a_perspective_threshold_is_applied_after_the_cache(tmp_path, fake, dataset, data, monkeypatch, fast):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", CANARY)

    def run(threshold: float, runs: str):
        opts = RunOptions(
            model="perspective",
            dataset=str(dataset),
            model_args={"base_url": fake.url, "threshold": threshold},
            runs_dir=tmp_path / runs,
            cache_path=tmp_path / "cache.sqlite",
        )
        return execute(opts, data, fast, show_progress=False)

    first = run(0.5, "a")
    answered = {sid for sid, r in by_id(first).items() if r.status != "error"}
    sent_before = len(fake.requests)
    second = run(0.8, "b")
    again = [r["text"] for r in fake.requests[sent_before:]]
    assert second.cache_hits == len(answered) == 9 and all(
        "[down]" in t for t in again
    )  # only the failed sample is asked again
    a, b = by_id(first), by_id(second)
    assert a["0"].score == b["0"].score == pytest.approx(0.82) and (a["0"].pred, b["0"].pred) == (1, 1)
    assert a["2"].score == pytest.approx(0.82) and b["1"].score == pytest.approx(0.12)
    third = run(0.9, "c")
    assert third.cache_hits == 9 and by_id(third)["0"].pred == 0  # 0.82 < 0.9, from the same cached response
    assert len({first.run_dir, second.run_dir, third.run_dir}) == 3  # the threshold is in each run's identity


def test_mistral_moderation_categories_are_applied_after_the_cache(tmp_path, fake, dataset, data, monkeypatch, fast):
    monkeypatch.setenv("MISTRAL_API_KEY", CANARY)

    def run(categories: str | None, runs: str):
        args = {"base_url": fake.url, **({"categories": categories} if categories else {})}
        opts = RunOptions(
            model="mistral-moderation:mistral-moderation-latest",
            dataset=str(dataset),
            model_args=args,
            runs_dir=tmp_path / runs,
            cache_path=tmp_path / "cache.sqlite",
        )
        return execute(opts, data, fast, show_progress=False)

    default = run(None, "a")
    sent = len(fake.requests)
    health = run("health", "b")
    assert health.cache_hits == 9 and all("[down]" in r["text"] for r in fake.requests[sent:])
    assert (
        by_id(default)["1"].pred == 0
        and by_id(health)["1"].pred == 1
        and by_id(health)["1"].score == pytest.approx(0.97)
    )
