"""`toxbench run --batch` through OpenAI's Batch API, for real through the openai SDK against a
loopback server speaking its Files and Batch wire format: the same run (id, records, cache) as a
live one, at half the price, resumable without paying twice, and a partial batch leaves exactly
its missing samples as `error`."""

import json
import re

import pytest

from toxbench.records import Run, iter_run_dirs
from toxbench.run.batch import CHECKPOINT, chunked

KEY = "sk-batch-canary-0123456789abcdefghij"
TEXTS = ["tu es un TOX idiot", "merci pour tout", "TOX dégage", "à demain", "TOX nul", "bonne journée"]


def verdict(body: dict) -> str:
    return "toxique" if "TOX" in body["messages"][-1]["content"] else "non-toxique"


@pytest.fixture
def batch_api():
    from fakes.openai_batch import FakeBatchAPI

    api = FakeBatchAPI(verdict, polls_in_progress=1)
    yield api
    api.close()


@pytest.fixture
def plain(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(
        "id,text,label\n" + "".join(f"{i},{t},{int('TOX' in t)}\n" for i, t in enumerate(TEXTS)), encoding="utf-8"
    )
    return path


def run(cli, url, dataset, out, data_root, *extra):
    return cli(
        "run", "--model", "openai:gpt-4o-mini", "--model-arg", f"base_url={url}", "-d", dataset, "--out", out,
        "--data-dir", data_root, "--json", *extra,
    )  # fmt: skip


def test_chunks_keep_each_batch_within_both_limits():
    def sizes(pairs, max_requests, max_bytes):
        return [[n for n in chunk] for chunk in chunked(((n, n) for n in pairs), max_requests, max_bytes)]

    assert sizes([10] * 7, max_requests=3, max_bytes=1000) == [[10] * 3, [10] * 3, [10]]
    assert sizes([400, 400, 400, 50], max_requests=10, max_bytes=1000) == [[400, 400], [400, 50]]
    assert sizes([5000, 10], max_requests=10, max_bytes=1000) == [[5000], [10]]  # too big alone: its own batch
    assert sizes([], 3, 10) == []


def test_a_batched_run_is_the_live_run_at_half_the_price(cli, batch_api, fake, plain, data_root, tmp_path, monkeypatch):
    from toxbench.run.pricing import cost_usd, price_table

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "batched.sqlite"))
    code, out, err = run(
        cli, batch_api.url, plain, tmp_path / "batched", data_root, "--batch", "--poll-interval", "0.01"
    )
    assert code == 0, err
    batched = json.loads(out)
    assert batched["status"] == {"ok": 6} and batched["requests_sent"] == 6
    assert [c for c in batch_api.calls if c[0] == "POST"] == [("POST", "/v1/files"), ("POST", "/v1/batches")]
    (run_dir,) = iter_run_dirs(tmp_path / "batched")
    assert not (run_dir / CHECKPOINT).exists()
    # the same command without --batch is the same run, complete: nothing is asked again
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "batched", data_root)
    assert code == 0 and json.loads(out)["run_dir"] == str(run_dir) and json.loads(out)["requests_sent"] == 0, err
    # live answers to the same texts read the same
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "live.sqlite"))
    code, out, err = run(cli, f"{fake.url}/v1", plain, tmp_path / "live", data_root)
    assert code == 0, err
    records = Run.load(run_dir).records
    live = Run.load(next(iter_run_dirs(tmp_path / "live"))).records
    assert sorted((r.sample_id, r.pred, r.status) for r in records) == sorted(
        (r.sample_id, r.pred, r.status) for r in live
    )
    table = price_table(None)
    for r in records:  # the batch price: half the live price of the same tokens
        assert r.tokens_in and r.cost_usd == pytest.approx(
            cost_usd("gpt-4o-mini", r.tokens_in, r.tokens_out, table) / 2
        )


