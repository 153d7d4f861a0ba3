"""Encoder fine-tuning (the paper's CamemBERT row): a two-label sequence classifier.

Texts and labels come from the annotated files that are in no benchmark (the same selection as
the CoT data: toxbench.data.annotated), split with a seeded stratified validation set; the
training split is oversampled to 1:1. transformers' Trainer evaluates at each epoch and keeps the
best checkpoint by validation F1 of the toxic class (or `metric`), which is a split of training
data, never a benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

from toxbench.data.annotated import annotated_selection
from toxbench.finetune.config import EncoderJob
from toxbench.finetune.cot_data import balance_note, oversample, stratified_split
from toxbench.finetune.training import last_checkpoint, save_outputs, trainer_arguments, use_optimizer


def encoder_splits(job: EncoderJob, data) -> tuple[list[tuple[str, int]], list[tuple[str, int]], dict]:
    """(train, validation, stats): stats say what the selection left out and the class balance."""
    selection = annotated_selection(data)
    rows = [(r.text, r.label) for r in selection.rows if r.source in job.data.sources]
    train, validation = stratified_split(rows, [y for _, y in rows], job.data.validation_fraction, job.data.seed)
    if job.data.max_examples:
        train, _ = stratified_split(
            train, [y for _, y in train], 1 - job.data.max_examples / max(len(train), 1), job.data.seed
        )
    before = {c: sum(y == c for _, y in train) for c in (0, 1)}
    if job.data.oversample:
        train = oversample(train, [y for _, y in train])
    stats = {
        "train_before_oversampling": before,
        "balance_note": balance_note(before),
        "selection": selection.summary(),
    }
    return train, validation, stats


def validation_metrics(eval_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    logits, labels = eval_pred
    preds = logits.argmax(-1)
    return {
        "f1": f1_score(labels, preds, pos_label=1, zero_division=0),
        "macro_f1": f1_score(labels, preds, average="macro", zero_division=0),
        "accuracy": accuracy_score(labels, preds),
    }


class SpanCollator:
    """Pads a batch as the tokenizer does, and its token roles with 0 (padding)."""

    def __init__(self, tokenizer) -> None:
        from transformers import DataCollatorWithPadding

        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: list[dict]):
        import torch

        roles = [f.pop("token_roles") for f in features]
        rationales = [tuple(f.pop("rationales", None) or ()) for f in features]
        batch = self.pad(features)
        width = batch["input_ids"].shape[1]
        batch["token_roles"] = torch.tensor([r + [0] * (width - len(r)) for r in roles])
        if any(rationales):
            batch["rationales"] = rationales
        return batch


def span_trainer_class():
    """transformers' Trainer with the job's objective as its loss (CE alone when warming up,
    evaluating, or for a batch with no span-annotated toxic row)."""
    from transformers import Trainer
    from transformers.modeling_outputs import SequenceClassifierOutput

    from toxbench.finetune.span_objectives import span_loss

    class SpanTrainer(Trainer):
        def __init__(self, *args, objective, max_length: int, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.objective, self.rationale_max_length = objective, max_length

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            warming_up = (self.state.epoch or 0.0) < self.objective.warmup_epochs
            loss, logits = span_loss(
                model, dict(inputs), self.objective, warming_up, encode=lambda texts: self.encode(model, texts)
            )
            return (loss, SequenceClassifierOutput(loss=loss, logits=logits)) if return_outputs else loss

        def encode(self, model, texts: list[str]):
            """[CLS] vectors of rationales from the encoder being trained (gradients flow)."""
            inner = getattr(model, "module", model)
            batch = self.processing_class(
                texts, padding=True, truncation=True, max_length=self.rationale_max_length, return_tensors="pt"
            )
            return inner.base_model(**batch.to(inner.device)).last_hidden_state[:, 0]

    return SpanTrainer


def run_encoder(job: EncoderJob, data, resume: bool = True) -> Path:
    import torch
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    from toxbench.adapters._local import load_tokenizer_and_model

    output_dir = Path(job.output_dir)
    if job.spans is not None:
        from toxbench.finetune.span_data import span_splits

        train, validation, stats = span_splits(job.spans, data)
    else:
        train, validation, stats = encoder_splits(job, data)
    torch.manual_seed(job.head_seed)  # the fresh classification head
    labels = {"id2label": {0: "non-toxic", 1: "toxic"}, "label2id": {"non-toxic": 0, "toxic": 1}}
    # the span objectives differentiate the input gradients again: fused attention kernels have no double backward
    attention = {"attn_implementation": "eager"} if job.objective.needs_gradients else {}
    tokenizer, model, device = load_tokenizer_and_model(
        job.model.base,
        "sequence",
        job.model.device,
        job.model.dtype,
        False,
        num_labels=2,
        ignore_mismatched_sizes=True,
        **labels,
        **attention,
    )

    def encode(pairs):
        enc = tokenizer([t for t, _ in pairs], truncation=True, max_length=job.train.max_length)
        return Dataset.from_dict({**enc, "labels": [y for _, y in pairs]})

    def encode_spans(rows):
        from toxbench.finetune.span_data import token_roles

        enc = tokenizer(
            [r.text for r in rows], truncation=True, max_length=job.train.max_length, return_offsets_mapping=True
        )
        roles = [token_roles(offsets, r.spans) for offsets, r in zip(enc.pop("offset_mapping"), rows)]
        columns = {**enc, "labels": [r.label for r in rows], "token_roles": roles}
        if any(r.rationales for r in rows):
            columns["rationales"] = [list(r.rationales or ()) for r in rows]
        return Dataset.from_dict(columns)

    args = trainer_arguments(job.train, output_dir, device, has_eval=True)
    args.pop("max_length")
    args.update(
        save_strategy=args["eval_strategy"],
        load_best_model_at_end=job.checkpoint == "best",
        metric_for_best_model=job.metric,
        greater_is_better=True,
    )
    if job.spans is not None:
        args["remove_unused_columns"] = False  # the token roles reach compute_loss
        trainer = span_trainer_class()(
            model=model,
            args=TrainingArguments(**args),
            train_dataset=encode_spans(train),
            eval_dataset=encode_spans(validation),
            processing_class=tokenizer,
            data_collator=SpanCollator(tokenizer),
            compute_metrics=validation_metrics,
            objective=job.objective,
            max_length=job.train.max_length,
        )
    else:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(**args),
            train_dataset=encode(train),
            eval_dataset=encode(validation),
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_metrics=validation_metrics,
        )
    use_optimizer(trainer, job.train)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir) if resume else None)
    best = trainer.evaluate()
    trainer.save_model(str(output_dir))
    save_outputs(
        output_dir,
        tokenizer,
        trainer.state.log_history,
        {
            "kind": "encoder",
            "base_model": job.model.base,
            "label_policy": "index:1",
            "training": {
                "stage": "encoder",
                "objective": job.objective.kind,
                "job": json.loads(job.model_dump_json()),
                "train_examples": len(train),
                "validation_examples": len(validation),
                "data": stats,
                "best_checkpoint": trainer.state.best_model_checkpoint,
                "best_validation": best,
                "steps": trainer.state.global_step,
            },
        },
    )
    return output_dir
