"""Engine pieces in isolation: waits, rate limits, prices."""

import asyncio
import time

import pytest
from tenacity import RetryCallState

from toxbench.adapters._sdk import error_for_status, parse_retry_after
from toxbench.adapters.base import Adapter, Capabilities, RateLimited, TransientError
from toxbench.errors import ToxbenchError
from toxbench.records import Run, RunSpec, RunWriter
from toxbench.run import engine
from toxbench.run.engine import ExecutionSettings, _wait, run_requests
from toxbench.run.pricing import cost_usd, price_table
from toxbench.types import Answer, Request


def _state_with(exc) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})
    state.attempt_number = 1
    state.set_exception((type(exc), exc, None))
    return state


def test_retry_after_is_the_wait_and_backoff_otherwise():
    wait = _wait(ExecutionSettings(backoff_initial_s=1.0, backoff_max_s=30))
    assert wait(_state_with(RateLimited("429", retry_after=7.5))) == 7.5
    assert wait(_state_with(RateLimited("429", retry_after=999))) == 30  # capped
    assert 1.0 <= wait(_state_with(TransientError("500"))) <= 2.0  # initial + jitter


@pytest.mark.parametrize(
    "status,cls,stops",
    [(429, "RateLimited", None), (503, "TransientError", None), (401, "FatalError", True), (400, "FatalError", False)],
)
def test_status_classes(status, cls, stops):
    err = error_for_status(status, "x", "3")
    assert type(err).__name__ == cls and (stops is None or err.stops_run is stops)


def test_retry_after_http_date():
    assert (
        parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
        and parse_retry_after("12") == 12.0
        and parse_retry_after("soon") is None
    )


def test_prices_override_and_unknown_models(tmp_path):
    table = price_table()
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000, table) == pytest.approx(0.75)
    assert cost_usd("my-local-model", 100, 3, table) is None
    custom = tmp_path / "p.toml"
    custom.write_text('"my-local-model" = [1.0, 2.0]\n"gpt-4o-mini" = [0.0, 0.0]\n')
    mine = price_table(str(custom))
    assert (
        cost_usd("my-local-model", 1_000_000, 500_000, mine) == pytest.approx(2.0)
        and cost_usd("gpt-4o-mini", 10, 10, mine) == 0.0
    )


def test_batch_prices_are_half_the_live_ones_unless_the_table_gives_them(tmp_path):
    table = price_table()
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000, table, batch=True) == pytest.approx(0.375)
    custom = tmp_path / "p.toml"
    custom.write_text('"gpt-4o-mini" = [0.15, 0.60, 0.05, 0.10]\n')
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000, price_table(str(custom)), batch=True) == pytest.approx(0.15)
    bad = tmp_path / "bad.toml"
    bad.write_text('"gpt-4o-mini" = [0.15, 0.60, 0.05]\n')  # three numbers: neither shape
    with pytest.raises(ToxbenchError, match=r"\[2.5, 10.0, 1.25, 5.0\] with the batch prices"):
        price_table(str(bad))


class Echo(Adapter):
    name, kind = "echo", "classifier"

    async def answer(self, request: Request) -> Answer:
        return Answer(pred=1, tokens_in=len(request.text))


def test_tpm_limiter_is_charged_per_request(tmp_path, monkeypatch):
    charged = []

    class Spy(engine.AsyncLimiter):
        async def acquire(self, amount=1):
            charged.append(amount)
            await super().acquire(amount)

    monkeypatch.setattr(engine, "AsyncLimiter", Spy)
    writer = RunWriter(tmp_path, RunSpec(adapter="echo", model="m", dataset="d", dataset_sha256="0"))
    requests = [Request(str(i), "x" * 400, "fr") for i in range(3)]
    stats = asyncio.run(
        run_requests(
            Echo(),
            requests,
            {r.sample_id: 1 for r in requests},
            writer,
            parser=None,
            settings=ExecutionSettings(tpm=10_000, rpm=600),
        )
    )
    writer.finish()
    assert stats.statuses == {"ok": 3}
    assert sorted(charged) == [1, 1, 1, 100, 100, 100]  # 3 requests for rpm, 400 chars / 4 tokens for tpm
    assert len(Run.load(writer.dir).records) == 3


def test_a_retry_after_holds_every_request():
    async def scenario():
        limit = engine.AdaptiveLimit(8)
        limit.rate_limited(30)  # a 429 saying "retry after 30 s"
        assert limit.limit == 4 and 29 < limit.resume_at - time.monotonic() <= 30
        held = limit.resume_at
        limit.rate_limited(1)  # a shorter one never brings the time forward
        limit.rate_limited(None)  # nor does a 429 without Retry-After
        assert limit.resume_at == held and limit.limit == 1
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(limit.until_resumed(), 0.05)  # every sender waits
        limit.resume_at = time.monotonic() - 1
        await asyncio.wait_for(limit.until_resumed(), 0.05)  # past: nobody waits

    asyncio.run(scenario())


def test_rpm_and_tpm_pace_with_a_small_burst():
    """--rpm 600 lets 5 requests out at once, then refills at 10 a second; a minute's budget never
    goes out at once. --tpm holds 5 seconds' worth of tokens."""
    rpm, tpm = engine.pacers(ExecutionSettings(rpm=600, tpm=60_000))
    assert (rpm.max_rate, rpm.time_period) == (5, 0.5)  # 5 in hand, 5 per 0.5 s: 600 a minute
    assert (tpm.max_rate, tpm.time_period) == (5000, 5)
    slow, _ = engine.pacers(ExecutionSettings(rpm=2))
    assert (slow.max_rate, slow.time_period) == (2, 60)  # below the burst: the rate itself
    assert engine.pacers(ExecutionSettings()) == (None, None)


