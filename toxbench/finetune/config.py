"""Fine-tuning job configurations (TOML files, validated with pydantic).

One file per job; relative paths in a file are relative to the working directory, as on the
command line. Defaults are the paper's settings (Appendix C) where the paper gives them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toxbench._util import load_toml_model
from toxbench.finetune.cot_data import CotDataSettings
from toxbench.finetune.span_data import SpanDataSettings
from toxbench.finetune.span_objectives import Objective


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoraSettings(_Strict):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]
    )


class TrainSettings(_Strict):
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_steps: int = 15
    epochs: float = 3
    max_steps: int = -1  # > 0 stops early (smoke runs)
    batch_size: int = 4
    gradient_accumulation: int = 32
    max_length: int = 1024
    seed: int = 42
    logging_steps: int = 10
    save_steps: int = 200
    save_total_limit: int = 3
    eval_steps: int | None = None  # None: evaluate at each epoch's end
    gradient_checkpointing: bool = False
    optim: str = (
        "adamw_torch"  # a transformers optimizer name, or "soap" (pytorch-optimizer's SOAP, the paper's Table 6 rows)
    )
    weight_decay: float = 0.0  # the release used 0.01
    deepspeed: str | None = None  # a DeepSpeed JSON config (e.g. examples/finetune/deepspeed-zero2.json)
    # experiment trackers transformers supports (tensorboard, wandb, mlflow, trackio, ...); none by
    # default. Each logs what the trainer logs; tensorboard's files go under OUTPUT_DIR/checkpoints/runs.
    report_to: list[str] = Field(default_factory=list)


class DPOTrainSettings(TrainSettings):
    """The paper's DPO stage: 1 epoch at lr 1e-6 (a [train] table in a DPO file starts from these)."""

    learning_rate: float = 1e-6
    epochs: float = 1
    warmup_steps: int = 0
    gradient_accumulation: int = 8


class EncoderTrainSettings(TrainSettings):
    learning_rate: float = 2e-5
    epochs: float = 3
    batch_size: int = 16
    gradient_accumulation: int = 1
    max_length: int = 256
    warmup_steps: int = 0


class DWLSettings(_Strict):
    """Either `factor` (the paper's two-class form) or explicit `schedule` entries, or neither (plain SFT)."""

    factor: float | None = None
    schedule: list[tuple[float, list[float]]] | None = None


class ModelSettings(_Strict):
    base: str  # hub id, local path, .gguf file or short name (smollm2-135m-instruct)
    load_in_4bit: bool | None = None  # None: QLoRA when CUDA and bitsandbytes are present
    device: str = "auto"
    dtype: str = "auto"


class SFTJob(_Strict):
    model: ModelSettings
    output_dir: Path
    data: CotDataSettings = Field(default_factory=CotDataSettings)
    data_dir: Path | None = None  # a folder written by `toxbench finetune data`; else built from [data]
    lora: LoraSettings = Field(default_factory=LoraSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    dwl: DWLSettings = Field(default_factory=DWLSettings)
    max_new_tokens: int = 512  # recorded for inference by the registered model
    repetition_penalty: float | None = (
        None  # recorded for inference too (the release generated its Table 6 rows with 1.1)
    )


class SamplingSettings(_Strict):
    candidates: int = 4
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 512
    max_prompts: int | None = None
    batch_size: int = 4
    inverted_pairs: bool = False  # also gold completion vs the same with its conclusion flipped
    max_pairs_per_prompt: int = 1


class DPOJob(_Strict):
    sft_model: Path  # the directory `toxbench finetune sft` wrote
    output_dir: Path
    data: CotDataSettings = Field(default_factory=CotDataSettings)
    data_dir: Path | None = None
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    beta: float = 0.4
    train: DPOTrainSettings = Field(default_factory=DPOTrainSettings)


class EncoderJob(_Strict):
    model: ModelSettings
    output_dir: Path
    data: CotDataSettings = Field(default_factory=lambda: CotDataSettings(blocks=[]))
    train: EncoderTrainSettings = Field(default_factory=EncoderTrainSettings)
    head_seed: int = 0
    metric: Literal["f1", "macro_f1", "accuracy"] = (
        "macro_f1"  # the validation split is imbalanced: macro F1 weighs both classes
    )
    # best: the checkpoint with the best validation `metric`; last: the final one. A span objective
    # wants last: validation F1 does not see saliency, and ties go to an early (warm-up, plain CE) epoch
    checkpoint: Literal["best", "last"] = "best"
    spans: SpanDataSettings | None = None  # train on a dataset with gold spans instead of the annotated files ([data])
    objective: Objective = Field(default_factory=Objective)

    @model_validator(mode="after")
    def _span_objectives_need_spans(self):
        if self.objective.kind != "ce" and self.spans is None:
            raise ValueError(
                f'objective kind = "{self.objective.kind}" needs a [spans] table naming a dataset with gold spans '
                '(e.g. dataset = "toxicspans-en:train")'
            )
        if self.objective.kind == "toxitrace" and self.spans.arcl_pairs is None:
            raise ValueError(
                'objective kind = "toxitrace" needs arcl_pairs in [spans]: a pairs file from `toxbench finetune arcl-pairs`'
            )
        return self


def load_job(path: Path, kind: type[_Strict]) -> _Strict:
    return load_toml_model(path, kind, "config file (see examples/finetune/ for examples)")
