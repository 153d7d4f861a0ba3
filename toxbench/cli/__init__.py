"""The `toxbench` command: wires the command groups; each command parses its options and calls the
library (toxbench.data, .run, .analysis, .finetune). Imports of the library happen inside each
command, so `toxbench --help` stays fast and never imports torch, scikit-learn or a provider SDK.
Every `ToxbenchError` is printed as one line with exit code 2."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated

import typer

from toxbench import __version__
from toxbench.cli import annotate, calibrate, data, ensemble, explain, prompt, robustness, run, runs, train
from toxbench.errors import ToxbenchError
from toxbench.redaction import redact

app = typer.Typer(
    help="Benchmark toxicity detectors from records you can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)  # --install-completion / --show-completion for bash, zsh, fish


def _examples(*lines: str) -> str:
    """A command's --help epilog: an example per paragraph (rich keeps blank-line paragraphs)."""
    return "Examples:\n\n" + "\n\n".join(lines)


EXAMPLES = {
    "run": _examples(
        "toxbench run --model openai:gpt-4o-mini --dataset toxifrench --prompt detailed --shots 4",
        "toxbench run --model hf:smollm2-135m-instruct --model-arg mode=score --sample 200",
        "toxbench run --model baseline --dataset my_comments.csv --text-col body --label-col toxic",
    ),
    "sweep": _examples(
        "toxbench sweep experiments/icl-table5.toml --dry-run",
        "toxbench sweep experiments/icl-table5.toml --source published",
    ),
    "leaderboard": _examples(
        "toxbench leaderboard --dataset toxifrench --out results/toxifrench",
        "toxbench leaderboard --dataset my_comments.csv --runs runs --no-published --out board",
    ),
    "compare": _examples(
        "toxbench compare gpt-4o-mini-simple-tf-fr gpt-4o-detailed-tf-fr --runs runs",
        "toxbench compare RUN_A RUN_B --show 0 --json comparison.json",
    ),
    "adapters": _examples(
        "toxbench adapters --wide",
        "toxbench adapters vllm",
    ),
    "report": _examples(
        "toxbench report --runs runs --out results/report",
    ),
    "paper": _examples(
        "toxbench paper --out results/paper",
    ),
    "perturb": _examples(
        "toxbench perturb toxifrench --transform leetspeak --seed 0",
        "toxbench perturb toxifrench --transform phonetic@0.3,sms --out perturbed",
        "toxbench perturb --from perturbed/toxifrench-leetspeak-0.5-s0.provenance.json",
    ),
    "robustness": _examples(
        "toxbench robustness --model baseline --transform leetspeak --transform phonetic --transform counterfactual",
        "toxbench robustness --model openai:gpt-4o-mini --transform homoglyphs --sample 200 --batch",
    ),
}
app.add_typer(data.app, name="data")
app.add_typer(runs.app, name="runs")
app.add_typer(prompt.app, name="prompt")
app.add_typer(train.finetune_app, name="finetune")
app.add_typer(train.models_app, name="models")
app.add_typer(annotate.app, name="annotate")
app.command("run", epilog=EXAMPLES["run"])(run.run)
app.command("sweep", epilog=EXAMPLES["sweep"])(run.sweep)
app.command("adapters", epilog=EXAMPLES["adapters"])(run.adapters)
app.command("leaderboard", epilog=EXAMPLES["leaderboard"])(runs.leaderboard)
app.command("compare", epilog=EXAMPLES["compare"])(runs.compare)
app.command("agreement")(runs.agreement)
app.command("report", epilog=EXAMPLES["report"])(runs.report)
app.command("paper", epilog=EXAMPLES["paper"])(runs.paper)
app.command("explain")(explain.explain)
app.command("spans")(explain.spans)
app.command("ensemble")(ensemble.ensemble)
app.command("calibrate")(calibrate.calibrate)
app.command("perturb", epilog=EXAMPLES["perturb"])(robustness.perturb)
app.command("robustness", epilog=EXAMPLES["robustness"])(robustness.robustness)


def _one_line_listings(*apps: typer.Typer) -> None:
    """Rich keeps a docstring's line breaks in the command listings (`toxbench --help`), so a wrapped
    first paragraph broke mid-sentence there; each listing gets that paragraph as one line."""
    for each in apps:
        for info in each.registered_commands:
            if info.short_help is None and info.callback is not None and info.callback.__doc__:
                info.short_help = " ".join(inspect.cleandoc(info.callback.__doc__).split("\n\n")[0].split())


_one_line_listings(app, data.app, runs.app, prompt.app, train.finetune_app, train.models_app, annotate.app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"toxbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show the libraries' own logs: weight-loading bars, load reports, deprecation warnings.",
        ),
    ] = False,
) -> None:
    """toxbench: datasets, runs, metrics and leaderboards for toxicity detection."""
    if verbose:
        import os

        os.environ["TOXBENCH_VERBOSE"] = "1"


def main() -> None:
    try:
        app()
    except ToxbenchError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; what was recorded is kept, run the same command again to resume", file=sys.stderr)
        sys.exit(130)
