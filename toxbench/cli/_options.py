"""Options and helpers every command group shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data directory (else $TOXBENCH_DATA_DIR, else the user cache directory).", show_default=False),
]
MirrorOption = Annotated[
    Optional[str],
    typer.Option("--mirror", help="Download from this base URL instead of the pinned upstream URLs (else $TOXBENCH_DATA_MIRROR).", show_default=False),
]
RunsOption = Annotated[Path, typer.Option("--runs", help="Runs directory.")]


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def data_dir(path: Path | None, mirror: str | None = None):
    from toxbench.data.datadir import DataDir

    return DataDir(path, mirror=mirror)


def pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}"