def test_a_command_stopped_while_waiting_resumes_its_batch_without_paying_twice(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    batch_api.polls_down = True
    code, _, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 2 and "run the same command again to resume" in err and "checkpointed" in err
    (run_dir,) = iter_run_dirs(tmp_path / "runs")
    assert json.loads((run_dir / CHECKPOINT).read_text())["batches"][0]["batch_id"].startswith("batch_")
    batch_api.polls_down = False
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["status"] == {"ok": 6}, err
    assert [c for c in batch_api.calls if c == ("POST", "/v1/batches")] == [
        ("POST", "/v1/batches")
    ]  # one batch, paid once


def test_a_partial_batch_leaves_exactly_its_missing_samples_as_errors(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    batch_api.end_status, batch_api.expire_after = "expired", 4
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    records = {r.sample_id: r for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records}
    assert [sid for sid, r in records.items() if r.status == "error"] == ["4", "5"], (out, err)
    assert "batch expired" in records["4"].raw
    batch_api.end_status, batch_api.expire_after = "completed", None
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["requests_sent"] == 2, err  # only the two errors are asked again


def test_batch_is_refused_where_an_adapter_has_none(cli, plain, data_root, tmp_path):
    code, _, err = cli("run", "-d", plain, "--batch", "--out", tmp_path / "runs", "--data-dir", data_root)
    assert code == 2 and "--batch: 'baseline' has no batch API here" in err and not (tmp_path / "runs").exists()


def test_sweep_batch_sends_openai_cells_through_the_batch_api_and_the_others_live(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    sweep = tmp_path / "mixed.toml"
    sweep.write_text(
        f'name = "mixed"\ndatasets = ["{plain.as_posix()}"]\nprompts = ["simple", "detailed"]\n'
        f'[[models]]\nmodel = "openai:gpt-4o-mini"\nargs = {{ base_url = "{batch_api.url}" }}\n'
        '[[models]]\nmodel = "baseline"\n',
        encoding="utf-8",
    )
    code, _out, err = cli(
        "sweep", sweep, "--batch", "--poll-interval", "0.01", "--runs", tmp_path / "runs", "--out", tmp_path / "t",
        "--data-dir", data_root,
    )  # fmt: skip
    assert code == 0, err
    assert [c for c in batch_api.calls if c == ("POST", "/v1/batches")] == [
        ("POST", "/v1/batches")
    ] * 2  # a batch per openai cell
    submits = [i for i, c in enumerate(batch_api.calls) if c == ("POST", "/v1/batches")]
    polls = [i for i, c in enumerate(batch_api.calls) if c[0] == "GET" and c[1].startswith("/v1/batches/")]
    assert max(submits) < min(polls)  # every cell's batch is submitted before the sweep waits on any
    table = (tmp_path / "t" / "sensitivity.csv").read_text()
    assert table.count("openai:gpt-4o-mini") == 2 and "baseline" in table


def test_evaluate_takes_batch_like_the_command(batch_api, plain, data_root, tmp_path, monkeypatch):
    import toxbench

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    result = toxbench.evaluate(
        "openai:gpt-4o-mini", str(plain), runs_dir=tmp_path / "runs", data_dir=data_root,
        model_args={"base_url": batch_api.url}, batch=True, poll_s=0.01, cache_path=tmp_path / "c.sqlite",
    )  # fmt: skip
    assert result.statuses == {"ok": 6} and result.requests_sent == 6 and ("POST", "/v1/batches") in batch_api.calls


@pytest.fixture
def message_batches():
    from fakes.anthropic_batch import FakeMessageBatches

    api = FakeMessageBatches(lambda params: verdict(params), polls_in_progress=1)
    yield api
    api.close()


def test_expired_message_batch_requests_are_errors_asked_again(
    cli, message_batches, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    message_batches.expire_after = 4
    args = ("run", "--model", "anthropic:claude-haiku-4-5", "--model-arg", f"base_url={message_batches.url}", "-d", plain,
            "--out", tmp_path / "runs", "--data-dir", data_root, "--json", "--batch", "--poll-interval", "0.01")  # fmt: skip
    cli(*args)
    records = {r.sample_id: r for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records}
    assert sorted(sid for sid, r in records.items() if r.status == "error") == ["4", "5"]
    assert "expired" in records["4"].raw
    message_batches.expire_after = None
    code, out, err = cli(*args)
    assert code == 0 and json.loads(out)["requests_sent"] == 2, err


def last_user_text(request: dict) -> str:
    """The user's text in a Gemini request (wire form) or a Mistral body."""
    if "contents" in request:
        return request["contents"][-1]["parts"][0]["text"]
    return request["messages"][-1]["content"]


@pytest.fixture
def gemini_batches():
    from fakes.gemini_batch import FakeGeminiBatches

    api = FakeGeminiBatches(lambda r: "toxique" if "TOX" in last_user_text(r) else "non-toxique")
    yield api
    api.close()


@pytest.fixture
def mistral_batches():
    from fakes.mistral_batch import FakeMistralBatches

    api = FakeMistralBatches(lambda r: "toxique" if "TOX" in last_user_text(r) else "non-toxique")
    yield api
    api.close()


PROVIDERS = {  # model, key variable, the fake's fixture, its submit call
    "anthropic": ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY", "message_batches", ("POST", "/v1/messages/batches")),
    "gemini": ("gemini:gemini-2.5-flash", "GEMINI_API_KEY", "gemini_batches", ("POST", "/v1/models/gemini-2.5-flash:batchGenerateContent")),
    "mistral": ("mistral:mistral-small-latest", "MISTRAL_API_KEY", "mistral_batches", ("POST", "/v1/batch/jobs")),
}  # fmt: skip


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_anthropic_gemini_and_mistral_batches_read_as_live_answers_at_half_the_price(
    provider, request, cli, fake, plain, data_root, tmp_path, monkeypatch
):
    from toxbench.run.pricing import cost_usd, price_table

    model, key_env, fixture, submit = PROVIDERS[provider]
    api = request.getfixturevalue(fixture)
    monkeypatch.setenv(key_env, KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "b.sqlite"))
    args = ("run", "--model", model, "-d", plain, "--data-dir", data_root, "--json")
    code, out, err = cli(*args, "--model-arg", f"base_url={api.url}", "--out", tmp_path / "b", "--batch",
                         "--poll-interval", "0.01")  # fmt: skip
    assert code == 0 and json.loads(out)["status"] == {"ok": 6}, err
    assert api.calls.count(submit) == 1
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "l.sqlite"))
    code, out, err = cli(*args, "--model-arg", f"base_url={fake.url}", "--out", tmp_path / "l")
    assert code == 0, err
    batched = Run.load(next(iter_run_dirs(tmp_path / "b"))).records
    live = Run.load(next(iter_run_dirs(tmp_path / "l"))).records
    assert sorted((r.sample_id, r.pred, r.status) for r in batched) == sorted(
        (r.sample_id, r.pred, r.status) for r in live
    )
    assert {r.pred for r in batched} == {0, 1}
    table = price_table(None)
    for r in batched:
        expected = cost_usd(model.split(":")[1], r.tokens_in, r.tokens_out, table)
        assert r.tokens_in and ((expected is None and r.cost_usd is None) or r.cost_usd == pytest.approx(expected / 2))


@pytest.mark.parametrize("provider", ["gemini", "mistral"])
def test_gemini_and_mistral_partial_batches_leave_their_missing_and_failed_samples_as_errors(
    provider, request, cli, plain, data_root, tmp_path, monkeypatch
):
    model, key_env, fixture, _ = PROVIDERS[provider]
    api = request.getfixturevalue(fixture)
    monkeypatch.setenv(key_env, KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    if provider == "gemini":
        api.expire_after, api.fail_keys = 4, {"1"}
    else:
        api.timeout_after, api.fail_ids = 4, {"1"}
    args = ("run", "--model", model, "--model-arg", f"base_url={api.url}", "-d", plain, "--out", tmp_path / "runs",
            "--data-dir", data_root, "--json", "--batch", "--poll-interval", "0.01")  # fmt: skip
    cli(*args)
    records = {r.sample_id: r for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records}
    assert sorted(sid for sid, r in records.items() if r.status == "error") == ["1", "4", "5"]
    assert "no result for this request" in records["4"].raw and "batch request failed" in records["1"].raw
    api.fail_keys, api.fail_ids = set(), set()
    api.expire_after = api.timeout_after = None
    code, out, err = cli(*args)
    assert code == 0 and json.loads(out)["requests_sent"] == 3 and json.loads(out)["status"] == {"ok": 6}, err


def test_a_mistral_guardrail_block_in_a_batch_is_a_refusal_as_it_is_live(
    cli, mistral_batches, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("MISTRAL_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    data = tmp_path / "d.csv"
    data.write_text("id,text,label\n0,TOX [filter] sale,1\n1,merci,0\n", encoding="utf-8")
    code, _, err = cli("run", "--model", "mistral:mistral-small-latest", "--model-arg", f"base_url={mistral_batches.url}",
                         "-d", data, "--out", tmp_path / "runs", "--data-dir", data_root, "--json", "--batch",
                         "--poll-interval", "0.01")  # fmt: skip
    assert code == 0, err
    records = {r.sample_id: r for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records}
    assert records["0"].status == "refused" and records["1"].status == "ok"


def test_a_run_larger_than_the_providers_limits_goes_out_in_several_batches(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    from toxbench.adapters.openai_api import OpenAIBatches

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    monkeypatch.setattr(OpenAIBatches, "max_requests", 4)  # 6 requests: 4 + 2 ...
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["status"] == {"ok": 6}, err
    sizes = sorted(len(b["lines"]) for b in batch_api.batches.values())
    assert sizes == [2, 4]
    inputs = [batch_api.files[b["object"]["input_file_id"]] for b in batch_api.batches.values()]
    one_line = max(len(line) + 1 for f in inputs for line in f.splitlines())
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "other.sqlite"))
    monkeypatch.setattr(OpenAIBatches, "max_requests", 50_000)
    monkeypatch.setattr(OpenAIBatches, "max_bytes", one_line * 2)  # ... and by bytes: at most 2 lines a file
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "bytes", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0, err
    assert [len(b["lines"]) for b in list(batch_api.batches.values())[len(sizes) :]] == [2, 2, 2]


def test_runs_status_shows_a_waiting_batch_and_cancel_records_its_requests_as_errors(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    batch_api.polls_down = True  # the command dies while waiting: the batch runs on at the provider
    code, _, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 2, err
    (run_dir,) = iter_run_dirs(tmp_path / "runs")
    batch_id = json.loads((run_dir / CHECKPOINT).read_text())["batches"][0]["batch_id"]
    batch_api.polls_down = False
    batch_api.polls_in_progress = 100
    code, out, err = cli("runs", "status", run_dir.name, "--runs", tmp_path / "runs")
    assert code == 0, err
    assert batch_id in out and "in_progress" in out and "0/6" in out and "--batch --cancel" in out
    assert "0 of 6 recorded" in out
    code, out, err = run(
        cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--cancel", "--poll-interval", "0.01"
    )
    assert code == 2 and "no sample got an answer" in err and "batch cancelled" in err  # cancelled before any answer
    assert ("POST", f"/v1/batches/{batch_id}/cancel") in batch_api.calls
    assert [c for c in batch_api.calls if c == ("POST", "/v1/batches")] == [("POST", "/v1/batches")]  # nothing new
    records = Run.load(run_dir).records
    assert len(records) == 6 and {r.status for r in records} == {"error"} and "batch cancelled" in records[0].raw
    assert not (run_dir / CHECKPOINT).exists()
    code, out, err = cli("runs", "status", run_dir.name, "--runs", tmp_path / "runs")
    assert code == 0 and "no batch checkpointed" in out, err
    batch_api.polls_in_progress = 1
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["requests_sent"] == 6 and json.loads(out)["status"] == {"ok": 6}, err


def test_cancel_needs_batch_and_a_checkpointed_batch(cli, plain, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    code, _, err = run(cli, "http://127.0.0.1:9/v1", plain, tmp_path / "runs", data_root, "--cancel")
    assert code == 2 and "--cancel goes with --batch" in err
    code, _, err = run(cli, "http://127.0.0.1:9/v1", plain, tmp_path / "runs", data_root, "--batch", "--cancel")
    assert code == 2 and "no batch of this run is checkpointed" in err and "nothing to cancel" in err
    assert not (tmp_path / "runs").exists()


def test_the_adapters_with_a_batch_api_are_the_ones_the_messages_name():
    from toxbench.run.batch import with_batch_api

    assert sorted(with_batch_api()) == ["anthropic:", "gemini:", "mistral:", "openai:"]


def test_a_price_table_with_batch_prices_prices_a_batched_run_at_them(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    prices = tmp_path / "prices.toml"
    prices.write_text('"gpt-4o-mini" = [0.15, 0.60, 0.05, 0.10]\n')
    code, _, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01",
                         "--prices", prices)  # fmt: skip
    assert code == 0, err
    for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records:
        assert r.cost_usd == pytest.approx((r.tokens_in * 0.05 + r.tokens_out * 0.10) / 1e6)


def test_batch_progress_says_what_was_submitted_each_state_and_its_counts(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    code, _, err = cli("run", "--model", "openai:gpt-4o-mini", "--model-arg", f"base_url={batch_api.url}", "-d", plain,
                       "--out", tmp_path / "runs", "--data-dir", data_root, "--batch", "--poll-interval", "0.01")  # fmt: skip
    assert code == 0, err
    assert "batch batch_2 submitted (6 requests)" in err
    assert re.search(r"batch batch_2 in_progress, 0/6 done \(\d+ s\)", err), err
    assert "batch batch_2 completed: 6 recorded" in err


def test_a_process_killed_while_waiting_resumes_its_batch_without_resubmitting(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    import os
    import subprocess
    import sys
    import time

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    batch_api.polls_in_progress = 10**9  # the batch never ends while the first process waits
    command = [sys.executable, "-m", "toxbench", "run", "--model", "openai:gpt-4o-mini", "--model-arg",
               f"base_url={batch_api.url}", "-d", str(plain), "--out", str(tmp_path / "runs"), "--data-dir",
               str(data_root), "--batch", "--poll-interval", "0.05"]  # fmt: skip
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list((tmp_path / "runs").glob(f"*/{CHECKPOINT}")) and time.monotonic() < deadline:
            time.sleep(0.05)
        while sum(c[1].startswith("/v1/batches/") for c in batch_api.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # it is polling
    finally:
        process.kill()  # SIGKILL: no handler runs
        process.wait()
    (checkpoint,) = (tmp_path / "runs").glob(f"*/{CHECKPOINT}")
    assert json.loads(checkpoint.read_text())["batches"][0]["batch_id"] == "batch_2"
    code, _, err = cli(
        "runs", "rm", checkpoint.parent.name, "--runs", tmp_path / "runs"
    )  # no terminal: nothing deleted
    assert code == 2 and "1 batch(es) of this run still run at the provider" in err and checkpoint.exists()
    batch_api.polls_in_progress = 0
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["status"] == {"ok": 6} and json.loads(out)["requests_sent"] == 0, err
    assert batch_api.calls.count(("POST", "/v1/batches")) == 1 and not checkpoint.exists()


def test_cached_answers_are_recorded_as_cached_and_never_sent_in_a_batch(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    code, _, err = run(cli, batch_api.url, plain, tmp_path / "first", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0, err
    code, out, err = run(cli, batch_api.url, plain, tmp_path / "again", data_root, "--batch", "--poll-interval", "0.01")
    assert code == 0 and json.loads(out)["cache_hits"] == 6 and json.loads(out)["requests_sent"] == 0, err
    assert batch_api.calls.count(("POST", "/v1/batches")) == 1
    records = Run.load(next(iter_run_dirs(tmp_path / "again"))).records
    assert all(r.cached and r.cost_usd is None for r in records)


def test_ctrl_c_while_waiting_leaves_the_batch_running_and_says_how_to_pick_it_up_or_cancel_it(
    batch_api, plain, data_root, tmp_path, monkeypatch
):
    import os
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    batch_api.polls_in_progress = 10**9
    command = [sys.executable, "-m", "toxbench", "run", "--model", "openai:gpt-4o-mini", "--model-arg",
               f"base_url={batch_api.url}", "-d", str(plain), "--out", str(tmp_path / "runs"), "--data-dir",
               str(data_root), "--batch", "--poll-interval", "0.05"]  # fmt: skip
    process = subprocess.Popen(
        command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while sum(c[1].startswith("/v1/batches/") for c in batch_api.calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # submitted, and polling
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "the batches run on at the provider" in err and "add --cancel to cancel them" in err and "runs status" in err
    assert "Traceback" not in err
    (checkpoint,) = (tmp_path / "runs").glob(f"*/{CHECKPOINT}")
    assert json.loads(checkpoint.read_text())["batches"][0]["batch_id"] == "batch_2"


def test_a_results_file_line_that_is_not_a_json_object_is_skipped_and_error_lines_say_why():
    from toxbench.adapters._sdk import batch_result_line, jsonl_objects

    text = '{"custom_id": "a"}\nnot json\n[1, 2]\n\n{"custom_id": "b"}\n'
    assert [i["custom_id"] for i in jsonl_objects(text)] == ["a", "b"]
    ok = {"response": {"status_code": 200, "body": {"choices": []}}}
    assert batch_result_line(ok)[:2] == (200, {"choices": []})
    failed = {"response": {"status_code": 500, "body": {"error": {"message": "overloaded"}}}, "error": None}
    assert batch_result_line(failed) == (500, {"error": {"message": "overloaded"}}, "overloaded")
    odd = {"response": ["not", "an", "object"], "error": "expired"}
    assert batch_result_line(odd) == (None, None, '"expired"')


def test_a_checkpoint_of_another_shape_is_one_line(tmp_path):
    from toxbench.errors import ToxbenchError
    from toxbench.run.batch import read_checkpoint

    for text in ('{"batches": [{"batch_id": 5, "custom_ids": ["a"]}]}', '{"batches": [{"batch_id": "b"}]}', "[]", "{"):
        (tmp_path / CHECKPOINT).write_text(text)
        with pytest.raises(ToxbenchError, match="not a batch checkpoint toxbench wrote"):
            read_checkpoint(tmp_path)
    (tmp_path / CHECKPOINT).write_text('{"batch_id": "b1", "custom_ids": ["a"]}')  # annotate's earlier one-batch form
    assert read_checkpoint(tmp_path)["batches"][0]["batch_id"] == "b1"


def test_an_answer_larger_than_toxbench_keeps_is_that_sample_s_error(cli, plain, data_root, tmp_path, monkeypatch):
    from fakes.openai_batch import FakeBatchAPI

    api = FakeBatchAPI(lambda body: "x" * 1_100_000 if "merci" in body["messages"][-1]["content"] else "toxique", 1)
    try:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
        code, _, err = run(cli, api.url, plain, tmp_path / "runs", data_root, "--batch", "--poll-interval", "0.01")
        assert code == 0, err  # one sample's error, not the run's
        records = {r.sample_id: r for r in Run.load(next(iter_run_dirs(tmp_path / "runs"))).records}
        assert records["1"].status == "error" and "more than the 1,000,000 toxbench keeps" in records["1"].raw, err
        assert records["0"].status == "ok" and len(records["1"].raw) < 2000
    finally:
        api.close()


def test_a_server_status_that_looks_like_markup_is_printed_as_text(
    cli, batch_api, plain, data_root, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "c.sqlite"))
    original = batch_api.poll

    def odd_status(batch_id):
        obj = original(batch_id)
        return {**obj, "status": "queued[/]"} if obj["status"] == "in_progress" else obj

    monkeypatch.setattr(batch_api, "poll", odd_status)
    code, _, err = cli("run", "--model", "openai:gpt-4o-mini", "--model-arg", f"base_url={batch_api.url}", "-d", plain,
                       "--out", tmp_path / "runs", "--data-dir", data_root, "--batch", "--poll-interval", "0.01")  # fmt: skip
    assert code == 0 and "batch batch_2 queued[/], 0/6 done" in err, err
