"""Live runs through the official openai SDK against a real server on 127.0.0.1."""

import json

import pytest

from toxbench.records import Run
from toxbench.run.engine import ExecutionSettings
from toxbench.run.runner import RunOptions, execute

CANARY = "sk-canary-0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)


def options(tmp_path, fake, dataset, **kw) -> RunOptions:
    base = dict(
        model="openai:gpt-4o-mini",
        dataset=str(dataset),
        model_args={"base_url": fake.url + "/v1"},
        runs_dir=tmp_path / "runs",
        cache_path=tmp_path / "cache.sqlite",
        lang="fr",
    )
    return RunOptions(**{**base, **kw})


def by_id(run_dir):
    return {r.sample_id: r for r in Run.load(run_dir).records}


def test_every_failure_mode_ends_in_the_right_record(tmp_path, fake, dataset, data, key, fast):
    result = execute(options(tmp_path, fake, dataset), data, fast, show_progress=False)
    records = by_id(result.run_dir)
    assert len(records) == 10
    expect = {
        "0": (1, "ok", 1),
        "1": (0, "ok", 1),
        "2": (1, "ok", 2),
        "3": (0, "ok", 2),
        "4": (1, "ok", 2),
        "5": (0, "ok", 2),
        "6": (None, "refused", 1),
        "7": (None, "refused", 1),
        "8": (None, "error", 3),
        "9": (0, "ok", 1),
    }
    assert {k: (r.pred, r.status, r.attempts) for k, r in records.items()} == expect
    assert "HTTP 500" in records["8"].raw and "TransientError" in records["8"].raw
    assert result.requests_sent == sum(expect[k][2] for k in expect) == len(fake.requests)
    assert records["0"].tokens_in == 100 and records["0"].cost_usd == pytest.approx((100 * 0.15 + 3 * 0.60) / 1e6)
    assert json.loads(records["0"].raw)["choices"][0]["message"]["content"] == "toxique"
    # what the server received: the release's prompt around the text, temperature 0, the key in the header
    first = next(r for r in fake.requests if "tu es un TOX idiot" in r["text"])
    assert first["body"]["temperature"] == 0 and first["body"]["messages"][0]["role"] == "system"
    assert first["body"]["messages"][1]["content"].endswith(" « tu es un TOX idiot »\nCe message est-il toxique ?\n")
    assert first["headers"]["authorization"] == f"Bearer {CANARY}"
    assert result.statuses == {"ok": 7, "refused": 2, "error": 1}
    assert Run.load(result.run_dir).manifest.status == "complete"


def test_rerun_resumes_and_the_cache_answers_without_requests(tmp_path, fake, dataset, data, key, fast):
    first = execute(options(tmp_path, fake, dataset), data, fast, show_progress=False)
    sent = len(fake.requests)
    again = execute(
        options(tmp_path, fake, dataset, retry_errors=False),
        data,
        ExecutionSettings(concurrency=1, timeout_s=5),
        show_progress=False,
    )
    assert again.run_dir == first.run_dir  # execution settings are not part of the run's identity
    assert again.requests_sent == 0 and len(fake.requests) == sent
    fresh = execute(options(tmp_path, fake, dataset, runs_dir=tmp_path / "other"), data, fast, show_progress=False)
    assert fresh.cache_hits == 9 and fresh.requests_sent == 3  # only the [down] sample is asked again
    cached = by_id(fresh.run_dir)
    assert cached["0"].cached and cached["0"].attempts == 0 and cached["0"].pred == 1
    assert {k: r.pred for k, r in cached.items()} == {k: r.pred for k, r in by_id(first.run_dir).items()}
    nocache = execute(
        options(tmp_path, fake, dataset, runs_dir=tmp_path / "third", use_cache=False), data, fast, show_progress=False
    )
    assert nocache.cache_hits == 0 and nocache.requests_sent >= 10


