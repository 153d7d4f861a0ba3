"""CuSA weak spans: MiniLM saliency candidates, refined by a chat model on loopback (the OpenAI
SDK against tests/fakes/providers.py, which answers "toxique" to any text holding TOX)."""

from __future__ import annotations

import json


def test_weak_spans_refined_by_the_chat_model(tmp_path, fake, cli, data_root, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-cusa-000000")
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    posts = tmp_path / "posts.jsonl"
    rows = [("toxique TOX idiot", 1), ("TOX va-t'en vite", 1), ("merci beaucoup", 0)]
    posts.write_text(
        "".join(json.dumps({"id": f"p{i}", "text": t, "label": y}) + "\n" for i, (t, y) in enumerate(rows))
    )
    config = tmp_path / "cusa.toml"
    config.write_text(
        f'encoder = "encoder:minilm-l6"\ndataset = "{posts}"\noutput = "{tmp_path / "weak.jsonl"}"\nruns_dir = "{tmp_path / "runs"}"\n'
        f'extraction = {{ rule = "topk", k = 1 }}\n[llm]\nmodel = "openai:gpt-4o-mini"\nmodel_args = {{ base_url = "{fake.url}/v1" }}\n'
    )
    code, out, err = cli("finetune", "cusa", "--config", config, "--data-dir", data_root)
    assert code == 0, err
    assert (
        "weak spans for 2 toxic posts (1 refined by the chat model, 0 it found nothing toxic in, 1 from saliency alone; 1 answered"
        in out
    )
    weak = [json.loads(line) for line in (tmp_path / "weak.jsonl").read_text().splitlines()]
    assert [w["id"] for w in weak] == ["p0", "p1"]
    assert weak[0]["spans"] == [[0, 7]] and weak[0]["source"] == "llm"  # "toxique" is in the post
    assert (
        weak[1]["source"] == "saliency" and len(weak[1]["spans"]) == 1
    )  # "toxique" is not: the saliency candidate stays
    s, e = weak[1]["spans"][0]
    assert 0 <= s < e <= len(rows[1][0])
    prompts = [r["body"]["messages"][0]["content"] for r in fake.requests]
    assert len(prompts) == 2 and all("Candidates:\n- " in p for p in prompts)

    # the output is a span dataset: toxbench reads it back
    code, out, _ = cli("data", "show", tmp_path / "weak.jsonl", "--data-dir", data_root)
    assert code == 0 and "⟦toxique⟧ TOX idiot" in out

    code, out, err = cli("finetune", "cusa", "--config", config, "--data-dir", data_root, "--no-llm")
    assert (
        code == 0
        and "(0 refined by the chat model, 0 it found nothing toxic in, 2 from saliency alone" in out
        and len(fake.requests) == 2
    )
