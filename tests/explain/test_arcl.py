"""ARCL: rationale pairs written through the engine from a chat model on loopback (the OpenAI SDK
against tests/fakes/providers.py), the InfoNCE term by hand, and a toxitrace training run."""

from __future__ import annotations

import json
import math

import pytest
import torch

TEXTS = [
    ("TOX you idiot", 1, [[4, 13]]),
    ("thanks for the help", 0, []),
    ("TOX shut up loser", 1, [[12, 17]]),
    ("see you tomorrow", 0, []),
]


@pytest.fixture
def posts(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "text": t, "label": y, "spans": s}) + "\n" for i, (t, y, s) in enumerate(TEXTS)
        )
    )
    return path


def test_pairs_through_the_engine_resume_and_cache(tmp_path, fake, posts, data, cli, data_root, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-arcl-000000")
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    config = tmp_path / "pairs.toml"
    config.write_text(
        f'model = "openai:gpt-4o-mini"\nmodel_args = {{ base_url = "{fake.url}/v1" }}\ndataset = "{posts}"\n'
        f'output = "{tmp_path / "pairs.jsonl"}"\nruns_dir = "{tmp_path / "runs"}"\n'
    )
    code, out, err = cli("finetune", "arcl-pairs", "--config", config, "--data-dir", data_root)
    assert code == 0, err
    assert "4 rationale pairs for 4 posts (0 left out" in out
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [p["text"] for p in pairs] == [t for t, _, _ in TEXTS]
    # the fake answers "toxique" to texts holding TOX: both stances' prompts hold the post
    assert [p["rationale_toxic"] for p in pairs] == ["toxique", "non-toxique", "toxique", "non-toxique"]
    prompts = [r["body"]["messages"][0]["content"] for r in fake.requests]
    assert (
        len(prompts) == 8
        and sum("is toxic" in p for p in prompts) == 4
        and sum("is not toxic" in p for p in prompts) == 4
    )
    code, _, _ = cli(
        "finetune", "arcl-pairs", "--config", config, "--data-dir", data_root
    )  # recorded: nothing is sent again
    assert code == 0 and len(fake.requests) == 8


def test_infonce_term_by_hand():
    from toxbench.finetune.span_objectives import arcl_term

    cls = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    vectors = {"t0": [1.0, 0.0], "n0": [0.0, 1.0], "t1": [1.0, 0.0], "n1": [0.0, 1.0]}
    term = arcl_term(
        cls,
        [("t0", "n0"), ("t1", "n1"), ()],
        torch.tensor([1, 0, 1]),
        lambda texts: torch.tensor([vectors[t] for t in texts]),
        0.5,
    )
    # row 0 (toxic): positive cos 1, negative 0; row 1 (non-toxic): positive = n1, cos 1, negative 0; row 2 has no pair
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert term.item() == pytest.approx(expected)


@pytest.mark.slow
def test_toxitrace_trains_with_pairs(tmp_path, posts):
    """The whole objective (gcloss + ARCL) runs on a tiny encoder, and its card says so."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from toxbench.finetune.config import EncoderJob
    from toxbench.finetune.encoder_ft import run_encoder
    from toxbench.model_registry import read_card

    words = sorted({w for t, _, _ in TEXTS for w in t.lower().split()} | {"toxique", "non", "-"})
    base = tmp_path / "base"
    base.mkdir()
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]))
    torch.manual_seed(0)
    BertForSequenceClassification(
        BertConfig(
            vocab_size=5 + len(words),
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            num_labels=2,
        )
    ).save_pretrained(base)
    BertTokenizerFast(vocab=str(base / "vocab.txt")).save_pretrained(base)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(
            json.dumps({"text": t, "rationale_toxic": "toxique", "rationale_non_toxic": "non - toxique"}) + "\n"
            for t, _, _ in TEXTS
        )
    )
    job = EncoderJob.model_validate(
        {
            "model": {"base": str(base), "device": "cpu"},
            "output_dir": str(tmp_path / "out"),
            "checkpoint": "last",
            "spans": {
                "dataset": str(posts),
                "negatives": "none",
                "validation_fraction": 0.5,
                "seed": 0,
                "arcl_pairs": str(pairs),
            },
            "objective": {"kind": "toxitrace", "lambda_sem": 1.0},
            "train": {"epochs": 2, "batch_size": 2, "max_length": 16, "logging_steps": 1, "learning_rate": 1e-3},
        }
    )
    out = run_encoder(job, data=None)
    card = read_card(out)
    assert card["training"]["objective"] == "toxitrace" and card["training"]["data"]["train"]["with_rationales"] == 2
    assert all(math.isfinite(e["loss"]) for e in json.loads((out / "training_log.json").read_text()) if "loss" in e)


def test_toxitrace_without_pairs_is_refused():
    from pydantic import ValidationError

    from toxbench.finetune.config import EncoderJob

    with pytest.raises(ValidationError, match="needs arcl_pairs in .spans."):
        EncoderJob.model_validate(
            {
                "model": {"base": "x"},
                "output_dir": "o",
                "spans": {"dataset": "toxicspans-en:train"},
                "objective": {"kind": "toxitrace"},
            }
        )
