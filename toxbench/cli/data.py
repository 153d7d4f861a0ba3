"""`toxbench data`: list, verify, fetch and inspect datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from toxbench.cli._options import (
    DataDirOption,
    DelimiterOption,
    IdColOption,
    LabelColOption,
    LangColOption,
    MirrorOption,
    SpansColOption,
    TextColOption,
    console,
    data_dir,
)

app = typer.Typer(help="The data directory: list, verify, fetch and inspect datasets.", no_args_is_help=True)


@app.command("list")
def data_list(data_dir_: DataDirOption = None) -> None:
    """Known datasets, where each file is, and whether it matches its pinned checksum."""
    from rich.table import Table

    from toxbench.data.datasets import listed_files
    from toxbench.run.replay import published_files

    data = data_dir(data_dir_)
    out = console()
    out.print(f"data directory: {data.root} (from {data.source})")
    table = Table("dataset", "description", "file", "status")
    style = {"ok": "green", "missing": "yellow", "mismatch": "red"}
    for name, description, rel, state in listed_files(data):
        table.add_row(name, description, str(data.root / rel), f"[{style[state]}]{state}[/]")
    out.print(table)
    states = [data.status(rel) for rel in published_files(data)]
    out.print(
        f"published prediction files: {len(states)} ({states.count('ok')} ok, {states.count('missing')} missing, "
        f"{states.count('mismatch')} mismatch) under {data.root / 'toxifrench/predictions'}"
    )


@app.command("verify")
def data_verify(data_dir_: DataDirOption = None) -> None:
    """Check the sha256 of every manifest file; exit 1 if any is missing or differs."""
    data = data_dir(data_dir_)
    out = console()
    bad = 0
    for rel in data.known_files:
        state = data.status(rel)
        if state != "ok":
            bad += 1
            out.print(f"{state:8s} {data.root / rel}")
    total = len(data.known_files)
    out.print(f"{total - bad} of {total} files verified in {data.root}")
    if bad:
        out.print("fix: `toxbench data fetch` downloads missing files; add --force to replace differing ones")
        raise typer.Exit(1)


@app.command("fetch")
def data_fetch(
    files: Annotated[
        list[str] | None, typer.Argument(help="Manifest paths to fetch (default: all).", show_default=False)
    ] = None,
    data_dir_: DataDirOption = None,
    mirror: MirrorOption = None,
    force: Annotated[bool, typer.Option("--force", help="Re-download files whose checksum differs.")] = False,
) -> None:
    """Download the pinned upstream files, verify their sha256 and place them atomically."""
    data = data_dir(data_dir_, mirror)
    out = console()
    out.print(f"data directory: {data.root}")
    outcomes = data.fetch(
        files or None,
        force=force,
        on_file=lambda rel, outcome: outcome != "present" and out.print(f"{outcome:8s} {rel}"),
    )
    failed = [rel for rel, outcome in outcomes.items() if outcome.startswith(("failed", "mismatch"))]
    fetched = sum(1 for o in outcomes.values() if o == "fetched")
    out.print(f"{fetched} fetched, {len(outcomes) - fetched - len(failed)} already present, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@app.command("show")
def data_show(
    dataset: Annotated[
        str, typer.Argument(help="A dataset name (toxifrench, rtplx:FR, ...) or a path to a CSV/JSONL file.")
    ],
    data_dir_: DataDirOption = None,
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    id_col: IdColOption = None,
    lang_col: LangColOption = None,
    delimiter: DelimiterOption = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of a user file without a language column.")] = "und",
    rows: Annotated[int, typer.Option("--rows", help="How many rows to show.")] = 5,
    spans_col: SpansColOption = None,
) -> None:
    """Counts, class balance, languages and a few rows of a dataset (gold toxic spans highlighted)."""
    from rich.markup import escape
    from rich.table import Table

    from toxbench.data.datasets import load_dataset, profile, release_overlap
    from toxbench.data.spans import highlight
    from toxbench.data.tables import Columns

    data = data_dir(data_dir_)
    ds = load_dataset(
        dataset, data, Columns(text_col, label_col, id_col, lang_col, spans_col, delimiter), default_lang=lang
    )
    p = profile(ds)
    out = console()
    out.print(f"[bold]{ds.name}[/] — {ds.description}")
    out.print(
        f"samples: {p.n}   toxic (1): {p.toxic} ({100 * p.toxic / p.n:.1f}%)   non-toxic (0): {p.non_toxic} ({100 * p.non_toxic / p.n:.1f}%)"
    )
    out.print("languages: " + ", ".join(f"{k} {v}" for k, v in p.languages))
    out.print(f"identity sha256: {ds.sha256[:16]}…")
    note = release_overlap(ds, data)
    if note:
        out.print(f"note: {note}")
    annotated = [s for s in ds.samples if s.spans is not None]
    if annotated:
        with_spans = sum(bool(s.spans) for s in annotated)
        toxic_chars = sum(e - b for s in annotated for b, e in s.spans)
        out.print(
            f"gold spans: {with_spans} of {len(annotated)} annotated samples have a span ({len(annotated) - with_spans} none); "
            f"{toxic_chars} of {sum(len(s.text) for s in annotated)} characters are in a span"
        )
    for line in ds.notes:
        out.print(f"note: {line}")
    table = Table("id", "label", "text" + (" (gold spans ⟦marked⟧)" if annotated else ""))
    for sample in ds.samples[:rows]:
        if sample.spans is None:
            text = " ".join(sample.text.split())
            shown = escape(text[:100] + ("…" if len(text) > 100 else ""))
        else:  # offsets index the text as stored: newlines become spaces one for one, nothing is collapsed
            text = sample.text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
            cut = 300
            spans = [(b, min(e, cut)) for b, e in sample.spans if b < cut]
            shown = highlight(text[:cut], spans, "[bold red]⟦", "⟧[/]", escape) + ("…" if len(text) > cut else "")
        table.add_row(sample.id, str(sample.label), shown)
    out.print(table)


@app.command("training-set")
def data_training_set(
    data_dir_: DataDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the selection as JSON.")] = False,
) -> None:
    """What the baseline and fine-tuning train on: rows kept, rows left out and why (near copies of
    benchmark texts listed), and the class balance."""
    import json

    from toxbench.data.annotated import NEAR_COPY_THRESHOLD, annotated_selection

    summary = annotated_selection(data_dir(data_dir_)).summary()
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    out = console()
    out.print(f"annotated rows read: {summary['read']}   kept: {summary['kept']}")
    out.print("left out: " + ", ".join(f"{reason.replace('_', ' ')} {n}" for reason, n in summary["removed"].items()))
    for near in summary["near_copies"]:
        out.print(
            f"  near copy (5-gram Jaccard {near['similarity']:.3f} >= {NEAR_COPY_THRESHOLD}): {near['source']} row {near['row_id']} "
            f"~ {near['dataset']} sample {near['sample_id']}"
        )
    for source, counts in summary["balance"].items():
        out.print(f"{source}: {counts[1]} toxic, {counts[0]} non-toxic")
