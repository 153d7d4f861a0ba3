"""Training parity with the release: the SOAP optimizer (pytorch-optimizer) and weight decay, run
for a few real steps; generation's repetition penalty recorded in the identity; the trackers
TRL and transformers support (`report_to`), off by default, tested with TensorBoard's local files."""

import importlib.util
import json
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("pytorch_optimizer")

from toxbench.errors import ToxbenchError  # noqa: E402
from toxbench.finetune.config import EncoderJob, TrainSettings  # noqa: E402
from toxbench.finetune.training import trainer_arguments, use_optimizer  # noqa: E402


def test_soap_is_given_to_the_trainer_and_other_names_go_through_the_arguments(tmp_path):
    from pytorch_optimizer import SOAP

    trainer = SimpleNamespace(optimizer_cls_and_kwargs=None)
    use_optimizer(trainer, TrainSettings(optim="adamw_torch"))
    assert trainer.optimizer_cls_and_kwargs is None
    use_optimizer(trainer, TrainSettings(optim="soap", learning_rate=3e-4))
    assert trainer.optimizer_cls_and_kwargs == (SOAP, {"lr": 3e-4})
    args = trainer_arguments(TrainSettings(optim="soap", weight_decay=0.01), tmp_path, "cpu", has_eval=False)
    assert (
        args["optim"] == "adamw_torch" and args["weight_decay"] == 0.01
    )  # the trainer's default slot; SOAP replaces it
    assert trainer_arguments(TrainSettings(optim="adafactor"), tmp_path, "cpu", has_eval=False)["optim"] == "adafactor"


def test_soap_needs_pytorch_optimizer(monkeypatch):
    import importlib

    real = importlib.import_module

    def missing(name, *args):
        if name == "pytorch_optimizer":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(
        ToxbenchError, match='optim = "soap" needs pytorch-optimizer: pip install "toxbench\\[train\\]"'
    ):
        use_optimizer(SimpleNamespace(), TrainSettings(optim="soap"))


def _tiny_encoder(path):
    """A randomly initialised two-layer BERT with the real MiniLM tokenizer (speed, not accuracy)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from toxbench.adapters._local import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve("minilm-l6")[0])
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_a_few_soap_steps_with_weight_decay(tmp_path, data):
    from toxbench.finetune.encoder_ft import run_encoder
    from toxbench.model_registry import read_card

    job = EncoderJob.model_validate(
        {
            "model": {"base": _tiny_encoder(tmp_path / "base"), "device": "cpu"},
            "output_dir": str(tmp_path / "out"),
            "data": {"max_examples": 24, "validation_fraction": 0.05},
            "train": {
                "optim": "soap",
                "weight_decay": 0.01,
                "learning_rate": 1e-3,
                "epochs": 1,
                "batch_size": 8,
                "max_length": 32,
                "logging_steps": 1,
            },
        }
    )
    out = run_encoder(job, data)
    checkpoint = sorted((out / "checkpoints").glob("checkpoint-*"))[-1]
    groups = torch.load(checkpoint / "optimizer.pt", weights_only=False)["param_groups"]
    # SOAP's own settings are in its parameter groups; AdamW has none of them
    assert all("precondition_frequency" in g and "shampoo_beta" in g for g in groups)
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 0.01]  # weights decay, biases and norms do not
    card = read_card(out)
    losses = [e["loss"] for e in __import__("json").loads((out / "training_log.json").read_text()) if "loss" in e]
    assert card["training"]["job"]["train"]["optim"] == "soap" and card["training"]["steps"] >= 3
    assert losses and all(loss == loss and loss < 10 for loss in losses)  # finite: SOAP trained the model


def _encoder_job(tmp_path, **train):
    return EncoderJob.model_validate(
        {
            "model": {"base": _tiny_encoder(tmp_path / "base"), "device": "cpu"},
            "output_dir": str(tmp_path / "out"),
            "data": {"max_examples": 24, "validation_fraction": 0.05},
            "train": {
                "learning_rate": 1e-3,
                "epochs": 1,
                "batch_size": 8,
                "max_length": 32,
                "logging_steps": 1,
                **train,
            },
        }
    )


def test_report_to_tensorboard_logs_the_losses_the_training_log_holds(tmp_path, data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from toxbench.finetune.encoder_ft import run_encoder

    out = run_encoder(_encoder_job(tmp_path, report_to=["tensorboard"]), data)
    (logdir,) = (out / "checkpoints" / "runs").iterdir()  # one run; the writer may open more than one file
    assert list(logdir.glob("events.out.tfevents.*"))
    board = EventAccumulator(str(logdir))
    board.Reload()
    logged = [e.value for e in board.Scalars("train/loss")]
    losses = [e["loss"] for e in json.loads((out / "training_log.json").read_text()) if "loss" in e]
    assert logged == pytest.approx(losses, rel=1e-6) and len(losses) >= 3


def test_no_tracker_by_default_and_a_named_one_is_checked_before_training(tmp_path, data):
    from toxbench.finetune.encoder_ft import run_encoder

    assert trainer_arguments(_encoder_job(tmp_path).train, tmp_path, "cpu", True)["report_to"] == "none"
    with pytest.raises(ToxbenchError, match=r"unknown tracker 'tensorbaord'; transformers knows .*tensorboard"):
        run_encoder(_encoder_job(tmp_path, report_to=["tensorbaord"]), data)
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(ToxbenchError, match=r"wandb is not installed here \(pip install wandb\)"):
            run_encoder(_encoder_job(tmp_path, report_to=["wandb"]), data)
    assert not (tmp_path / "out" / "checkpoints").exists()