class ByWordCount(Adapter):
    """A batching adapter whose own size measure (words) disagrees with characters."""

    name, kind = "words", "classifier"
    capabilities = Capabilities(batching=True, batch_size=2)

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def batch_length(self, request: Request) -> int:
        return len(request.text.split())

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        self.batches.append([r.sample_id for r in requests])
        return [Answer(pred=0) for _ in requests]


def test_local_batches_follow_the_adapters_own_length(tmp_path):
    texts = {"long-few": "x" * 90 + " y", "short-many": "a b c d e", "mid-many": "aa bb cc dd ee ff", "tiny": "z"}
    adapter = ByWordCount()
    writer = RunWriter(tmp_path, RunSpec(adapter="words", model="m", dataset="d", dataset_sha256="0"))
    requests = [Request(k, v, "fr") for k, v in texts.items()]
    asyncio.run(
        run_requests(adapter, requests, {k: 0 for k in texts}, writer, parser=None, settings=ExecutionSettings())
    )
    writer.finish()
    # by characters the 92-character text would be batched last; by words (2) it goes with "tiny" (1)
    assert adapter.batches == [["tiny", "long-few"], ["short-many", "mid-many"]]


def test_a_request_a_batch_cannot_take_is_that_samples_error_alone(tmp_path):
    """An AdapterError in a sample's place: that sample is an error (not cached, so a re-run asks
    again); the rest of the batch is answered and cached; one request alone raises it."""
    from toxbench.adapters.base import FatalError
    from toxbench.run.cache import ResponseCache

    class RefusesLong(Adapter):
        name, kind = "refuses-long", "classifier"
        capabilities = Capabilities(batching=True, batch_size=8)

        def answer_batch(self, requests):
            return [
                FatalError("too long for the context", stops_run=False) if len(r.text) > 10 else Answer(pred=1)
                for r in requests
            ]

    requests = [Request("a", "short", "fr"), Request("b", "far too long a text", "fr"), Request("c", "tiny", "fr")]
    writer = RunWriter(tmp_path / "run", RunSpec(adapter="refuses-long", model="m", dataset="d", dataset_sha256="0"))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    asyncio.run(
        run_requests(
            RefusesLong(),
            requests,
            {"a": 1, "b": 0, "c": 1},
            writer,
            parser=None,
            settings=ExecutionSettings(),
            cache=cache,
        )
    )
    writer.finish()
    records = {r.sample_id: r for r in Run.load(writer.dir).records}
    assert {k: r.status for k, r in records.items()} == {"a": "ok", "b": "error", "c": "ok"}
    assert records["b"].raw == "FatalError: too long for the context"
    again = RunWriter(tmp_path / "again", RunSpec(adapter="refuses-long", model="m", dataset="d", dataset_sha256="0"))
    stats = asyncio.run(
        run_requests(
            RefusesLong(),
            requests,
            {"a": 1, "b": 0, "c": 1},
            again,
            parser=None,
            settings=ExecutionSettings(),
            cache=cache,
        )
    )
    again.finish()
    assert (stats.cache_hits, stats.requests_sent) == (2, 1)  # the error was not cached: it is asked again
    with pytest.raises(FatalError, match="too long"):
        asyncio.run(RefusesLong().answer(requests[1]))


def test_ctrl_c_during_a_local_run_stops_after_the_current_batch(tmp_path, data, capsys):
    """The first Ctrl-C is answered at once and the batch in progress is recorded; nothing after it runs."""
    import os
    import signal
    import threading
    import time

    from toxbench.adapters.registry import register
    from toxbench.run.runner import RunOptions, execute

    @register("test-slow-batches")
    class SlowBatches(Adapter):
        kind = "classifier"
        capabilities = Capabilities(batching=True, batch_size=4)
        started = 0

        def answer_batch(self, requests):
            type(self).started += 1
            if type(self).started == 2:  # Ctrl-C in the middle of the second batch, however long setting up took
                threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT)).start()
            time.sleep(0.4)
            return [Answer(pred=1) for _ in requests]

    texts = tmp_path / "t.csv"
    texts.write_text("id,text,label\n" + "".join(f"{i},text {i},{i % 2}\n" for i in range(40)), encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        execute(
            RunOptions(model="test-slow-batches", dataset=str(texts), runs_dir=tmp_path / "runs", use_cache=False),
            data,
            ExecutionSettings(),
            show_progress=False,
        )
    assert "stopping after the current batch" in capsys.readouterr().err
    (run_dir,) = list((tmp_path / "runs").iterdir())
    run = Run.load(run_dir)
    assert (
        SlowBatches.started == 2 and len(run.records) == 8 and run.manifest.status == "running"
    )  # the second batch kept, no third


def test_the_eta_is_the_average_rate_since_the_start():
    from toxbench.run.progress import eta

    assert eta(800, 8, 60.0) == "1:40:00"  # 8 samples a minute, 800 to go: not 0:00:01 after a burst of 8
    assert eta(10, 0, 5.0) == "-:--:--"
