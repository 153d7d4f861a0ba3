"""Shell completion completes commands and options; every example in a command's --help parses
against that command (an option renamed without its example fails here)."""

import os
import shlex
import subprocess

import pytest
import typer.main

from toxbench.cli import EXAMPLES, app


def complete(words: str, cword: int) -> list[str]:
    env = {**os.environ, "_TOXBENCH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    return subprocess.run(["toxbench"], env=env, capture_output=True, text=True, check=True).stdout.split()


def test_bash_completion_completes_commands_and_options():
    assert complete("toxbench lead", 1) == ["leaderboard"]
    assert set(complete("toxbench run --sh", 2)) == {"--shots", "--shot-pool"}
    script = subprocess.run(
        ["toxbench", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        env={**os.environ, "SHELL": "/bin/bash"},
    )
    assert "_toxbench_completion" in script.stdout


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_help_example_parses(name, cli):
    code, out, _ = cli(name, "--help")
    assert code == 0 and "Examples:" in out
    command = typer.main.get_command(app).commands[name]
    for example in EXAMPLES[name].split("\n\n")[1:]:
        words = shlex.split(example)
        assert words[:2] == ["toxbench", name]
        command.make_context(name, words[2:])  # raises on an unknown option or a bad value
