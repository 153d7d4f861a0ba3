"""`toxbench prompt show`: the exact messages a run would send for one sample, to read or diff."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from toxbench.cli._options import (
    DataDirOption,
    DelimiterOption,
    IdColOption,
    LabelColOption,
    LangColOption,
    SeedOption,
    ShotPoolOption,
    ShotsOption,
    TextColOption,
    data_dir,
)
from toxbench.errors import ToxbenchError

app = typer.Typer(help="Prompts: see exactly what a run sends.", no_args_is_help=True)


@app.command("show")
def show(
    sample: Annotated[str, typer.Option("--sample", help="A sample id of the dataset (see `toxbench data show`).")],
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="A dataset name or a path to a CSV/JSONL file, as in `run`.")
    ] = "toxifrench",
    prompt: Annotated[
        str, typer.Option("--prompt", help="Prompt set (simple, detailed) or a .toml file.")
    ] = "detailed",
    lang: Annotated[
        str | None, typer.Option("--lang", help="Prompt language (fr, en); default: the dataset's, as in `run`.")
    ] = None,
    shots: ShotsOption = "0",
    seed: SeedOption = 0,
    shot_pool: ShotPoolOption = "first",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the messages as a JSON list of {role, content}.")
    ] = False,
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    id_col: IdColOption = None,
    lang_col: LangColOption = None,
    delimiter: DelimiterOption = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Print the messages a run with these options sends for one sample, byte for byte."""
    from toxbench.data.datasets import load_dataset
    from toxbench.data.tables import Columns
    from toxbench.run.prompts import make_renderer, run_language

    data = data_dir(data_dir_)
    loaded = load_dataset(dataset, data, Columns(text_col, label_col, id_col, lang_col, delimiter=delimiter))
    found = next((s for s in loaded.samples if s.id == sample), None)
    if found is None:
        examples = ", ".join(s.id for s in loaded.samples[:3])
        raise ToxbenchError(
            f"--sample {sample!r}: no such id in {loaded.name}; ids look like {examples} (see `toxbench data show {dataset}`)"
        )
    run_lang = run_language(prompt, lang, [s.lang for s in loaded.samples], data)
    messages = make_renderer(prompt, run_lang, shots, seed, data, shot_pool).messages(found.text)
    if as_json:
        typer.echo(json.dumps(messages, ensure_ascii=False, indent=2))
        return
    for message in messages:
        typer.echo(f"----- {message['role']} ({len(message['content'])} characters) -----")
        typer.echo(message["content"], nl=not message["content"].endswith("\n"))
