"""Commands over recorded runs: `runs list`, `leaderboard`, `compare`, `agreement`, `report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import (
    Columns,
    DataDirOption,
    ModelArgOption,
    RunsOption,
    WideOption,
    console,
    data_dir,
    pct,
)
from toxbench.errors import ToxbenchError

app = typer.Typer(help="Recorded runs.", no_args_is_help=True)


SourceOption = Annotated[
    str,
    typer.Option(
        "--source",
        help="yours: runs made here; release: the ToxiFrench release's replayed prediction files; all.",
    ),
]


def _check_choice(value: str | None, option: str, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ToxbenchError(f"{option} {value!r}: use {', '.join(choices)}")


@app.command("list")
def runs_list(
    runs: RunsOption = Path("runs"),
    source: SourceOption = "yours",
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Only this dataset (a glob: 'rtplx*').", show_default=False)
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Only runs whose label or adapter:model contains this.", show_default=False),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="Only complete, partial, running or stopped runs.", show_default=False),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Your runs with their short id, status, size, accuracy and cost (--source release or all: the
    release's replayed files too; --wide: model, prompt, language, shots, seed, subset, coverage).
    A run not complete is `running` while a process writes it, else `stopped`: run its command again."""
    from toxbench.adapters.registry import priced
    from toxbench.analysis.summary import filter_rows, money, run_rows
    from toxbench.records import SOURCES

    _check_choice(source, "--source", SOURCES)
    _check_choice(status, "--status", ("complete", "partial", "running", "stopped"))
    all_rows, warnings = run_rows(runs)
    for warning in warnings:
        console(stderr=True).print(f"[yellow]warning[/] {warning}")
    rows = filter_rows(all_rows, source, dataset, model, status)
    table = Columns(
        "id",
        "run",
        "dataset",
        "status",
        "n",
        "accuracy",
        "cost",
        wide=("model", "prompt", "lang", "shots", "seed", "subset", "coverage"),
    )
    for row in rows:
        m, spec = row.metrics, row.spec
        table.add(
            id=row.short_id,
            run=row.run,
            dataset=spec.dataset,
            status=row.status,
            n=row.size(),
            accuracy=f"{m.accuracy:.3f}" if m and m.accuracy == m.accuracy else "–",
            cost=money(row.cost_usd, priced(spec.adapter)),
            model=f"{spec.adapter}:{spec.model}",
            prompt=spec.prompt or "–",
            lang=spec.lang or "–",
            shots=spec.shots or "–",
            seed="–" if spec.shots_seed is None else str(spec.shots_seed),
            subset=spec.subset or "–",
            coverage=f"{m.coverage:.3f}" if m else "–",
        )
    console().print(table.render(wide))
    hidden = len(filter_rows(all_rows, "all", dataset, model, status)) - len(rows)
    if hidden:
        console().print(
            f"{len(rows)} of yours shown; {hidden} replayed from the release not shown (--source all)"
            if source == "yours"
            else f"{len(rows)} shown; {hidden} of another source not shown (--source all)"
        )
    elif not rows:
        console().print(f"no run under {runs} matches (--source {source})")


