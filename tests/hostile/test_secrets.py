"""Issue 28, secrets: a key a server echoes, in any status, reaches no file and no message; the
server the SDK's own environment variable chooses is part of the run's identity and cache key."""

import json

import pytest

from toxbench.records import Run

KEY = "sk-echo-canary-0123456789abcdefghijklmnopqrstuvwxyz"


def test_a_key_echoed_by_the_server_reaches_no_record_cache_or_message(tmp_path, fake, cli, data_root, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    texts = tmp_path / "t.csv"
    texts.write_text(
        "id,text,label\n0,TOX [echo] a,1\n1,merci [echo400] b,0\n2,TOX [echo] [echo400] c,1\n", encoding="utf-8"
    )
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        texts,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs",
        "--max-retries",
        "0",
        "--data-dir",
        data_root,
        "--json",
    )
    assert code == 0, err
    assert fake.requests and all(KEY in r["headers"]["authorization"] for r in fake.requests)  # the server did see it
    records = {r.sample_id: r for r in Run.load(json.loads(out)["run_dir"]).records}
    assert records["0"].status == "ok" and "[redacted]" in records["0"].raw  # the 200 answer is kept, the key is not
    assert (
        records["1"].status == "error"
        and "HTTP 400" in records["1"].raw
        and "(you sent Bearer [redacted]" in records["1"].raw
    )
    for piece in (KEY, KEY[:16], KEY[-16:]):  # not whole, and not the half that a cut before redaction would leave
        for path in tmp_path.rglob("*"):
            if path.is_file():
                assert piece.encode() not in path.read_bytes(), path
        assert piece not in out and piece not in err


@pytest.mark.parametrize(
    "model, key_env, url_env, suffix",
    [
        ("openai:gpt-4o-mini", "OPENAI_API_KEY", "OPENAI_BASE_URL", "/v1"),
        ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", ""),
        ("gemini:gemini-2.0-flash", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", ""),
    ],
)
def test_the_server_chosen_by_the_sdks_environment_variable_is_part_of_the_run_and_cache(
    tmp_path, fake, cli, data_root, dataset, monkeypatch, model, key_env, url_env, suffix
):
    from fakes.providers import FakeProvider

    other = FakeProvider()
    try:
        monkeypatch.setenv(key_env, KEY)
        monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
        runs = []
        for server in (fake, other):
            monkeypatch.setenv(url_env, server.url + suffix)
            code, out, err = cli(
                "run",
                "-m",
                model,
                "-d",
                dataset,
                "--out",
                tmp_path / "runs",
                "--timeout",
                "1.2",
                "--max-retries",
                "1",
                "--data-dir",
                data_root,
                "--json",
            )
            assert code == 0, err
            runs.append(json.loads(out))
        assert fake.requests and runs[0]["run_dir"] != runs[1]["run_dir"]  # another server, another run
        assert runs[1]["cache_hits"] == 0 and len(other.requests) >= 10  # B was asked, not answered from A's cache
        assert Run.load(runs[1]["run_dir"]).spec.adapter_params["base_url"] == other.url + suffix
    finally:
        other.close()
