"""Cost of the Dynamic Weighted Loss: tokens per second of a DWL training step against a plain SFT
step (TRL's own loss) on the same batch, same model, same LoRA adapter.

SmolLM2-135M-Instruct with LoRA (the CPU example config's settings) on real CoT examples. Steps
alternate DWL / plain so drift in machine speed hits both alike; the median of each is reported,
and the overhead is the median of the ratios of each DWL step to the plain step timed next to it.
Target: DWL overhead <= 10%. Prints a table and writes benchmarks/finetune.json.

    python benchmarks/finetune.py [--data-dir DIR] [--steps 6] [--batch 4] [--blocks category,score]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    parser.add_argument("--steps", type=int, default=6, help="timed steps of each kind")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--blocks", default="category,score")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTTrainer

    from toxbench.data.datadir import DataDir
    from toxbench.finetune.config import ModelSettings, TrainSettings
    from toxbench.finetune.cot_data import CotDataSettings, build_splits
    from toxbench.finetune.dwl import DWLSchedule
    from toxbench.finetune.sft import _trainer_classes, sft_config, tokenize_cot
    from toxbench.finetune.training import load_for_training

    blocks = args.blocks.split(",")
    train, _, _ = build_splits(DataDir(args.data_dir), CotDataSettings(blocks=blocks, max_examples=64))
    tokenizer, model, device, _ = load_for_training(ModelSettings(base="smollm2-135m-instruct"))
    rows = [r for r in (tokenize_cot(tokenizer, e, 512) for e in train) if r][: args.batch]
    collator_cls, trainer_cls = _trainer_classes()
    collator = collator_cls(pad_token_id=tokenizer.pad_token_id)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_cls(
            model=model,
            args=sft_config(TrainSettings(batch_size=args.batch, gradient_accumulation=1), Path(tmp), device, False),
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=LoraConfig(
                r=8,
                lora_alpha=16,
                lora_dropout=0.05,
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
                task_type="CAUSAL_LM",
            ),
            data_collator=collator,
            schedule=DWLSchedule.two_class(len(blocks), 0.5, 3),
        )
        trainer.create_optimizer_and_scheduler(num_training_steps=100)
        trainer.current_gradient_accumulation_steps = 1  # set by train(); training_step reads it
        batch = collator(rows)
        n_tokens = int(batch["attention_mask"].sum())
        dwl_loss = trainer_cls.compute_loss

        def plain_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = {k: v for k, v in inputs.items() if k != "token_class"}
            return SFTTrainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

        def step(loss_fn) -> float:
            trainer_cls.compute_loss = loss_fn
            start = time.perf_counter()
            trainer.training_step(trainer.model, {k: v.clone() for k, v in batch.items()})
            trainer.model.zero_grad(set_to_none=True)
            return time.perf_counter() - start

        trainer.model.train()
        step(dwl_loss), step(plain_loss)  # warm-up
        times = {"dwl": [], "plain": []}
        for _ in range(args.steps):
            times["dwl"].append(step(dwl_loss))
            times["plain"].append(step(plain_loss))
        trainer_cls.compute_loss = dwl_loss

    rate = {k: n_tokens / statistics.median(v) for k, v in times.items()}
    overhead = statistics.median(d / p for d, p in zip(times["dwl"], times["plain"])) - 1
    print(
        f"DWL vs plain SFT step on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"batch {args.batch} x {batch['input_ids'].shape[1]} tokens ({n_tokens} real), {args.steps} timed steps each"
    )
    print(f"{'step':10} {'median s':>9} {'tokens/s':>9}")
    for k in ("plain", "dwl"):
        print(f"{k:10} {statistics.median(times[k]):9.3f} {rate[k]:9.1f}")
    print(f"DWL overhead {overhead:+.1%}  target <= +10%  {'ok' if overhead <= 0.10 else 'above'}")
    out = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "batch": args.batch,
        "tokens": n_tokens,
        "seconds": times,
        "tokens_per_second": rate,
        "overhead": overhead,
        "target": 0.10,
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