@app.command("rm")
def runs_rm(
    refs: Annotated[
        list[str], typer.Argument(help="Runs: directories, run ids (or unique prefixes), short ids or labels.")
    ],
    runs: RunsOption = Path("runs"),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete runs (their records and manifest). A run a process is writing is refused, and nothing
    is deleted unless every run named can be."""
    import shutil

    from toxbench.records import find_run, lock_held, read_manifest

    targets = list(dict.fromkeys(find_run(ref, runs) for ref in refs))
    busy = [str(d) for d in targets if lock_held(d)]
    if busy:
        raise ToxbenchError(
            f"{', '.join(busy)}: a toxbench process is writing this run; stop it first (nothing deleted)"
        )
    from toxbench.run.batch import read_checkpoint

    for run_dir in targets:
        console().print(f"{run_dir}  ({read_manifest(run_dir).spec.dataset}, {read_manifest(run_dir).status})")
        if waiting := len(read_checkpoint(run_dir)["batches"]):
            console(stderr=True).print(
                f"[yellow]warning[/] {waiting} batch(es) of this run still run at the provider, and are billed: "
                "deleting the run forgets them; cancel them first with the run's command and --batch --cancel"
            )
    import sys

    if not yes and not sys.stdin.isatty():
        raise ToxbenchError("nothing deleted: give --yes to delete without a prompt (no terminal to ask at)")
    try:
        confirmed = yes or typer.confirm(f"delete {len(targets)} run{'s' if len(targets) > 1 else ''}?", default=False)
    except typer.Abort:  # Ctrl-D or Ctrl-C at the prompt
        confirmed = False
    if not confirmed:
        raise ToxbenchError("nothing deleted")
    for run_dir in targets:
        shutil.rmtree(run_dir)
    console().print(f"deleted {len(targets)} run{'s' if len(targets) > 1 else ''}")


@app.command("status")
def runs_status(
    run: Annotated[str, typer.Argument(help="A run directory, run id (or unique prefix), short id or label.")],
    runs: RunsOption = Path("runs"),
    model_arg: ModelArgOption = None,
) -> None:
    """A run's progress and, for a batched run, each checkpointed batch's state at the provider and
    its counts (polled with the provider's key from the environment; --model-arg api_key_env=VAR or
    base_url=URL where the run used others)."""
    from toxbench.adapters.registry import create, get_adapter, parse_model_args
    from toxbench.records import find_run, read_manifest, run_state
    from toxbench.run.batch import CHECKPOINT, has_batch_api, poll_all, read_checkpoint
    from toxbench.run.loop import run_coroutine

    run_dir = find_run(run, runs)
    manifest = read_manifest(run_dir)
    spec = manifest.spec
    expected = f" of {manifest.n_expected}" if manifest.n_expected else ""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(manifest.counts.items()) if v) or "nothing yet"
    out = console()
    out.print(f"{run_dir}\n{spec.adapter}:{spec.model} on {spec.dataset}: {run_state(run_dir, manifest)}, "
              f"{manifest.recorded}{expected} recorded ({counts})", highlight=False, markup=False)  # fmt: skip
    batches = read_checkpoint(run_dir)["batches"]
    if not batches:
        out.print("no batch checkpointed")
        return
    args = {"base_url": spec.adapter_params["base_url"]} if spec.adapter_params.get("base_url") else {}
    args.update(parse_model_args(model_arg or []))
    try:
        if not has_batch_api(get_adapter(spec.adapter)):
            raise ToxbenchError(f"{spec.adapter!r} has no batch API here")
        adapter = create(f"{spec.adapter}:{spec.model}", args)
        states = run_coroutine(poll_all(adapter, adapter.batch_backend(), batches))
    except ToxbenchError as exc:
        states = [f"not polled: {exc}"] * len(batches)
    table = Columns("batch", "requests", "submitted", "state", "done")
    for batch, state in zip(batches, states, strict=True):
        polled = not isinstance(state, str)
        table.add(
            batch=batch["batch_id"],
            requests=str(len(batch["custom_ids"])),
            submitted=batch.get("submitted_at", "–"),
            state=state.status if polled else state,
            done=f"{state.done}/{state.total}" if polled and state.total else "–",
        )
    out.print(table.render(False))
    out.print(
        f"{len(batches)} batch(es) checkpointed in {run_dir / CHECKPOINT}: run the command that started this run "
        "again with --batch to record their answers, or with --batch --cancel to cancel them",
        highlight=False,
        markup=False,
    )


@app.command("repair")
def runs_repair(
    run: Annotated[str, typer.Argument(help="A run directory, run id (or unique prefix) or label.")],
    runs: RunsOption = Path("runs"),
) -> None:
    """Make a damaged run readable: drop a torn last line (a crash mid-write), rebuild the counts."""
    from toxbench.records import find_run, repair_run

    console().print(repair_run(find_run(run, runs)))


def leaderboard(
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset(s) to rank (default: every dataset with published predictions).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Where leaderboard.csv and leaderboard.md go (one sub-directory per dataset when there are several).",
        ),
    ] = Path("leaderboards"),
    runs: Annotated[
        Path,
        typer.Option(
            "--runs", help="Runs directory: every complete run in it is ranked; published files are replayed into it."
        ),
    ] = Path("runs"),
    include: Annotated[
        list[Path] | None,
        typer.Option(
            "--include-runs",
            help="Another runs directory whose complete runs are ranked too; nothing is replayed into it (repeatable), e.g. results/runs.",
            show_default=False,
        ),
    ] = None,
    data_dir_: DataDirOption = None,
    labelled_only: Annotated[
        bool,
        typer.Option(
            "--labelled-only",
            help="Compute metrics on labelled samples only (default: unlabelled answers count as wrong).",
        ),
    ] = False,
    published: Annotated[
        bool, typer.Option("--published/--no-published", help="Replay the release's published prediction files first.")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write the files without printing the tables.")] = False,
    source: SourceOption = "all",
    wide: WideOption = False,
) -> None:
    """Rank every run of a dataset (published predictions included) and write CSV and Markdown."""
    from toxbench.analysis.leaderboard import regenerate
    from toxbench.records import SOURCES

    _check_choice(source, "--source", SOURCES)
    err = console(stderr=True)
    made = regenerate(
        dataset,
        runs,
        out,
        data_dir(data_dir_),
        "labelled_only" if labelled_only else "count_as_wrong",
        published,
        console=err,
        include=include or (),
        source=source,
    )
    for note in made.notes:
        err.print(f"[yellow]{'warning' if note.startswith('skipped') else 'note'}[/] {note}")
    for board, csv_path, md_path in made.boards:
        if not quiet:
            _print_board(board.rows, board, wide, board.dataset)
            if board.subset_rows:
                _print_board(
                    board.subset_rows, board, wide, f"{board.dataset}: runs on part of the dataset (ranked apart)"
                )
            if board.fitted_rows:
                _print_board(
                    board.fitted_rows, board, wide, f"{board.dataset}: learned from its own labels (ranked apart)"
                )
        subsets = f" (+{len(board.subset_rows)} on part of it, ranked apart)" if board.subset_rows else ""
        subsets += f" (+{len(board.fitted_rows)} learned from its labels, ranked apart)" if board.fitted_rows else ""
        console().print(
            f"{board.dataset}: {len(board.rows)} runs{subsets} -> {csv_path}, {md_path}; sources: {board.sources_text()}"
        )


def _print_board(rows, board, wide: bool, title: str) -> None:
    from toxbench.analysis.metrics import POLICY_TEXT

    table = Columns(
        "#",
        "run",
        "n",
        "acc",
        "95% CI",
        "F1-0",
        "F1-1",
        wide=("prompt", "lang", "shots", "seed", "subset", "cov", "P0", "R0", "P1", "R1", "AUC"),
    )
    for rank, row in enumerate(rows, start=1):
        m = row.metrics
        table.add(
            **{
                "#": str(rank),
                "run": row.name + (" *" if row.notes else ""),
                "n": str(m.n),
                "acc": pct(m.accuracy),
                "95% CI": f"{pct(m.accuracy_ci_low)}–{pct(m.accuracy_ci_high)}",
                "F1-0": pct(m.f1_0),
                "F1-1": pct(m.f1_1),
                "prompt": row.prompt or "–",
                "lang": row.lang or "–",
                "shots": row.shots or "–",
                "seed": row.seed or "–",
                "subset": row.subset or "–",
                "cov": pct(m.coverage),
                "P0": pct(m.precision_0),
                "R0": pct(m.recall_0),
                "P1": pct(m.precision_1),
                "R1": pct(m.recall_1),
                "AUC": pct(m.roc_auc),
            }
        )
    console().print(table.render(wide, title=title, caption=POLICY_TEXT[board.policy]))


def compare(
    run_a: Annotated[str, typer.Argument(help="A run directory, run id (or unique prefix) or label.")],
    run_b: Annotated[str, typer.Argument(help="The run to compare it with, on the same dataset.")],
    runs: RunsOption = Path("runs"),
    show: Annotated[int, typer.Option("--show", help="Disagreements to print (0 for none).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the comparison, every disagreement included, to this file."),
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Paired comparison: exact McNemar test, Cohen's kappa, agreement, bootstrap F1 intervals, disagreements."""
    from rich.markup import escape
    from rich.table import Table

    from toxbench._util import writable_file
    from toxbench.analysis.compare import compare_refs, write_comparison
    from toxbench.data.datasets import texts_by_id
    from toxbench.records import distinct_labels

    if json_out:
        writable_file(json_out, "--json")
    a, b, c = compare_refs(run_a, run_b, runs, seed=seed)
    out = console()
    labels = distinct_labels({a.dir.name: a.spec, b.dir.name: b.spec})
    names = (labels[a.dir.name], labels[b.dir.name])
    out.print(
        f"A = {escape(names[0])}\nB = {escape(names[1])}\ndataset {escape(a.spec.dataset)}: {c.n_common} samples labelled by both (A recorded {c.n_a}, B {c.n_b})"
    )
    table = Table("", "A", "B")
    table.add_row("accuracy (common samples)", f"{c.accuracy_a:.4f}", f"{c.accuracy_b:.4f}")
    table.add_row(
        f"macro F1 [{c.confidence:.0%} bootstrap]",
        "{1:.4f} [{0:.4f}, {2:.4f}]".format(*c.f1_a),
        "{1:.4f} [{0:.4f}, {2:.4f}]".format(*c.f1_b),
    )
    table.add_row("right where the other is wrong", str(c.only_a_right), str(c.only_b_right))
    out.print(table)
    from toxbench.analysis.significance import format_p

    verdict = "significant" if c.mcnemar_p < 0.05 else "not significant"
    out.print(
        f"agreement {c.agreement:.4f}  Cohen's kappa {c.kappa:.4f}  exact McNemar p = {format_p(c.mcnemar_p)} ({verdict} at 0.05)\n"
        "macro F1 difference A - B {1:+.4f} [{0:+.4f}, {2:+.4f}] (paired bootstrap, seed {3})".format(*c.f1_diff, seed)
    )
    if show and c.disagreements:
        texts = texts_by_id(a.spec.dataset, data_dir(data_dir_))
        listing = Table(
            "sample",
            "gold",
            "A",
            "B",
            "text",
            title=f"{len(c.disagreements)} disagreements (first {min(show, len(c.disagreements))})",
        )
        for d in c.disagreements[:show]:
            listing.add_row(
                escape(d.sample_id), str(d.gold), str(d.pred_a), str(d.pred_b), escape(texts.get(d.sample_id, "")[:120])
            )
        out.print(listing)
    if json_out:
        out.print(f"wrote {write_comparison(json_out, names, c)}")


def agreement(
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="The dataset whose runs are compared.")
    ] = "toxifrench",
    runs: RunsOption = Path("runs"),
    out: Annotated[Path | None, typer.Option("--out", help="Write the matrix as CSV here.")] = None,
) -> None:
    """Cohen's kappa between every two complete runs of a dataset (on the samples both labelled)."""
    from rich.table import Table

    from toxbench.analysis.compare import write_kappa_csv
    from toxbench.analysis.leaderboard import agreement as kappa_of

    names, matrix = kappa_of(runs, dataset)
    if out:
        console().print(
            f"wrote {write_kappa_csv(names, matrix, out)}: {len(names)} x {len(names)} kappa matrix, runs in leaderboard order"
        )
        return
    table = Table("run", *[str(i) for i in range(1, len(names) + 1)])
    for i, (name, row) in enumerate(zip(names, matrix), 1):
        table.add_row(f"{i}. {name}", *(f"{k:.2f}" for k in row))
    console().print(table)


