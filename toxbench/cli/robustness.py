"""`toxbench perturb` (derived datasets: texts disguised, ids and labels kept) and `toxbench
robustness` (a model on a dataset and on its disguised versions, compared pair by pair)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import (
    DataDirOption,
    ModelArgOption,
    PollIntervalOption,
    RunsOption,
    ShotsOption,
    console,
    data_dir,
)
from toxbench.errors import ToxbenchError

TransformOption = Annotated[
    list[str] | None,
    typer.Option(
        "--transform",
        "-t",
        help="A transform (leetspeak, homoglyphs, separators, repeats, accents-strip, accents-swap, phonetic, sms, "
        "emoji, spacing, counterfactual), NAME@RATE for another share of words, several joined by commas to chain them.",
        show_default=False,
    ),
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the transforms' random choices.")]


def perturb(
    dataset: Annotated[
        str | None, typer.Argument(help="A dataset name or file (as `run --dataset` takes it).", show_default=False)
    ] = None,
    transform: TransformOption = None,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option("--out", help="Where the derived dataset and its provenance go.")] = Path(
        "perturbed"
    ),
    from_: Annotated[
        Path | None,
        typer.Option(
            "--from", help="Regenerate the derived dataset a provenance record describes, and check its checksum."
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="With --from: the source dataset's file, where it has moved since."),
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Make a derived dataset: the same ids and gold labels, the texts disguised by a chain of
    transforms, and a provenance record beside it (source and checksum, transforms, rates, versions,
    seed, the derived checksum). Give its .jsonl file to run, sweep or leaderboard as a dataset."""
    from toxbench.data.perturb.derive import derive_spec, regenerate

    data = data_dir(data_dir_)
    if from_ is not None:
        if dataset or transform:
            raise ToxbenchError("--from regenerates a recorded derived dataset: give no DATASET or --transform with it")
        made = regenerate(from_, data, source)
        console().print(
            f"{made.path}: regenerated, byte for byte the recorded {made.name!r}", highlight=False, markup=False
        )
        return
    if not dataset or not transform:
        raise ToxbenchError("give a DATASET and one --transform (a chain: --transform leetspeak,sms), or --from FILE")
    if len(transform) > 1:
        raise ToxbenchError("perturb makes one derived dataset: chain transforms with commas (--transform a,b)")
    made = derive_spec(dataset, transform[0], seed, data, out)  # the chain and the dataset checked before --out is made
    console().print(
        f"{made.path}: {made.name!r}, {made.changed} of {made.n} texts changed "
        f"({made.n - made.changed} left as they were, listed in its provenance)\n"
        f"run a model on it: toxbench run --model MODEL --dataset {made.path}",
        highlight=False,
        markup=False,
    )


def robustness(
    model: Annotated[str, typer.Option("--model", "-m", help="ADAPTER[:MODEL], as `run` takes it.")],
    transform: TransformOption = None,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset the disguises are made from.")] = (
        "toxifrench"
    ),
    model_arg: ModelArgOption = None,
    seed: SeedOption = 0,
    prompt: Annotated[str, typer.Option("--prompt", help="simple or detailed (chat models).")] = "detailed",
    lang: Annotated[str, typer.Option("--lang", help="The prompt's language: fr or en.")] = "fr",
    shots: ShotsOption = "0",
    sample: Annotated[
        int | None, typer.Option("--sample", help="A seeded class-balanced sample of N samples.", show_default=False)
    ] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of --sample.")] = 0,
    runs: RunsOption = Path("runs"),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Where the table, the plot and the derived datasets go (default: robustness/MODEL)."
        ),
    ] = None,
    datasets: Annotated[
        Path | None,
        typer.Option(
            "--datasets",
            help="Where the derived datasets go (default: OUT/datasets); they hold the dataset's texts, so keep them out of a repository.",
            show_default=False,
        ),
    ] = None,
    recorded: Annotated[
        bool,
        typer.Option("--recorded", help="Make no run: take each run from --runs (regenerating committed tables)."),
    ] = False,
    batch: Annotated[
        bool, typer.Option("--batch", help="Through the provider's batch API where the model has one.")
    ] = False,
    poll_interval: PollIntervalOption = 30.0,
    data_dir_: DataDirOption = None,
) -> None:
    """Run a model on a dataset and on its disguised versions (each an ordinary run: cached,
    resumable), then per transform: accuracy and F1 with Wilson intervals, the paired McNemar test,
    evasion and false-alarm flip rates, on the texts each transform changed."""
    from toxbench._util import folder_name
    from toxbench.adapters.registry import parse_model_args
    from toxbench.analysis.robustness import run_robustness
    from toxbench.run.engine import ExecutionSettings

    if not transform:
        raise ToxbenchError("--transform: name at least one (repeat the option for several, one table row each)")
    out = out or Path("robustness") / folder_name(model)  # made once every input is checked
    made = run_robustness(
        model,
        dataset,
        transform,
        data_dir(data_dir_),
        runs,
        out,
        ExecutionSettings(batch=batch, poll_s=poll_interval, batch_where_available=True),
        model_args=parse_model_args(model_arg or []),
        seed=seed,
        prompt=prompt,
        lang=lang,
        shots=shots,
        sample=sample,
        sample_seed=sample_seed,
        recorded_only=recorded,
        datasets_dir=datasets,
        on_run=lambda i, n, d: console().print(f"[{i}/{n}] {model} on {d}", highlight=False, markup=False),
    )
    console().print((out / "robustness.md").read_text("utf-8"), highlight=False, markup=False)
    console().print("wrote " + ", ".join(map(str, (made.csv, made.markdown, made.svg))))
