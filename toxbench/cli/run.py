"""`toxbench run`, `toxbench sweep` and `toxbench adapters`: making runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import (
    Columns,
    ConcurrencyOption,
    DataDirOption,
    DelimiterOption,
    IdColOption,
    LabelColOption,
    LangColOption,
    MaxRetriesOption,
    ModelArgOption,
    NoCacheOption,
    PollIntervalOption,
    RpmOption,
    RunsOption,
    SeedOption,
    ShotPoolOption,
    ShotsOption,
    TextColOption,
    TimeoutOption,
    TpmOption,
    WideOption,
    console,
    data_dir,
)
from toxbench.errors import ToxbenchError


def run(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="ADAPTER:MODEL, e.g. openai:gpt-4o-mini, mistral:mistral-large-latest, perspective; default: the offline baseline.",
        ),
    ] = "baseline",
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="A dataset name or a path to a CSV/JSONL file.")
    ] = "toxifrench",
    prompt: Annotated[
        str, typer.Option("--prompt", help="Prompt set (simple, detailed) or a .toml file; chat adapters only.")
    ] = "detailed",
    lang: Annotated[
        str | None, typer.Option("--lang", help="Prompt language (fr, en); default: the dataset's.")
    ] = None,
    shots: ShotsOption = "0",
    seed: SeedOption = 0,
    shot_pool: ShotPoolOption = "first",
    model_arg: ModelArgOption = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N samples.")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="A seeded class-balanced sample of N samples (seed: --sample-seed).")
    ] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of --sample.")] = 0,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Batch size of local models (default: the adapter's).")
    ] = None,
    concurrency: ConcurrencyOption = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Through the provider's batch API: half the price, answers within a day; the same run (openai:, anthropic:, gemini:, mistral:).",
        ),
    ] = False,
    poll_interval: PollIntervalOption = 30.0,
    cancel: Annotated[
        bool,
        typer.Option(
            "--cancel",
            help="With --batch: cancel this run's checkpointed batches, record what they answered (the rest as errors), send nothing new.",
        ),
    ] = False,
    out: Annotated[Path, typer.Option("--out", "--runs", help="Runs directory.")] = Path("runs"),
    no_cache: NoCacheOption = False,
    prices: Annotated[str | None, typer.Option("--prices", help="Price table TOML overriding the shipped one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    retry_errors: Annotated[
        bool,
        typer.Option(
            "--retry-errors/--no-retry-errors",
            help="On a re-run, ask again for samples recorded as errors (refusals and unparseable answers are answers and stay).",
        ),
    ] = True,
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    id_col: IdColOption = None,
    lang_col: LangColOption = None,
    delimiter: DelimiterOption = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Run a model on a dataset; re-running the same command resumes (and retries errors)."""
    from toxbench.adapters.registry import parse_model_args
    from toxbench.data.tables import Columns
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.runner import RunOptions, execute

    options = RunOptions(
        model=model,
        dataset=dataset,
        prompt=prompt,
        lang=lang,
        shots=shots,
        seed=seed,
        shot_pool=shot_pool,
        model_args=parse_model_args(model_arg or []),
        limit=limit,
        sample=sample,
        sample_seed=sample_seed,
        runs_dir=out,
        use_cache=not no_cache,
        prices=prices,
        columns=Columns(text_col, label_col, id_col, lang_col, delimiter=delimiter),
        retry_errors=retry_errors,
    )
    settings = ExecutionSettings(
        concurrency=concurrency,
        rpm=rpm,
        tpm=tpm,
        timeout_s=timeout,
        max_retries=max_retries,
        batch_size=batch_size,
        batch=batch,
        poll_s=poll_interval,
        cancel=cancel,
    )
    try:
        result = execute(options, data_dir(data_dir_), settings, show_progress=not as_json)
    except KeyboardInterrupt:  # click would swallow it; say what happened and how to go on
        console(stderr=True).print("interrupted: what was recorded is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    from toxbench.analysis.summary import summary_json, summary_line  # numpy: only once the answers are in

    for note in result.notes:
        console(stderr=True).print(f"[yellow]note[/] {note}", highlight=False)
    if as_json:
        typer.echo(summary_json(result))
    else:
        console().print(summary_line(result))


def sweep(
    file: Annotated[Path, typer.Argument(help="A sweep file (TOML), e.g. experiments/icl-table5.toml.")],
    source: Annotated[
        str,
        typer.Option(
            "--source", help="auto: replay the release's file when the model cannot run here; live; published."
        ),
    ] = "auto",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the cells, their source and estimated cost; run nothing.")
    ] = False,
    runs: RunsOption = Path("runs"),
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where the sensitivity table and plot go (default: sweeps/<sweep name>)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size of local models.")] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", help="Most requests in flight per run (default: the adapter's).", show_default=False
        ),
    ] = None,
    recorded: Annotated[
        bool,
        typer.Option(
            "--recorded",
            help="Make no run: take each live cell's complete run from --runs (regenerating committed tables).",
        ),
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Send each live cell through its provider's batch API where there is one (openai:, anthropic:, gemini:, mistral:), the others live.",
        ),
    ] = False,
    poll_interval: PollIntervalOption = 30.0,
    data_dir_: DataDirOption = None,
) -> None:
    """Run every cell of a sweep (each an ordinary run) and write the sensitivity table and plot."""
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.sweep import load_sweep

    if source not in ("auto", "live", "published"):
        raise ToxbenchError(f"--source {source!r}: use auto, live or published")
    spec = load_sweep(file)
    data = data_dir(data_dir_)
    if dry_run:
        return _print_dry_run(spec, data, source)
    from toxbench._util import writable_dir
    from toxbench.analysis.sensitivity import run_sweep

    out = writable_dir(out or Path("sweeps") / spec.name, "--out")

    def cell_line(i: int, n: int, c) -> None:
        seed = f" seed {c.seed}" if c.seed is not None else ""
        where = "recorded run" if recorded and c.source == "live" else c.source
        console().print(f"[{i}/{n}] {c.model.display} {c.dataset} {c.lang} {c.config}{seed} ({where})")

    made = run_sweep(
        spec,
        data,
        runs,
        out,
        ExecutionSettings(
            concurrency=concurrency,
            batch_size=batch_size,
            batch=batch,
            poll_s=poll_interval,
            batch_where_available=True,
        ),
        source,
        on_cell=cell_line,
        recorded_only=recorded,
    )  # type: ignore[arg-type]
    console().print("wrote " + ", ".join(map(str, made.paths)))


