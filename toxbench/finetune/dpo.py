"""DPO after SFT: preference pairs sampled from the SFT model, then TRL's DPOTrainer.

For each training prompt the SFT model samples n candidates; a pair is kept when one candidate's
`Conclusion` matches the gold label (chosen) and another's does not or has none (rejected).
`inverted_pairs` adds the gold completion against the same completion with its conclusion flipped.
The policy is the SFT model (base + its LoRA adapter, trainable). The reference is the SFT model
too, frozen: TRL copies the SFT adapter into a second adapter named "ref" and computes reference
log-probabilities with it, so DPO pulls away from the SFT model, not from the base model.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.errors import ToxbenchError
from toxbench.finetune.config import DPOJob
from toxbench.finetune.cot_data import CONCLUSION, CotExample
from toxbench.finetune.training import last_checkpoint, load_examples, save_outputs, trainer_arguments, use_optimizer
from toxbench.model_registry import read_card
from toxbench.run.parsing import parse_cot

log = logging.getLogger(__name__)


def flip_conclusion(completion: str, label: int) -> str:
    if not completion.endswith(CONCLUSION[label]):
        raise ToxbenchError(f"completion does not end with {CONCLUSION[label]!r}")
    return completion[: -len(CONCLUSION[label])] + CONCLUSION[1 - label]


def pairs_from_candidates(example: CotExample, candidates: list[str], max_pairs: int = 1) -> list[dict]:
    """chosen = a candidate whose conclusion is the gold label; rejected = one whose is not (or none)."""
    right = [c for c in candidates if parse_cot(c).pred == example.label]
    wrong = [c for c in candidates if parse_cot(c).pred != example.label]
    pairs = [
        {"id": example.id, "prompt": example.prompt, "chosen": c, "rejected": w, "kind": "sampled"}
        for c, w in zip(right, wrong)
    ]
    return pairs[:max_pairs]


def inverted_pair(example: CotExample) -> dict:
    return {
        "id": example.id,
        "prompt": example.prompt,
        "chosen": example.completion,
        "rejected": flip_conclusion(example.completion, example.label),
        "kind": "inverted",
    }


def sample_candidates(model, tokenizer, prompts: list[str], settings, seed: int) -> list[list[str]]:
    """n sampled completions per prompt (batched, left padding), with a progress bar."""
    import torch
    from rich.progress import Progress

    torch.manual_seed(seed)
    out: list[list[str]] = []
    model.eval()
    with Progress(transient=True) as progress:
        task = progress.add_task("sampling DPO candidates", total=len(prompts))
        for i in range(0, len(prompts), settings.batch_size):
            chunk = prompts[i : i + settings.batch_size]
            batch = tokenizer(
                chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            ).to(model.device)
            with torch.inference_mode():
                generated = model.generate(
                    **batch,
                    do_sample=True,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    max_new_tokens=settings.max_new_tokens,
                    num_return_sequences=settings.candidates,
                    pad_token_id=tokenizer.pad_token_id,
                )
            texts = tokenizer.batch_decode(generated[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            out += [texts[j * settings.candidates : (j + 1) * settings.candidates] for j in range(len(chunk))]
            progress.advance(task, len(chunk))
    return out


def load_sft_policy(sft_dir: Path, card: dict, model_settings=None):
    """(tokenizer, PeftModel with the SFT adapter trainable, device)."""
    from peft import PeftModel

    from toxbench.finetune.config import ModelSettings
    from toxbench.finetune.training import load_for_training

    settings = model_settings or ModelSettings(base=card["base_model"])
    tokenizer, base, device, _ = load_for_training(settings)
    return tokenizer, PeftModel.from_pretrained(base, str(sft_dir), is_trainable=True), device


def build_pairs(job: DPOJob, model, tokenizer, train: list[CotExample]) -> list[dict]:
    examples = list(train)
    unique = list({e.id: e for e in examples}.values())  # oversampling repeats rows; sample each prompt once
    random.Random(job.train.seed).shuffle(unique)
    if job.sampling.max_prompts:
        unique = unique[: job.sampling.max_prompts]
    pairs = []
    if job.sampling.candidates >= 2:
        candidates = sample_candidates(model, tokenizer, [e.prompt for e in unique], job.sampling, job.train.seed)
        for example, cands in zip(unique, candidates):
            pairs += pairs_from_candidates(example, cands, job.sampling.max_pairs_per_prompt)
    if job.sampling.inverted_pairs:
        pairs += [inverted_pair(e) for e in unique]
    return pairs


def run_dpo(job: DPOJob, data, resume: bool = True) -> Path:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    sft_dir, output_dir = Path(job.sft_model), Path(job.output_dir)
    card = read_card(sft_dir)
    if card["kind"] != "causal-cot":
        raise ToxbenchError(f"{sft_dir}: DPO needs a CoT SFT model, this one is {card['kind']!r}")
    train, _, _ = load_examples(job, data)
    tokenizer, model, device = load_sft_policy(sft_dir, card)
    pairs_path = output_dir / "pairs.jsonl"
    if resume and pairs_path.is_file():
        pairs = [json.loads(line) for line in pairs_path.read_text("utf-8").splitlines()]
    else:
        pairs = build_pairs(job, model, tokenizer, train)
        write_atomic(pairs_path, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    if not pairs:
        raise ToxbenchError(
            "no preference pair: no prompt had both a right and a wrong candidate; raise sampling.candidates "
            "or sampling.max_new_tokens, or set sampling.inverted_pairs = true"
        )
    model.train()
    args = DPOConfig(**trainer_arguments(job.train, output_dir, device, has_eval=False), beta=job.beta)
    dataset = Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=dataset, processing_class=tokenizer)
    use_optimizer(trainer, job.train)
    trainer.train(resume_from_checkpoint=last_checkpoint(output_dir) if resume else None)
    model.save_pretrained(str(output_dir), selected_adapters=["default"])
    kinds = {k: sum(p["kind"] == k for p in pairs) for k in ("sampled", "inverted")}
    save_outputs(
        output_dir,
        tokenizer,
        trainer.state.log_history,
        {
            **card,
            "training": {
                "stage": "dpo",
                "from": str(sft_dir.resolve()),
                "sft_training": card.get("training"),
                "job": json.loads(job.model_dump_json()),
                "pairs": kinds,
                "reference": "the SFT model (a frozen copy of its adapter, TRL's 'ref' adapter)",
                "steps": trainer.state.global_step,
            },
        },
    )
    return output_dir
