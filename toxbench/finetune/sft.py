"""Chain-of-thought SFT with the Dynamic Weighted Loss: TRL's SFTTrainer, LoRA through peft.

Examples are tokenized here (prompt and completion separately, so generation later sees the same
prompt tokens) into `input_ids`, `labels` (prompt tokens -100: the loss covers the completion only)
and `token_class` (toxbench.finetune.dwl). The trainer subclass computes the DWL from the per-token
log-probabilities of TRL's fused LM head, the same quantity TRL's own loss sums, so a plain
schedule gives exactly TRL's loss. QLoRA (4-bit NF4, double quantisation) is used when CUDA and
bitsandbytes are present; `train.deepspeed` passes a DeepSpeed config to accelerate for several GPUs.
Checkpoints go to OUTPUT/checkpoints and a rerun resumes from the last one; the final adapter,
tokenizer, training log and `toxbench-model.json` go to OUTPUT.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError
from toxbench.finetune.config import SFTJob
from toxbench.finetune.cot_data import PROMPT_TEMPLATE, CotExample
from toxbench.finetune.dwl import DWLSchedule, dwl_loss, token_classes
from toxbench.finetune.training import (
    last_checkpoint,
    load_examples,
    load_for_training,
    save_outputs,
    trainer_arguments,
    use_optimizer,
)
from toxbench.model_registry import read_card

log = logging.getLogger(__name__)


def tokenize_cot(tokenizer, example: CotExample, max_length: int | None) -> dict | None:
    """input_ids, labels and token_class of one example; None when it exceeds max_length (cutting it
    would drop the conclusion, the very tokens the DWL is about)."""
    prompt_ids = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
    completion = tokenizer(example.completion, add_special_tokens=False, return_offsets_mapping=True)
    classes = [*token_classes(completion["offset_mapping"], example.completion), 0]  # + end of sequence: the answer
    completion_ids = [*list(completion["input_ids"]), tokenizer.eos_token_id]
    input_ids = list(prompt_ids) + completion_ids
    if max_length and len(input_ids) > max_length:
        return None
    return {
        "input_ids": input_ids,
        "labels": [-100] * len(prompt_ids) + completion_ids,
        "token_class": [0] * len(prompt_ids) + classes,
    }


def schedule_for(job: SFTJob) -> DWLSchedule:
    n_blocks = len(job.data.blocks)
    if job.dwl.schedule is not None:
        schedule = DWLSchedule(points=job.dwl.schedule)
        if schedule.n_classes != n_blocks + 1:
            raise ToxbenchError(
                f"the DWL schedule has {schedule.n_classes} alphas per entry; {n_blocks} blocks need {n_blocks + 1} (answer first)"
            )
        return schedule
    if job.dwl.factor is not None:
        return DWLSchedule.two_class(n_blocks, job.dwl.factor, int(job.train.epochs + 0.999))
    return DWLSchedule.plain(n_blocks)


def _trainer_classes():
    """DWLCollator and DWLSFTTrainer, built on first use so importing toxbench never imports TRL."""
    import torch
    from trl import SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    class DWLCollator(DataCollatorForLanguageModeling):
        def torch_call(self, examples):
            classes = [torch.tensor(e["token_class"]) for e in examples]
            out = super().torch_call(
                [{k: v for k, v in e.items() if k not in ("token_class", "example")} for e in examples]
            )
            width = out["input_ids"].shape[1]
            out["token_class"] = torch.stack([torch.nn.functional.pad(c, (0, width - len(c))) for c in classes])
            if all("example" in e for e in examples):  # which training examples the batch holds (see rank_report)
                out["example"] = torch.tensor([e["example"] for e in examples])
            return out

    class DWLSFTTrainer(SFTTrainer):
        def __init__(self, *args, schedule: DWLSchedule, **kwargs) -> None:
            self.schedule = schedule
            self.trained_examples: list[int] = []  # indices of the examples this process trained on, in order
            super().__init__(*args, **kwargs)

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            self._signature_columns = [
                *self._signature_columns,
                *(c for c in ("token_class", "example") if c not in self._signature_columns),
            ]

        def current_alphas(self) -> list[float]:
            return self.schedule.alphas_at(float(self.state.epoch or 0.0))

        def loss_alphas(self, model) -> list[float]:
            """The schedule's weights in training; plain weights in evaluation, so validation losses
            stay comparable across epochs (they are the standard SFT loss)."""
            return self.current_alphas() if model.training else [1.0] * self.schedule.n_classes

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            token_class = inputs.pop("token_class")
            examples = inputs.pop("example", None)
            if examples is not None and model.training:
                self.trained_examples.extend(examples.tolist())
            inputs["use_cache"] = False
            outputs = model(**inputs, fused_lm_head=True)
            n_tokens = outputs.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = dwl_loss(-outputs.log_probs, token_class[:, 1:], self.loss_alphas(model), n_tokens)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

        def log(self, logs, *args, **kwargs):
            if "loss" in logs:
                alphas = self.current_alphas()
                logs = {
                    **logs,
                    "dwl_alpha_answer": alphas[0],
                    "dwl_alpha_reasoning_mean": sum(alphas[1:]) / max(1, len(alphas) - 1),
                }
            return super().log(logs, *args, **kwargs)

    return DWLCollator, DWLSFTTrainer


def build_datasets(tokenizer, train: list[CotExample], validation: list[CotExample], max_length: int):
    from datasets import Dataset

    out, dropped = [], 0
    for examples in (train, validation):
        rows = [tokenize_cot(tokenizer, e, max_length) for e in examples]
        dropped += sum(r is None for r in rows)
        rows = [{**r, "example": i} for i, r in enumerate(rows) if r is not None]
        out.append(Dataset.from_list(rows) if rows else None)
    if out[0] is None:
        raise ToxbenchError(
            f"no training example fits in max_length={max_length} tokens; raise train.max_length or use fewer CoT blocks"
        )
    return out[0], out[1], dropped


def sft_config(job_train, output_dir: Path, device: str, has_eval: bool):
    from trl import SFTConfig

    return SFTConfig(
        **trainer_arguments(job_train, output_dir, device, has_eval), completion_only_loss=None, dataset_num_proc=None
    )


def lora_checksum(model) -> str:
    """sha256 over the adapter's tensors as peft saves them (sorted names, float32 bytes): equal on
    two processes, or on a process and the saved file, exactly when they hold the same adapter."""
    import hashlib

    import torch
    from peft import get_peft_model_state_dict

    digest = hashlib.sha256()
    for name, tensor in sorted(get_peft_model_state_dict(model).items()):
        digest.update(name.encode() + tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def rank_report(trainer, train: list[CotExample], output_dir: Path) -> Path:
    """OUTPUT/ranks/rank-N.json for each process of a data-parallel run (accelerate, DeepSpeed):
    the training examples it stepped on, in order, and the checksum of the adapter it ended with.
    They show the data was sharded (disjoint sets) and the replicas stayed one model (equal sums)."""
    rank = trainer.accelerator.process_index
    report = {
        "rank": rank,
        "world_size": trainer.accelerator.num_processes,
        "steps": trainer.state.global_step,
        "rows": trainer.trained_examples,
        "examples": [train[i].id for i in trainer.trained_examples],
        "adapter_sha256": lora_checksum(trainer.model),
    }
    path = output_dir / "ranks" / f"rank-{rank}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(report, indent=1))
    return path


def run_sft(job: SFTJob, data, resume: bool = True) -> Path:
    """Train, save the adapter and its card; returns the output directory."""
    from peft import LoraConfig

    output_dir = Path(job.output_dir)
    train, validation, stats = load_examples(job, data)
    tokenizer, model, device, quantized = load_for_training(job.model)
    train_ds, eval_ds, dropped = build_datasets(tokenizer, train, validation, job.train.max_length)
    if dropped:
        log.warning("%d examples longer than max_length=%d tokens were left out", dropped, job.train.max_length)
    schedule = schedule_for(job)
    lora = LoraConfig(
        r=job.lora.r,
        lora_alpha=job.lora.alpha,
        lora_dropout=job.lora.dropout,
        target_modules=job.lora.target_modules,
        task_type="CAUSAL_LM",
    )
    collator_cls, trainer_cls = _trainer_classes()
    trainer = trainer_cls(
        model=model,
        args=sft_config(job.train, output_dir, device, eval_ds is not None),
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=tokenizer,
        peft_config=lora,
        data_collator=collator_cls(pad_token_id=tokenizer.pad_token_id),
        schedule=schedule,
    )
    use_optimizer(trainer, job.train)
    checkpoint = last_checkpoint(output_dir) if resume else None
    # The base model's validation loss, on one process only: the Trainer prepares the model for
    # evaluation, and accelerate then refuses to prepare it again, so training would run without
    # DistributedDataParallel, each process on its own shard, and only process 0's adapter saved
    # (measured: two processes ended with different adapters; tests/finetune/test_data_parallel.py).
    distributed = trainer.accelerator.num_processes > 1
    before = trainer.evaluate() if eval_ds is not None and checkpoint is None and not distributed else {}
    trainer.train(resume_from_checkpoint=checkpoint)
    final_eval = trainer.evaluate() if eval_ds is not None else {}
    if not before and (output_dir / "toxbench-model.json").is_file():
        before = read_card(output_dir).get("training", {}).get("eval_before", {})
    trainer.save_model(str(output_dir))
    if trainer.accelerator.num_processes > 1:
        rank_report(trainer, train, output_dir)
    if (
        not trainer.is_world_process_zero()
    ):  # the weights are saved by process 0 alone (save_model); so are their companions
        return output_dir
    save_outputs(
        output_dir,
        tokenizer,
        trainer.state.log_history,
        {
            "kind": "causal-cot",
            "base_model": job.model.base,
            "adapter": ".",
            "parser": "cot",
            "prompt_template": PROMPT_TEMPLATE,
            "max_new_tokens": job.max_new_tokens,
            "repetition_penalty": job.repetition_penalty,
            "quantized_training": quantized,
            "training": {
                "stage": "sft",
                "job": json.loads(job.model_dump_json()),
                "schedule": schedule.model_dump(),
                "data": stats,
                "examples_left_out_for_length": dropped,
                "train_examples": len(train_ds),
                "eval_before": before,
                "final_eval": final_eval,
                "processes": trainer.accelerator.num_processes,
                "steps": trainer.state.global_step,
            },
        },
    )
    return output_dir