DRY_RUN_ROWS = 200  # beyond this many cells, the dry run shows one row per configuration


def _print_dry_run(spec, data, source: str) -> None:
    from rich.table import Table

    from toxbench.run.sweep import CostEstimator, expand

    cells = expand(spec, data, source)  # type: ignore[arg-type]
    estimate = CostEstimator(spec, data)
    grouped = (
        len(cells) > DRY_RUN_ROWS
    )  # one row per configuration, its seeds counted: thousands of rows say less, slowly
    table = Table("model", "dataset", "lang", "configuration", "seeds" if grouped else "seed", "source", "estimated $")
    rows: dict[tuple, list] = {}
    total, unknown = 0.0, 0
    for cell in cells:
        cost = estimate(cell)
        total += cost or 0.0
        unknown += cost is None
        source_text = cell.source + (f" ({cell.published_file.rsplit('/', 1)[-1]})" if cell.published_file else "")
        seed = "–" if cell.seed is None else str(cell.seed)
        key = (cell.model.display, cell.dataset, cell.lang, cell.config, source_text) + (() if grouped else (seed,))
        row = rows.setdefault(key, [0, 0.0, False])
        row[0] += cell.seed is not None
        row[1] += cost or 0.0
        row[2] |= cost is None
    for key, (seeds, cost, unpriced) in rows.items():
        seed_cell = (str(seeds) if seeds else "–") if grouped else key[5]
        table.add_row(*key[:4], seed_cell, key[4], "?" if unpriced else f"{cost:.4f}")
    console().print(table)
    console().print(
        f"{len(cells)} cells; estimated ${total:.4f}"
        + (f" plus {unknown} unpriced (local or not in the price table)" if unknown else "")
    )


def adapters(
    adapter: Annotated[
        str | None,
        typer.Argument(help="One adapter: list its --model-arg keys, their defaults and meaning.", show_default=False),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Registered adapters: kind, capabilities and where their key comes from (--wide: description, what changes them).
    With ADAPTER: that adapter's --model-arg keys."""
    from toxbench.adapters.registry import describe_all

    if adapter is not None:
        return _print_model_args(adapter)

    table = Columns("adapter", "kind", "scores", "concurrency", "key from", wide=("description", "varies with"))
    for row in describe_all():
        if "error" in row:
            table.add(adapter=row["name"], kind="–", description=row["error"])
        else:
            table.add(
                adapter=row["name"],
                kind=row["kind"],
                scores="yes" if row["scores"] else "no",
                concurrency=str(row["concurrency"]),
                **{
                    "key from": row["key_from"] or "–",
                    "description": row["description"],
                    "varies with": row["varies"] or "–",
                },
            )
    console().print(table.render(wide))


def _print_model_args(name: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from toxbench.adapters.registry import get_adapter, model_args

    cls = get_adapter(name)  # an unknown name is one line listing the known ones
    keys = model_args(name)
    table = Table("--model-arg", "default", "meaning", title=f"{name}: {escape(cls.description)}")
    for arg in keys:
        default = "(required)" if arg.required else json.dumps(arg.default, ensure_ascii=False, default=str)
        table.add_row(arg.name, escape(default if len(default) <= 40 else default[:37] + "..."), escape(arg.meaning))
    out = console()
    out.print(table)
    out.print(
        f"e.g. toxbench run --model {name}:MODEL --model-arg {keys[0].name}=VALUE"
        if keys
        else f"{name} takes no --model-arg"
    )
