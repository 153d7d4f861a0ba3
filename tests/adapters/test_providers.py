"""Mistral, Anthropic, Gemini and Perspective adapters through their official SDKs (httpx for
Perspective) against a real server on 127.0.0.1 speaking each wire format."""

import json

import pytest

from toxbench.records import Run
from toxbench.run.runner import RunOptions, execute

CANARY = "canary-key-0123456789abcdefghijklmnop"
# name: (model, key variable, base-url argument, header carrying the key, request path piece)
PROVIDERS = {
    "mistral": ("mistral:mistral-large-latest", "MISTRAL_API_KEY", "base_url", "authorization", "/v1/chat/completions"),
    "anthropic": ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY", "base_url", "authorization", "/v1/messages"),
    "gemini": ("gemini:gemini-2.0-flash", "GEMINI_API_KEY", "base_url", "x-goog-api-key", ":generateContent"),
    "mistral-moderation": (
        "mistral-moderation:mistral-moderation-latest",
        "MISTRAL_API_KEY",
        "base_url",
        "authorization",
        "/v1/moderations",
    ),
    "perspective": ("perspective", "PERSPECTIVE_API_KEY", "base_url", "x-goog-api-key", "/v1alpha1/comments:analyze"),
}
CHAT = {
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
MODERATION = {**CHAT, "6": (1, "ok", 1), "7": (0, "ok", 1)}


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_provider_end_to_end(provider, tmp_path, fake, dataset, data, monkeypatch, fast):
    model, env, url_arg, header, path_piece = PROVIDERS[provider]
    monkeypatch.setenv(env, CANARY)
    opts = RunOptions(
        model=model,
        dataset=str(dataset),
        model_args={url_arg: fake.url},
        runs_dir=tmp_path / "runs",
        cache_path=tmp_path / "cache.sqlite",
        lang="fr",
    )
    result = execute(opts, data, fast, show_progress=False)
    records = {r.sample_id: r for r in Run.load(result.run_dir).records}
    expected = CHAT if provider in ("mistral", "anthropic", "gemini") else MODERATION
    assert {k: (r.pred, r.status, r.attempts) for k, r in records.items()} == expected
    assert result.requests_sent == len(fake.requests) == sum(v[2] for v in expected.values())
    assert all(path_piece in r["path"] for r in fake.requests)
    assert all(CANARY in r["headers"][header] for r in fake.requests)
    assert "HTTP 500" in records["8"].raw
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert CANARY.encode() not in file.read_bytes(), file
    if expected is CHAT:
        sent = next(r["body"] for r in fake.requests if "tu es un TOX idiot" in r["text"])
        assert " « tu es un TOX idiot »\nCe message est-il toxique ?\n" in json.dumps(sent, ensure_ascii=False).replace(
            "\\n", "\n"
        )
        assert records["0"].tokens_in and records["0"].tokens_out
    else:
        assert records["0"].score > 0.5 > records["1"].score


def test_mistral_moderation_categories_are_an_argument(tmp_path, fake, dataset, data, monkeypatch, fast):
    monkeypatch.setenv("MISTRAL_API_KEY", CANARY)
    opts = RunOptions(
        model="mistral-moderation:mistral-moderation-latest",
        dataset=str(dataset),
        model_args={"base_url": fake.url, "categories": "health"},
        runs_dir=tmp_path / "runs",
        cache_path=tmp_path / "c.sqlite",
    )
    records = {r.sample_id: r for r in Run.load(execute(opts, data, fast, show_progress=False).run_dir).records}
    assert records["1"].pred == 1 and records["1"].score == pytest.approx(
        0.97
    )  # health is flagged in every fake answer


def test_perspective_threshold_and_language(tmp_path, fake, dataset, data, monkeypatch, fast):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", CANARY)
    opts = RunOptions(
        model="perspective",
        dataset=str(dataset),
        model_args={"base_url": fake.url, "threshold": 0.9, "attributes": "TOXICITY,INSULT"},
        runs_dir=tmp_path / "runs",
        cache_path=tmp_path / "c.sqlite",
    )
    records = {r.sample_id: r for r in Run.load(execute(opts, data, fast, show_progress=False).run_dir).records}
    assert records["0"].pred == 0 and records["0"].score == pytest.approx(0.82)  # 0.82 < 0.9
    body = fake.requests[0]["body"]
    assert set(body["requestedAttributes"]) == {"TOXICITY", "INSULT"} and body["languages"] == ["und"]


@pytest.mark.parametrize("provider", ["mistral", "gemini"])
def test_score_mode_reads_p_toxic_from_the_first_tokens_logprobs(provider, tmp_path, fake, data, monkeypatch, fast):
    """mode=score through Mistral's and Gemini's SDKs: the request asks for the top 20
    log-probabilities (Mistral's `logprobs`/`top_logprobs`, Gemini's `responseLogprobs`/`logprobs`),
    and P(toxic) = p(tox) / (p(tox) + p(non)) is read from the first step's list in each wire
    format; a list that begins neither answer word gives a label and no score."""
    from toxbench.analysis.metrics import run_metrics

    model, env, url_arg, _, _ = PROVIDERS[provider]
    monkeypatch.setenv(env, CANARY)
    path = tmp_path / "scored.csv"
    path.write_text(
        "id,text,label\n1,tu es un TOX idiot,1\n2,merci pour tout,0\n3,TOX [nolp] dégage,1\n4,à demain,0\n",
        encoding="utf-8",
    )
    opts = RunOptions(
        model=model,
        dataset=str(path),
        model_args={url_arg: fake.url, "mode": "score"},
        runs_dir=tmp_path / "runs",
        use_cache=False,
    )
    result = execute(opts, data, fast, show_progress=False)
    run = Run.load(result.run_dir)
    records = {r.sample_id: r for r in run.records}
    assert records["1"].score == pytest.approx(0.8 / 0.95) and records["2"].score == pytest.approx(0.15 / 0.95)
    assert records["3"].score is None and records["3"].pred == 1  # no score, still a label
    assert run_metrics(list(records.values())).roc_auc == 1.0
    assert run.spec.adapter_params["mode"] == "score" and run.spec.adapter_params["top_logprobs"] == 20
    for sent in (r["body"] for r in fake.requests):
        if provider == "mistral":
            assert sent["logprobs"] is True and sent["top_logprobs"] == 20
        else:
            assert sent["generationConfig"]["responseLogprobs"] is True and sent["generationConfig"]["logprobs"] == 20


@pytest.mark.parametrize("model", ["mistral:mistral-large-latest", "gemini:gemini-2.0-flash", "openai:gpt-4o-mini"])
def test_score_mode_arguments_are_checked(model, monkeypatch):
    from toxbench.adapters.registry import create
    from toxbench.errors import ToxbenchError

    for env in ("MISTRAL_API_KEY", "GEMINI_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.setenv(env, CANARY)
    with pytest.raises(ToxbenchError, match="use label .* or score"):
        create(model, {"mode": "scores"}, None)
    with pytest.raises(ToxbenchError, match="top_logprobs=0: give a whole number from 1 to 20"):
        create(model, {"mode": "score", "top_logprobs": 0}, None)
    assert create(model, {"mode": "score", "top_logprobs": 5}, None).identity()["top_logprobs"] == 5
    label_only = create(model, {}, None)
    assert (
        "mode" not in label_only.identity() and not label_only.capabilities.scores
    )  # run ids of label runs are unchanged