def test_a_rerun_asks_again_for_error_samples_only(tmp_path, fake, dataset, data, key, fast, cli, data_root):
    first = execute(options(tmp_path, fake, dataset), data, fast, show_progress=False)
    assert by_id(first.run_dir)["8"].status == "error" and Run.load(first.run_dir).manifest.status == "complete"
    kept = execute(options(tmp_path, fake, dataset, runs_dir=tmp_path / "kept"), data, fast, show_progress=False)
    sent = len(fake.requests)
    code, out, _err = cli(
        "run",
        "--model",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--lang",
        "fr",
        "--out",
        tmp_path / "kept",
        "--no-retry-errors",
        "--json",
        "--data-dir",
        data_root,
    )
    assert (
        code == 0 and json.loads(out)["requests_sent"] == 0 and len(fake.requests) == sent
    )  # --no-retry-errors: errors stay errors
    fake.healed = True  # the outage is over
    again = execute(options(tmp_path, fake, dataset), data, fast, show_progress=False)
    assert again.run_dir == first.run_dir and again.retried_errors == 1 and again.requests_sent == 1
    assert ["TOX [down] encore" in r["text"] for r in fake.requests[sent:]] == [
        True
    ]  # refusals and answers are not asked again
    records = by_id(again.run_dir)
    assert (records["8"].status, records["8"].pred, records["8"].attempts) == ("ok", 1, 1) and records[
        "6"
    ].status == "refused"
    assert len((again.run_dir / "predictions.jsonl").read_text().splitlines()) == 10  # one line per sample again
    manifest = Run.load(again.run_dir).manifest
    assert (
        manifest.retried_errors == 1
        and manifest.counts["error"] == 0
        and manifest.counts["ok"] == 8
        and manifest.status == "complete"
    )
    assert by_id(kept.run_dir)["8"].status == "error"


def test_canary_key_is_in_no_record_cache_or_error(tmp_path, fake, dataset, data, key, cli, data_root, fast):
    execute(options(tmp_path, fake, dataset), data, fast, show_progress=False)
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs2",
        "--timeout",
        "0.7",
        "--max-retries",
        "0",
        "--data-dir",
        data_root,
        "--json",
        "--no-cache",
    )
    assert code == 0, err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path
    assert CANARY not in out and CANARY not in err
    summary = json.loads(out)
    assert set(summary) == {"run_dir", "n", "status", "metrics", "cost_usd", "requests_sent", "cache_hits"}
    assert summary["n"] == 10 and summary["status"]["error"] >= 1


def test_missing_key_is_one_line_before_any_request(tmp_path, fake, dataset, cli, data_root, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    code, _, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "r",
        "--data-dir",
        data_root,
    )
    assert code == 2 and err == "error: adapter 'openai' needs an API key: set OPENAI_API_KEY\n"
    assert fake.requests == [] and not (tmp_path / "r").exists()


def test_rate_limits_lower_concurrency(tmp_path, fake, data, key):
    path = tmp_path / "limited.csv"
    path.write_text("id,text,label\n" + "".join(f"{i},TOX [429] n{i},1\n" for i in range(16)), encoding="utf-8")
    from toxbench.run import engine

    seen = []
    original = engine.AdaptiveLimit.rate_limited

    def spy(self, retry_after=None):
        original(self, retry_after)
        seen.append(self.limit)

    engine.AdaptiveLimit.rate_limited = spy
    try:
        result = execute(
            options(tmp_path, fake, path),
            data,
            ExecutionSettings(concurrency=8, backoff_initial_s=0.01),
            show_progress=False,
        )
    finally:
        engine.AdaptiveLimit.rate_limited = original
    assert result.statuses == {"ok": 16} and result.requests_sent == 32
    assert min(seen) == 1 and seen[0] == 4  # halved at each 429


def test_openai_moderation(tmp_path, fake, dataset, data, key, fast):
    result = execute(
        options(tmp_path, fake, dataset, model="openai-moderation:omni-moderation-latest"),
        data,
        fast,
        show_progress=False,
    )
    records = by_id(result.run_dir)
    assert records["0"].pred == 1 and records["0"].score == pytest.approx(0.91)
    assert records["1"].pred == 0 and records["1"].score == pytest.approx(0.05)
    assert records["8"].status == "error"
    spec = Run.load(result.run_dir).spec
    assert spec.prompt is None and spec.shots is None and spec.adapter == "openai-moderation"
    assert all(r["path"] == "/v1/moderations" for r in fake.requests)


