"""The Chinese training path: a tiny randomly initialised BERT with a character vocabulary trains
with GCLoss on STATE ToxiCN's gold spans (its posts and arguments as the data directory holds
them), and the trained model is explained. Checks the code path, not accuracy."""

from __future__ import annotations

import json

import pytest
import torch


@pytest.mark.slow
def test_gcloss_on_state_toxicn_with_a_character_encoder(tmp_path, data, cli, data_root):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from toxbench.data.datasets import load_dataset
    from toxbench.finetune.config import EncoderJob
    from toxbench.finetune.encoder_ft import run_encoder
    from toxbench.model_registry import read_card

    state = load_dataset("state-toxicn:train", data)
    chars = sorted({c for s in state.samples for c in s.text if not c.isspace()})
    base = tmp_path / "zh"
    base.mkdir()
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]), encoding="utf-8")
    torch.manual_seed(0)
    BertForSequenceClassification(
        BertConfig(
            vocab_size=5 + len(chars),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=2,
        )
    ).save_pretrained(base)
    BertTokenizerFast(vocab=str(base / "vocab.txt")).save_pretrained(base)
    job = EncoderJob.model_validate(
        {
            "model": {"base": str(base), "device": "cpu"},
            "output_dir": str(tmp_path / "out"),
            "checkpoint": "last",
            "spans": {"dataset": "state-toxicn:train", "negatives": "none", "max_posts": 64, "seed": 0},
            "objective": {"kind": "gcloss"},
            "train": {"epochs": 1, "batch_size": 16, "max_length": 64, "logging_steps": 1, "learning_rate": 1e-3},
        }
    )
    out = run_encoder(job, data)
    card = read_card(out)
    stats = card["training"]["data"]
    assert card["training"]["objective"] == "gcloss" and stats["posts"] == 64 and stats["train"]["with_spans"] > 0
    losses = [e["loss"] for e in json.loads((out / "training_log.json").read_text()) if "loss" in e]
    assert losses and all(
        loss == loss and loss < 100 for loss in losses
    )  # finite: the second backward ran on Chinese spans

    code, _, err = cli(
        "explain",
        "--model",
        f"encoder:{out}",
        "--dataset",
        "state-toxicn:test",
        "--limit",
        "6",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        "--no-faithfulness",
    )
    assert code == 0, err
