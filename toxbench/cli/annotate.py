"""`toxbench annotate`: agreement statistics and the high-confidence rule on annotation tables
(the ToxiFrench paper's Section 3). `toxifrench-agreement` names the release's 500-comment
agreement file in the data directory; any CSV/JSONL with the named columns works too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from toxbench.cli._options import DataDirOption, console, data_dir
from toxbench.errors import DataError

app = typer.Typer(help="Annotation: agreement statistics (Table 2) and the high-confidence rule.", no_args_is_help=True)
RELEASE_AGREEMENT = "toxifrench/cot/agreement_checking.csv"
TableArgument = Annotated[str, typer.Argument(help="A CSV/JSONL annotation table, or toxifrench-agreement (the release's 500 comments).")]


def _column(table: str, column: str, data_dir_, allowed=None) -> list[float]:
    from toxbench.data.tables import iter_rows

    path = data_dir(data_dir_).path(RELEASE_AGREEMENT) if table == "toxifrench-agreement" else Path(table)
    if not path.is_file():
        raise DataError(f"{path}: no such file; give an annotation table (CSV/JSONL) or toxifrench-agreement")
    values = []
    for line, row in iter_rows(path):
        if column not in row:
            raise DataError(f"{path}: no column {column!r} (columns: {', '.join(row)}); name the right one")
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            raise DataError(f"{path}: line {line}: {column} = {row[column]!r} is not a number; fix or remove the row") from None
        if allowed is not None and value not in allowed:
            raise DataError(f"{path}: line {line}: {column} = {row[column]!r}; expected one of {', '.join(f'{a:g}' for a in sorted(allowed))}")
        values.append(value)
    return values


@app.command("agreement")
def annotate_agreement(
    table: TableArgument,
    first: Annotated[str, typer.Option("--first", help="The first labels, 0/1.")] = "annotator's conclusion",
    second: Annotated[str, typer.Option("--second", help="The second labels: 0/1, or a re-label on 0/0.25/0.75/1 (no, maybe no, maybe yes, yes).")] = "2nd annotation score",
    out: Annotated[Optional[Path], typer.Option("--out", help="Write agreement.md and agreement.json here.")] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Percent agreement (Wilson 95%), Cohen's kappa and the Table 2 breakdown of two label columns;
    on the release's file, the differences from the paper's printed Table 2."""
    from toxbench._util import write_atomic
    from toxbench.analysis.agreement import ROW_NAMES, agreement, paper_differences, validation_table

    a = [int(v) for v in _column(table, first, data_dir_, {0.0, 1.0})]
    b = _column(table, second, data_dir_, {0.0, 0.25, 0.75, 1.0})
    overall = agreement(a, [int(v > 0.5) for v in b])
    breakdown = validation_table(a, b)
    notes = paper_differences(breakdown) if table == "toxifrench-agreement" else []
    lines = [f"# Agreement: {first} vs {second}", "", f"{len(a)} comments ({table}). Intervals are Wilson 95%; the second label is grouped yes above 0.5.", "",
             f"- agreement: {overall['agreement'].text()}", f"- Cohen's kappa: {overall['kappa']:.3f}", "",
             "| second label | first: toxic (1) | first: non-toxic (0) |", "|---|---|---|"]
    lines += [f"| {ROW_NAMES[row]} | {breakdown[1][row].text()} | {breakdown[0][row].text()} |" for row in ROW_NAMES]
    if notes:
        lines += ["", "## The paper's printed Table 2 against the release's file", "", *[f"- {n}" for n in notes]]
    text = "\n".join(lines) + "\n"
    console().print(text, markup=False)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "agreement.md", text)
        payload = {"table": table, "first": first, "second": second, "n": len(a), "agreement": overall["agreement"].as_dict(),
                   "kappa": overall["kappa"], "breakdown": {("toxic" if c else "non_toxic"): {r: p.as_dict() for r, p in rows.items()}
                                                           for c, rows in breakdown.items()}, "paper_differences": notes}
        write_atomic(out / "agreement.json", json.dumps(payload, indent=2) + "\n")


@app.command("rule")
def annotate_rule(
    table: TableArgument,
    threshold: Annotated[float, typer.Option("--threshold", help="Auto-label non-toxic below this 0-10 score (the paper does not print its own; 4 fits its rubric).")] = 4.0,
    conclusion: Annotated[str, typer.Option("--conclusion-col", help="The model's 0/1 conclusion.")] = "conclusion",
    score: Annotated[str, typer.Option("--score-col", help="The model's 0-10 toxicity score.")] = "note",
    human: Annotated[Optional[str], typer.Option("--human-col", help="Human 0/1 labels, to measure the rule against (optional).")] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """The high-confidence rule: which comments are auto-labelled non-toxic (the model concluded
    non-toxic, or scored below the threshold); with human labels, how often humans agree."""
    from toxbench.analysis.agreement import high_confidence, rule_report

    conclusions = [int(v) for v in _column(table, conclusion, data_dir_, {0.0, 1.0})]
    scores = _column(table, score, data_dir_)
    humans = [int(v) for v in _column(table, human, data_dir_, {0.0, 1.0})] if human else None
    report = rule_report(high_confidence(conclusions, scores, threshold), humans)
    out = console()
    out.print(f"high-confidence rule (concluded non-toxic, or score < {threshold:g}): covers {report['coverage'].text()} comments; "
              f"the other {report['coverage'].n - report['coverage'].k} go to human annotators", markup=False)
    if "agreement" in report:
        out.print(f"humans call non-toxic {report['agreement'].text()} of the covered comments", markup=False)
