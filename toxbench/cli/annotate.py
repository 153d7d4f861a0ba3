"""`toxbench annotate`: the chain-of-thought annotation pipeline, the high-confidence rule, the
human labelling queue and its merge, and agreement statistics (the ToxiFrench paper's Section 3).
A TABLE is an annotation directory (written by `annotate run`), any CSV/JSONL in the release's
layout, or `toxifrench-agreement` (the release's 500-comment agreement file in the data directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import (
    ConcurrencyOption,
    DataDirOption,
    MaxRetriesOption,
    ModelArgOption,
    NoCacheOption,
    RpmOption,
    TimeoutOption,
    TpmOption,
    console,
    data_dir,
)
from toxbench.errors import DataError

app = typer.Typer(
    help="Annotation: the CoT pipeline, the high-confidence rule, the human queue, agreement statistics (Table 2).",
    no_args_is_help=True,
)
RELEASE_AGREEMENT = "toxifrench/cot/agreement_checking.csv"
TableArgument = Annotated[
    str,
    typer.Argument(
        help="An annotation directory, a CSV/JSONL annotation table, or toxifrench-agreement (the release's 500 comments)."
    ),
]
ThresholdOption = Annotated[
    float,
    typer.Option(
        "--threshold",
        help="Auto-label non-toxic below this 0-10 score (the paper does not print its own; 4 fits its rubric).",
    ),
]


def _table(table: str, data_dir_) -> Path:
    from toxbench.analysis.annotation_queue import table_path

    return data_dir(data_dir_).path(RELEASE_AGREEMENT) if table == "toxifrench-agreement" else table_path(table)


def _column(path: Path, rows: list[tuple[int, dict]], column: str, allowed=None) -> list[float]:
    """One column of rows already read (line, row), as numbers; a missing column or a value
    outside `allowed` is a one-line error naming the line."""
    values = []
    for line, row in rows:
        if column not in row:
            raise DataError(f"{path}: no column {column!r} (columns: {', '.join(row)}); name the right one")
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: line {line}: {column} = {row[column]!r} is not a number; fix or remove the row"
            ) from None
        if allowed is not None and value not in allowed:
            raise DataError(
                f"{path}: line {line}: {column} = {row[column]!r}; expected one of {', '.join(f'{a:g}' for a in sorted(allowed))}"
            )
        values.append(value)
    return values


@app.command("agreement")
def annotate_agreement(
    table: TableArgument,
    first: Annotated[str, typer.Option("--first", help="The first labels, 0/1.")] = "annotator's conclusion",
    second: Annotated[
        str,
        typer.Option(
            "--second", help="The second labels: 0/1, or a re-label on 0/0.25/0.75/1 (no, maybe no, maybe yes, yes)."
        ),
    ] = "2nd annotation score",
    out: Annotated[Path | None, typer.Option("--out", help="Write agreement.md and agreement.json here.")] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Percent agreement (Wilson 95%), Cohen's kappa and the Table 2 breakdown of two label columns;
    on the release's file, the differences from the paper's printed Table 2."""
    from toxbench._util import writable_dir, write_atomic
    from toxbench.analysis.agreement import ROW_NAMES, agreement, paper_differences, validation_table
    from toxbench.data.tables import iter_rows

    if out is not None:
        writable_dir(out, "--out")
    path = _table(table, data_dir_)
    rows = list(iter_rows(path))
    a = [int(v) for v in _column(path, rows, first, {0.0, 1.0})]
    b = _column(path, rows, second, {0.0, 0.25, 0.75, 1.0})
    overall = agreement(a, [int(v > 0.5) for v in b])
    breakdown = validation_table(a, b)
    notes = paper_differences(breakdown) if table == "toxifrench-agreement" else []
    lines = [
        f"# Agreement: {first} vs {second}",
        "",
        f"{len(a)} comments ({table}). Intervals are Wilson 95%; the second label is grouped yes above 0.5.",
        "",
        f"- agreement: {overall['agreement'].text()}",
        f"- Cohen's kappa: {overall['kappa']:.3f}",
        "",
        "| second label | first: toxic (1) | first: non-toxic (0) |",
        "|---|---|---|",
    ]
    lines += [f"| {ROW_NAMES[row]} | {breakdown[1][row].text()} | {breakdown[0][row].text()} |" for row in ROW_NAMES]
    if notes:
        lines += ["", "## The paper's printed Table 2 against the release's file", "", *[f"- {n}" for n in notes]]
    text = "\n".join(lines) + "\n"
    console().print(text, markup=False)
    if out is not None:
        write_atomic(out / "agreement.md", text)
        payload = {
            "table": table,
            "first": first,
            "second": second,
            "n": len(a),
            "agreement": overall["agreement"].as_dict(),
            "kappa": overall["kappa"],
            "breakdown": {
                ("toxic" if c else "non_toxic"): {r: p.as_dict() for r, p in rows.items()}
                for c, rows in breakdown.items()
            },
            "paper_differences": notes,
        }
        write_atomic(out / "agreement.json", json.dumps(payload, indent=2) + "\n")