def report(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for index.html and its explorer data (not a file name).")
    ] = Path("report"),
    runs: RunsOption = Path("runs"),
    results: Annotated[
        list[Path] | None,
        typer.Option(
            "--results",
            help="Where sweep results (*/sensitivity.svg) are looked for (repeatable; default: sweeps and results).",
            show_default=False,
        ),
    ] = None,
    labelled_only: Annotated[bool, typer.Option("--labelled-only", help="Compute on labelled samples only.")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """A static HTML report of every run (open index.html; nothing is fetched at view time)."""
    from toxbench.analysis.report import build_report, report_size

    err = console(stderr=True)
    path = build_report(
        runs,
        data_dir(data_dir_),
        out,
        results or [Path("sweeps"), Path("results")],
        "labelled_only" if labelled_only else "count_as_wrong",
        on_warning=lambda w: err.print(f"[yellow]warning[/] {w}"),
    )
    console().print(f"wrote {path} ({report_size(path)})")


def paper(
    out: Annotated[Path, typer.Option("--out", help="Where paper-tables.csv and paper-tables.md go.")] = Path(
        "paper-tables"
    ),
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory the release's files are replayed into.")] = Path(
        "runs"
    ),
    data_dir_: DataDirOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write the files without printing the table.")] = False,
    wide: WideOption = False,
) -> None:
    """The paper's Tables 3, 5, 6 and 9 from the release's prediction files, beside the printed
    values, with a status per row: reproduced, differs (by how much) or no release file."""
    from toxbench._util import writable_dir
    from toxbench.analysis.paper import SHORT, compare, replay_release, write

    data = data_dir(data_dir_)
    out = writable_dir(out, "--out")  # before any replay writes records
    published = replay_release(data, runs, console=console(stderr=True))
    comparisons = compare(published)
    csv_path, md_path = write(comparisons, out)
    if not quiet:
        table = Columns("table", "row", "paper acc.", "release acc.", "status", wide=("dataset", "file", "details"))
        for c in comparisons:
            status = c.status + (f" ({SHORT[c.gap.column]} by {c.gap.largest:.3f})" if c.status == "differs" else "")
            table.add(
                table=c.row.table,
                row=(f"{c.row.group}: " if c.row.group else "") + c.row.label,
                status=status,
                dataset=c.row.dataset,
                file=c.row.file or "–",
                details=c.status_text(),
                **{
                    "paper acc.": f"{c.row.values[-1]:.3f}",
                    "release acc.": f"{c.release.accuracy:.3f}" if c.release else "–",
                },
            )
        console().print(table.render(wide))
    counts = {s: sum(c.status == s for c in comparisons) for s in ("reproduced", "differs", "no release file")}
    console().print(
        f"{len(comparisons)} printed rows: {counts['reproduced']} reproduced, {counts['differs']} differ, "
        f"{counts['no release file']} without a release file -> {csv_path}, {md_path}"
    )
