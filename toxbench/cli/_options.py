"""Options and helpers every command group shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory (else $TOXBENCH_DATA_DIR, else the user cache directory).",
        show_default=False,
    ),
]
MirrorOption = Annotated[
    str | None,
    typer.Option(
        "--mirror",
        help="Download from this base URL instead of the pinned upstream URLs (else $TOXBENCH_DATA_MIRROR).",
        show_default=False,
    ),
]
RunsOption = Annotated[Path, typer.Option("--runs", help="Runs directory.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Every column (the default fits an 80-column terminal).")]
# How a dataset file's columns are named (`run`, `prompt show`, `data show`)
TextColOption = Annotated[
    str | None, typer.Option("--text-col", help="Text column of a dataset file (default: text or content).")
]
LabelColOption = Annotated[
    str | None, typer.Option("--label-col", help="0/1 label column of a dataset file (default: label).")
]
IdColOption = Annotated[
    str | None, typer.Option("--id-col", help="Id column of a dataset file (default: id; else a hash of the text).")
]
LangColOption = Annotated[
    str | None, typer.Option("--lang-col", help="Language column of a dataset file (default: lang).")
]
SpansColOption = Annotated[
    str | None,
    typer.Option(
        "--spans-col",
        help="Gold toxic spans column of a dataset file: offsets [0, 1, 2] or ranges [[0, 3]] (default: spans).",
    ),
]
DelimiterOption = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        help="Field separator of a .csv/.tsv dataset file: one character or tab (default: read from its header).",
        show_default=False,
    ),
]
# How a chat prompt is rendered (`run`, `prompt show`)
ModelArgOption = Annotated[
    list[str] | None, typer.Option("--model-arg", help="key=value for the adapter (repeatable), e.g. base_url=...")
]
PollIntervalOption = Annotated[float, typer.Option("--poll-interval", help="Seconds between polls of a batch.")]
ConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="Most requests in flight, lowered automatically on rate limits (default: the adapter's, see `toxbench adapters`).",
        show_default=False,
    ),
]
RpmOption = Annotated[float | None, typer.Option("--rpm", help="Requests per minute.")]
TpmOption = Annotated[float | None, typer.Option("--tpm", help="Tokens per minute (estimated).")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds per request.")]
MaxRetriesOption = Annotated[
    int, typer.Option("--max-retries", help="Retries per request on rate limits and transient errors.")
]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")]
ShotsOption = Annotated[str, typer.Option("--shots", help="0, 1t, 1nt, 4 or 10 few-shot examples.")]
SeedOption = Annotated[
    int,
    typer.Option("--seed", help="Seed of the few-shot examples' order (and, with --shot-pool random, of which ones)."),
]
ShotPoolOption = Annotated[
    str,
    typer.Option(
        "--shot-pool",
        help="first: the release's first k examples of each class (byte-exact); random: k drawn with --seed, for sensitivity studies.",
    ),
]


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def data_dir(path: Path | None, mirror: str | None = None):
    from toxbench.data.datadir import DataDir

    return DataDir(path, mirror=mirror)


def pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"


class Columns:
    """A table whose extra columns show only with --wide, so the default stays readable in an
    80-column terminal; cells are given by column name."""

    def __init__(self, *always: str, wide: tuple[str, ...] = ()) -> None:
        self.always, self.extra, self.rows = always, wide, []

    def add(self, **cells: str) -> None:
        self.rows.append(cells)

    def render(self, wide: bool, **table_options):
        from rich.markup import escape
        from rich.table import Table

        names = [*self.always, *(self.extra if wide else ())]
        table = Table(**table_options)
        for name in names:
            table.add_column(name, overflow="fold")  # wrap a long run name rather than cut it
        for cells in self.rows:
            table.add_row(*(escape(cells.get(n, "")) for n in names))  # "[detailed, 4-shot]" is text, not markup
        return table