def test_a_cot_model_behind_a_completions_endpoint(tmp_path, fake, dataset, data, key, cli, data_root):
    """`prompt_template` sends the bare training prompt to /v1/completions (vLLM serving a LoRA
    adapter) and reads the answer with the `cot` parser; the template is part of the run."""
    template = "Message:\n{text}\n\nAnalyse:\n"
    code, out, err = cli(
        "run",
        "--model",
        "openai:my-sft",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--lang",
        "fr",
        "--model-arg",
        'prompt_template="Message:\\n{text}\\n\\nAnalyse:\\n"',
        "--max-retries",
        "2",
        "--out",
        tmp_path / "runs",
        "--json",
        "--data-dir",
        data_root,
        "--no-cache",
    )
    assert code == 0, err
    sent = [r for r in fake.requests if r["path"].endswith("/v1/completions")]
    assert sent and all("messages" not in r["body"] for r in sent)
    first = next(r for r in sent if "tu es un TOX idiot" in r["text"])
    assert first["body"]["prompt"] == template.format(text="tu es un TOX idiot") and first["body"]["model"] == "my-sft"
    run_dir = json.loads(out)["run_dir"]
    records = by_id(run_dir)
    assert records["0"].pred == 1 and records["1"].pred == 0 and records["0"].raw.startswith('{"id": "cmpl-1"')
    assert Run.load(run_dir).manifest.spec.adapter_params["prompt_template"] == template
    for bad in ("no placeholder", "{user}: {text}", "{text} }"):
        code, out, err = cli(
            "run",
            "--model",
            "openai:my-sft",
            "-d",
            dataset,
            "--model-arg",
            f"base_url={fake.url}/v1",
            "--model-arg",
            f"prompt_template={bad}",
            "--data-dir",
            data_root,
        )
        assert code == 2 and "prompt_template must hold {text}" in err and "Traceback" not in err


def test_openai_score_mode_reads_p_toxic_from_the_first_tokens_logprobs(tmp_path, fake, data, key, fast):
    """mode=score asks for logprobs and top_logprobs through the SDK and records P(toxic) =
    p(tox) / (p(tox) + p(non)) from the first token's top list; a list that begins neither answer
    word gives a label and no score."""
    from toxbench.analysis.metrics import run_metrics
    from toxbench.records import read_records

    path = tmp_path / "scored.csv"
    path.write_text(
        "id,text,label\n1,tu es un TOX idiot,1\n2,merci pour tout,0\n3,TOX [nolp] dégage,1\n4,à demain,0\n",
        encoding="utf-8",
    )
    opts = RunOptions(
        model="openai:gpt-4o-mini",
        dataset=str(path),
        model_args={"base_url": fake.url + "/v1", "mode": "score"},
        runs_dir=tmp_path / "runs",
        use_cache=False,
    )
    result = execute(opts, data, fast, show_progress=False)
    records = {r.sample_id: r for r in read_records(result.run_dir / "predictions.jsonl")}
    assert records["1"].score == pytest.approx(0.8 / 0.95) and records["2"].score == pytest.approx(0.15 / 0.95)
    assert records["3"].score is None and records["3"].pred == 1  # no score, still a label
    assert all(r["body"]["logprobs"] is True and r["body"]["top_logprobs"] == 20 for r in fake.requests)
    assert run_metrics(list(records.values())).roc_auc == 1.0  # over the scored samples


def test_openai_score_mode_is_refused_where_there_are_no_first_token_logprobs(key):
    from toxbench.adapters.registry import create
    from toxbench.errors import ToxbenchError

    with pytest.raises(ToxbenchError, match="reasoning model, which returns no log-probabilities"):
        create("openai:o4-mini", {"mode": "score"}, None)
    with pytest.raises(ToxbenchError, match="use label .* or score"):
        create("openai:gpt-4o-mini", {"mode": "scores"}, None)