@app.command("rule")
def annotate_rule(
    table: TableArgument,
    threshold: ThresholdOption = 4.0,
    conclusion: Annotated[str, typer.Option("--conclusion-col", help="The model's 0/1 conclusion.")] = "conclusion",
    score: Annotated[str, typer.Option("--score-col", help="The model's 0-10 toxicity score.")] = "note",
    human: Annotated[
        str | None, typer.Option("--human-col", help="Human 0/1 labels, to measure the rule against (optional).")
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """The high-confidence rule: which comments are auto-labelled non-toxic (the model concluded
    non-toxic, or scored below the threshold); with human labels, how often humans agree."""
    from toxbench.analysis.agreement import rule_report
    from toxbench.analysis.annotation_queue import decide

    path = _table(table, data_dir_)
    decisions = decide(path, threshold, conclusion, score)
    finished = [d for d in decisions if not d.unfinished]
    humans = [int(v) for v in _column(path, [(d.line, d.row) for d in finished], human, {0.0, 1.0})] if human else None
    report = rule_report([d.covered for d in finished], humans)
    out = console()
    out.print(
        f"high-confidence rule (concluded non-toxic, or score < {threshold:g}): covers {report['coverage'].text()} comments; "
        f"the other {report['coverage'].n - report['coverage'].k} go to human annotators",
        markup=False,
    )
    unread = sum(d.unread for d in finished)
    if unread:
        out.print(
            f"{unread} of them had neither a readable conclusion nor a readable score (never covered)", markup=False
        )
    late = len(decisions) - len(finished)
    if late:
        out.print(
            f"{late} comments are not finished (a block pending, an error or a refusal) and are left out; "
            "run `toxbench annotate run` again to finish them",
            markup=False,
        )
    if "agreement" in report:
        out.print(f"humans call non-toxic {report['agreement'].text()} of the covered comments", markup=False)


@app.command("run")
def annotate_run(
    comments: Annotated[
        Path,
        typer.Argument(
            help="A CSV/JSONL of comments: a text column (text or content), optionally an id column (id or msg_id) and metadata such as deleted, banned."
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="A chat model, e.g. openai:gpt-4o-mini (the release's), mistral:..., hf:..."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="The annotation directory (resumed when it holds this same annotation).")
    ],
    model_arg: ModelArgOption = None,
    certainty: Annotated[
        bool, typer.Option("--certainty", help="Also run the release's optional certainty step (after the score).")
    ] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N comments.")] = None,
    concurrency: ConcurrencyOption = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5,
    no_cache: NoCacheOption = False,
    batch_api: Annotated[
        bool,
        typer.Option(
            "--batch-api",
            help="The provider's batch API, a batch per step (openai:, anthropic:, gemini:, mistral:; half price, within 24 h); the same command resumes polling.",
        ),
    ] = False,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between polls of a batch.")] = 30.0,
    text_col: Annotated[str | None, typer.Option("--text-col", help="Text column (default: text or content).")] = None,
    id_col: Annotated[
        str | None, typer.Option("--id-col", help="Id column (default: id or msg_id; else a hash of the text).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """Annotate comments with the release's chain-of-thought steps (explanation, tone, intention,
    category, labels, score, certainty with --certainty, conclusion), one run per step; the same command resumes."""
    from toxbench.adapters.registry import parse_model_args
    from toxbench.run.annotate import TABLE_FILE, AnnotateOptions, annotate
    from toxbench.run.engine import ExecutionSettings

    options = AnnotateOptions(
        comments,
        model,
        out,
        parse_model_args(model_arg or []),
        text_col,
        id_col,
        certainty,
        limit,
        not no_cache,
        batch_api,
        poll,
    )
    settings = ExecutionSettings(concurrency=concurrency, rpm=rpm, tpm=tpm, timeout_s=timeout, max_retries=max_retries)
    try:
        result = annotate(options, data_dir(data_dir_), settings, show_progress=not as_json)
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted: what was recorded is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    summary = {
        "out": str(result.out),
        "comments": result.n,
        "state": result.statuses,
        "blocks": result.blocks,
        "cost_usd": None if result.cost_usd is None else round(result.cost_usd, 6),
        "requests_sent": result.requests_sent,
        "cache_hits": result.cache_hits,
    }
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False))
        return
    printer = console()
    states = ", ".join(f"{k} {v}" for k, v in sorted(result.statuses.items(), key=lambda kv: -kv[1]))
    printer.print(
        f"{result.n} comments: {states}; "
        + (
            "through the Batch API"
            if batch_api
            else f"{result.requests_sent} requests sent, {result.cache_hits} from the cache"
        )
        + ("" if result.cost_usd is None else f", ${result.cost_usd:.4f}"),
        markup=False,
    )
    for step, counts in result.blocks.items():
        if set(counts) != {"ok"}:
            printer.print(f"  {step}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), markup=False)
    printer.print(f"table: {result.out / TABLE_FILE} (status and problems per comment)", markup=False)


@app.command("queue")
def annotate_queue(
    table: TableArgument,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="The CSV to write: the comments humans must label, most urgent first, with an empty label column.",
        ),
    ],
    threshold: ThresholdOption = 4.0,
    data_dir_: DataDirOption = None,
) -> None:
    """The comments the high-confidence rule does not cover, prioritised by moderation metadata
    (banned author, deleted message) where the table has it, then by the model's score."""
    from toxbench._util import write_atomic
    from toxbench.analysis.annotation_queue import decide, queue, queue_table

    decisions = decide(_table(table, data_dir_), threshold)
    todo = queue(decisions)
    write_atomic(out, queue_table(todo))
    late = sum(d.unfinished for d in decisions)
    printer = console()
    printer.print(
        f"{len(todo)} of {len(decisions)} comments to label -> {out} (the rule covers {sum(d.covered for d in decisions)}"
        f" at score < {threshold:g})",
        markup=False,
    )
    if late:
        printer.print(
            f"{late} comments are not finished and are not queued; run `toxbench annotate run` again first",
            markup=False,
        )


@app.command("merge")
def annotate_merge(
    directory: Annotated[Path, typer.Argument(help="The annotation directory the queue came from.")],
    labelled: Annotated[
        Path, typer.Argument(help="The labelled queue: msg_id and a 0/1 label per comment (empty: not labelled yet).")
    ],
    threshold: ThresholdOption = 4.0,
    label_col: Annotated[str, typer.Option("--label-col", help="The human label column.")] = "label",
) -> None:
    """Write DIRECTORY/labels.csv: the rule's non-toxic labels and the human labels, by msg_id;
    `toxbench finetune data --annotated DIRECTORY` reads it."""
    from toxbench._util import write_atomic
    from toxbench.analysis.annotation_queue import (
        LABELS_FILE,
        decide,
        labels_csv,
        merged_labels,
        read_human_labels,
        table_path,
    )

    if not directory.is_dir():
        raise DataError(
            f"{directory}: not a directory; give the annotation directory written by `toxbench annotate run`"
        )
    if not labelled.is_file():
        raise DataError(
            f"{labelled}: no such file; give the queue written by `toxbench annotate queue`, with its label column filled"
        )
    decisions = decide(table_path(directory), threshold)
    human, blank = read_human_labels(labelled, {d.id for d in decisions}, label_col)
    merged = merged_labels(decisions, human)
    write_atomic(directory / LABELS_FILE, labels_csv(merged))
    write_atomic(
        directory / "labels.json",
        json.dumps(
            {
                "threshold": threshold,
                "human_labels": str(labelled),
                "rule": sum(s == "rule" for *_, s in merged),
                "human": len(human),
                "unlabelled_in_queue": blank,
            },
            indent=2,
        )
        + "\n",
    )
    overridden = sum(d.covered and d.id in human for d in decisions)
    still = len(decisions) - len(merged)
    console().print(
        f"{directory / LABELS_FILE}: {len(merged)} labelled comments ({sum(s == 'rule' for *_, s in merged)} by the rule, {len(human)} by humans"
        + (f", {overridden} of them overriding the rule" if overridden else "")
        + f"); {still} still to label",
        markup=False,
    )
