"""What the trainers share: the model loaded for LoRA or QLoRA, the TrainingArguments fields, the
examples (built from the data directory or read from `toxbench finetune data` output), resuming
from the last checkpoint, and the files every trained model directory ends with (tokenizer,
training log, card)."""

from __future__ import annotations

import json
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError
from toxbench.finetune.cot_data import CotExample, build_splits, read_split
from toxbench.model_registry import write_card


def load_examples(job, data) -> tuple[list[CotExample], list[CotExample], dict]:
    if job.data_dir:
        folder = Path(job.data_dir)
        settings = (
            json.loads((folder / "settings.json").read_text("utf-8")) if (folder / "settings.json").is_file() else {}
        )
        return read_split(folder / "train.jsonl"), read_split(folder / "validation.jsonl"), settings.get("stats", {})
    return build_splits(data, job.data)


def load_for_training(model_settings):
    """(tokenizer, model, device, quantized) with gradient-ready settings for LoRA or QLoRA."""
    from toxbench.adapters._local import load_tokenizer_and_model

    tokenizer, model, device = load_tokenizer_and_model(
        model_settings.base, "causal", model_settings.device, model_settings.dtype, model_settings.load_in_4bit
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    quantized = bool(getattr(model, "is_loaded_in_4bit", False))
    if quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, gradient_checkpointing_kwargs={"use_reentrant": False})
        keep_4bit_layers_differentiable(model)
    return tokenizer, model, device, quantized


def keep_4bit_layers_differentiable(model) -> None:
    """bitsandbytes repacks 4-bit weights for its AVX512-BF16 CPU kernel on the first eval-mode,
    no-grad forward (run_sft's validation before training is one), and that kernel has no backward:
    every step after it would lose the gradient through each frozen layer, silently. Training keeps
    the layout."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def trainer_arguments(job_train, output_dir: Path, device: str, has_eval: bool) -> dict:
    """The TrainingArguments fields SFT and DPO share, from a [train] table."""
    return dict(
        output_dir=str(output_dir / "checkpoints"),
        learning_rate=job_train.learning_rate,
        lr_scheduler_type=job_train.lr_scheduler,
        warmup_steps=job_train.warmup_steps,
        num_train_epochs=job_train.epochs,
        max_steps=job_train.max_steps,
        per_device_train_batch_size=job_train.batch_size,
        per_device_eval_batch_size=job_train.batch_size,
        gradient_accumulation_steps=job_train.gradient_accumulation,
        max_length=job_train.max_length,
        seed=job_train.seed,
        data_seed=job_train.seed,
        logging_steps=job_train.logging_steps,
        save_steps=job_train.save_steps,
        save_total_limit=job_train.save_total_limit,
        eval_strategy=("steps" if job_train.eval_steps else "epoch") if has_eval else "no",
        eval_steps=job_train.eval_steps,
        report_to=trackers(job_train.report_to),
        bf16=device == "cuda",
        use_cpu=device == "cpu",
        optim="adamw_torch" if job_train.optim in EXTRA_OPTIMIZERS else job_train.optim,
        weight_decay=job_train.weight_decay,
        deepspeed=job_train.deepspeed,
        **({"gradient_checkpointing": True} if job_train.gradient_checkpointing else {}),
    )


def trackers(names: list[str]) -> list[str] | str:
    """`[train] report_to` checked before any training: each name one transformers knows, and
    installed here (a tracker that fails to import after hours of training loses nothing, but one
    that fails at start is cheaper). Empty: none (transformers' own default would take every
    tracker it finds installed)."""
    if not names:
        return "none"
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    installed = set(get_available_reporting_integrations())
    for name in names:
        if name not in INTEGRATION_TO_CALLBACK:
            raise ToxbenchError(
                f"[train] report_to: unknown tracker {name!r}; transformers knows {', '.join(sorted(INTEGRATION_TO_CALLBACK))}"
            )
        if name not in installed:
            package = {"comet_ml": "comet-ml", "azure_ml": "azureml-core"}.get(name, name)
            raise ToxbenchError(f"[train] report_to: {name} is not installed here (pip install {package})")
    return list(names)


# optimizers transformers does not ship: name -> (module, class), from pytorch-optimizer (the `train` extra)
EXTRA_OPTIMIZERS = {"soap": ("pytorch_optimizer", "SOAP")}


def use_optimizer(trainer, job_train) -> None:
    """Give the trainer an optimizer from EXTRA_OPTIMIZERS when [train] names one; transformers'
    own names go through TrainingArguments.optim. The trainer still groups parameters, so
    `weight_decay` applies to weights and not to biases and norms, as with AdamW."""
    if job_train.optim not in EXTRA_OPTIMIZERS:
        return
    import importlib

    module, name = EXTRA_OPTIMIZERS[job_train.optim]
    try:
        optimizer_cls = getattr(importlib.import_module(module), name)
    except ImportError:
        raise ToxbenchError(
            f'optim = "{job_train.optim}" needs pytorch-optimizer: pip install "toxbench[train]"'
        ) from None
    trainer.optimizer_cls_and_kwargs = (optimizer_cls, {"lr": job_train.learning_rate})


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = output_dir / "checkpoints"
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def save_outputs(output_dir: Path, tokenizer, log_history: list, card: dict) -> Path:
    """Next to the saved weights: the tokenizer, the training log and the model card (written last,
    so a directory with a card is complete)."""
    tokenizer.save_pretrained(str(output_dir))
    write_atomic(Path(output_dir) / "training_log.json", json.dumps(log_history, indent=2))
    return write_card(output_dir, card)
