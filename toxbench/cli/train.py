"""`toxbench finetune` and `toxbench models`: training and registering models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import DataDirOption, console, data_dir

finetune_app = typer.Typer(
    help="Fine-tuning: CoT data, SFT with the Dynamic Weighted Loss, DPO, encoders.", no_args_is_help=True
)
models_app = typer.Typer(help="Trained models registered by name (run them as finetuned:NAME).", no_args_is_help=True)
ConfigOption = Annotated[Path, typer.Option("--config", help="A TOML job file (see examples/finetune/).")]
FreshOption = Annotated[
    bool, typer.Option("--fresh", help="Ignore checkpoints in the output directory instead of resuming.")
]


@finetune_app.command("data")
def finetune_data(
    out: Annotated[Path, typer.Option("--out", help="Folder for train.jsonl, validation.jsonl and settings.json.")],
    blocks: Annotated[
        str | None,
        typer.Option("--blocks", help="Comma-separated CoT blocks (explanation,tone,intention,category,labels,score)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    validation_fraction: Annotated[float, typer.Option("--validation-fraction")] = 0.1,
    max_examples: Annotated[
        int | None, typer.Option("--max-examples", help="A seeded, stratified subset of the training split.")
    ] = None,
    no_oversample: Annotated[
        bool, typer.Option("--no-oversample", help="Keep the training split's class balance as it is.")
    ] = False,
    drop_disagreeing: Annotated[
        bool,
        typer.Option("--drop-disagreeing", help="Leave out rows whose annotated CoT concluded against the gold label."),
    ] = False,
    annotated: Annotated[
        list[Path] | None,
        typer.Option(
            "--annotated",
            help="An annotation directory (`toxbench annotate run`, then `annotate merge`) read as one more source; repeatable.",
        ),
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """CoT SFT examples (prompt, completion) from the annotated files that are in no benchmark
    (the release's, and any annotation directory given)."""
    from toxbench.finetune.cot_data import CotDataSettings, build_splits, write_splits

    settings = CotDataSettings(
        seed=seed,
        validation_fraction=validation_fraction,
        max_examples=max_examples,
        oversample=not no_oversample,
        drop_disagreeing=drop_disagreeing,
        annotated=[str(p) for p in annotated or []],
        **({"blocks": [b.strip() for b in blocks.split(",") if b.strip()]} if blocks else {}),
    )
    train, validation, stats = build_splits(data_dir(data_dir_), settings)
    write_splits(out, train, validation, settings, stats)
    console().print(
        f"{out}: {len(train)} training examples {stats['train']} (before oversampling {stats['train_before_oversampling']}), "
        f"{len(validation)} validation {stats['validation']}; {stats['disagreeing_cot']} rows whose annotated CoT concluded otherwise "
        f"({'left out' if drop_disagreeing else 'kept, with the gold conclusion'})"
    )
    if annotated:
        balance = stats["selection"]["balance"].get("annotated", {1: 0, 0: 0})
        console().print(
            f"annotated directories: {balance[1] + balance[0]} labelled comments kept ({balance[1]} toxic, {balance[0]} non-toxic) "
            f"after benchmark exclusion; {stats['annotated_incomplete']} left out for an empty CoT block"
        )


@finetune_app.command("sft")
def finetune_sft(config: ConfigOption, fresh: FreshOption = False, data_dir_: DataDirOption = None) -> None:
    """LoRA (QLoRA on CUDA) SFT with the Dynamic Weighted Loss through TRL's SFTTrainer."""
    from toxbench.finetune.config import SFTJob, load_job
    from toxbench.finetune.sft import run_sft

    out = run_sft(load_job(config, SFTJob), data_dir(data_dir_), resume=not fresh)
    console().print(f"{out}: adapter and toxbench-model.json written; next: toxbench models register {out} --name NAME")


@finetune_app.command("dpo")
def finetune_dpo(config: ConfigOption, fresh: FreshOption = False, data_dir_: DataDirOption = None) -> None:
    """Preference pairs sampled from the SFT model, then DPO against the frozen SFT model."""
    from toxbench.finetune.config import DPOJob, load_job
    from toxbench.finetune.dpo import run_dpo

    out = run_dpo(load_job(config, DPOJob), data_dir(data_dir_), resume=not fresh)
    console().print(
        f"{out}: DPO adapter, pairs.jsonl and toxbench-model.json written; next: toxbench models register {out} --name NAME"
    )


@finetune_app.command("encoder")
def finetune_encoder(config: ConfigOption, fresh: FreshOption = False, data_dir_: DataDirOption = None) -> None:
    """A two-label sequence classifier (CamemBERT-style); best checkpoint by validation F1."""
    from toxbench.finetune.config import EncoderJob, load_job
    from toxbench.finetune.encoder_ft import run_encoder

    out = run_encoder(load_job(config, EncoderJob), data_dir(data_dir_), resume=not fresh)
    console().print(
        f"{out}: classifier and toxbench-model.json written; next: toxbench models register {out} --name NAME"
    )


@finetune_app.command("arcl-pairs")
def finetune_arcl_pairs(config: ConfigOption, data_dir_: DataDirOption = None) -> None:
    """ARCL rationale pairs: a chat model argues each post toxic and not toxic, through the engine
    (cache, retries, cost, resume); writes the pairs file the toxitrace objective reads."""
    from toxbench._util import load_toml_model
    from toxbench.finetune.arcl_pairs import ArclPairsJob, write_pairs

    job = load_toml_model(config, ArclPairsJob, "config file (see docs/explain.md)")
    counts = write_pairs(job, data_dir(data_dir_))
    console().print(
        f"{job.output}: {counts['pairs']} rationale pairs for {counts['posts']} posts ({counts['missing']} left out: a rationale "
        f"missing on either side; see the runs {', '.join(counts['runs'].values())})"
    )


@finetune_app.command("cusa")
def finetune_cusa(
    config: ConfigOption,
    no_llm: Annotated[bool, typer.Option("--no-llm", help="Keep the saliency spans; no chat model is asked.")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """Weak toxic spans: a warmed-up encoder's saliency spans, boundaries refined by a chat model
    through the engine; writes a dataset file with a spans column."""
    from toxbench._util import load_toml_model
    from toxbench.finetune.cusa import CusaJob, weak_spans

    job = load_toml_model(config, CusaJob, "config file (see docs/explain.md)")
    counts = weak_spans(job, data_dir(data_dir_), use_llm=not no_llm)
    src = counts["sources"]
    console().print(
        f"{job.output}: weak spans for {counts['posts']} toxic posts ({src['llm']} refined by the chat model, {src['llm-none']} "
        f"it found nothing toxic in, {src['saliency']} from saliency alone; {counts['dropped_substrings']} answered substrings "
        'not in their post dropped); train on it with [spans] dataset = "' + str(job.output) + '"'
    )


@models_app.command("register")
def models_register(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by toxbench finetune sft|dpo|encoder.")],
    name: Annotated[str, typer.Option("--name", help="The name to run it by: --model finetuned:NAME.")],
) -> None:
    """Register a trained model directory under a name."""
    from toxbench.model_registry import register

    path = register(model_dir, name)
    console().print(f"registered {name} -> {model_dir} ({path}); run it: toxbench run --model finetuned:{name}")


@models_app.command("list")
def models_list() -> None:
    """Registered models."""
    from rich.table import Table

    from toxbench.model_registry import registered

    table = Table("name", "kind", "path", "weights sha256", "registered")
    for entry in registered():
        table.add_row(entry["name"], entry["kind"], entry["path"], entry["weights_sha256"][:12], entry["registered_at"])
    console().print(table)
