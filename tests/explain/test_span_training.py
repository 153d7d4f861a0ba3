"""Span-supervised encoder training on a synthetic task: "zorg" is the toxic evidence (the gold
span) and "blah" a confound that appears in every toxic training post too, so plain CE can rest
on either. GCLoss must move the saliency onto the trigger; with its term switched off (λ = 0) it
must not."""

from __future__ import annotations

import json
import random

import pytest
import torch

from toxbench.finetune.config import EncoderJob

FILLERS = [f"w{i}" for i in range(20)]


def _post(rng: random.Random, toxic: bool) -> tuple[str, list]:
    words = rng.sample(FILLERS, 6) + (["zorg", "blah"] if toxic else rng.sample(FILLERS, 2))
    rng.shuffle(words)
    text = " ".join(words)
    spans = [[text.index("zorg"), text.index("zorg") + 4]] if toxic else []
    return text, spans


def _tiny_word_encoder(path) -> str:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path.mkdir()
    vocab = path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "zorg", "blah", *FILLERS]))
    config = BertConfig(
        vocab_size=27,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    BertTokenizerFast(vocab=str(vocab)).save_pretrained(
        path
    )  # transformers 5 reads `vocab=` (vocab_file= is ignored: every word [UNK])
    return str(path)


def _train(tmp_path, name: str, base: str, data_file, objective: dict) -> str:
    from toxbench.finetune.encoder_ft import run_encoder

    job = EncoderJob.model_validate(
        {
            "model": {"base": base, "device": "cpu"},
            "output_dir": str(tmp_path / name),
            "spans": {"dataset": str(data_file), "negatives": "none", "validation_fraction": 0.1, "seed": 0},
            "objective": objective,
            "checkpoint": "last",
            "train": {
                "learning_rate": 3e-3,
                "epochs": 10,
                "batch_size": 16,
                "max_length": 16,
                "logging_steps": 50,
                "seed": 0,
                "warmup_steps": 5,
            },
        }
    )
    return str(run_encoder(job, data=None))


def _trigger_share(model_dir: str, posts: list[str]) -> float:
    """Mean share of the gradient × input magnitude over the words that falls on "zorg"."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from toxbench.explain.saliency import gradient_x_input

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    batch = tokenizer(posts, return_tensors="pt", padding=True)
    saliency, _ = gradient_x_input(
        model, batch["input_ids"], batch["attention_mask"], (1,), token_type_ids=batch["token_type_ids"]
    )
    words = batch["input_ids"] > 4  # not [PAD] [UNK] [CLS] [SEP] [MASK]
    mass = saliency.detach().abs() * words
    on_trigger = (mass * (batch["input_ids"] == tokenizer.convert_tokens_to_ids("zorg"))).sum(dim=1)
    return float((on_trigger / mass.sum(dim=1)).mean())


@pytest.mark.slow
def test_gcloss_moves_saliency_onto_the_trigger(tmp_path):
    rng = random.Random(0)
    rows = []
    for i in range(400):
        text, spans = _post(rng, toxic=i % 2 == 0)
        rows.append({"id": f"p{i}", "text": text, "label": int(i % 2 == 0), "spans": spans})
    data_file = tmp_path / "synthetic.jsonl"
    data_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    base = _tiny_word_encoder(tmp_path / "base")
    held_out = [_post(random.Random(100 + i), toxic=True)[0] for i in range(40)]

    shares = {
        name: _trigger_share(_train(tmp_path, name, base, data_file, objective), held_out)
        for name, objective in (
            ("ce", {"kind": "ce"}),
            ("gcloss", {"kind": "gcloss", "lambda_grad": 1.0, "warmup_epochs": 4}),
            ("gcloss-off", {"kind": "gcloss", "lambda_grad": 0.0, "warmup_epochs": 4}),
        )
    }
    # measured: ce 0.764, gcloss 0.993, gcloss with λ = 0 0.764 (the same training as ce)
    assert shares["gcloss"] > shares["ce"] + 0.15, shares
    assert shares["gcloss-off"] < shares["gcloss"] - 0.15, (
        shares
    )  # the term, not the eager attention or the trainer, does it
