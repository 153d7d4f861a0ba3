"""The documentation cannot drift from the code: the site builds with `mkdocs build --strict` (its
reference pages generated from the code), every `toxbench` command in the docs, README and
CONTRIBUTING parses against the real CLI, and every shell and Python block runs, page by page in
a fresh folder, unless it says why not (`<!-- docs: not run (why) -->` on the line before it)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main

from toxbench.cli import app

ROOT = Path(__file__).parents[1]
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
SHELL, PYTHON = {"bash", "sh"}, {"python"}
NOT_RUN = re.compile(r"^<!-- docs: not run \((.+)\) -->$")
FENCE = re.compile(r"^```(\S*)")


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    not_run: str | None  # why, when the block is not run here

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").split("\n")
    out, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            reason = NOT_RUN.match(before)
            out.append(Block(page, i + 1, fence[1], "\n".join(lines[i + 1 : end]), reason[1] if reason else None))
            i = end
        i += 1
    return out


ALL = [b for page in PAGES for b in blocks(page)]


def commands(code: str) -> list[list[str]]:
    """The `toxbench` command lines of a block, continuation lines joined, as argument lists."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.split("\n"):
        for part in re.split(r"\s(?:;|&&|\|\|?)\s", line):
            words = shlex.split(part, comments=True)
            while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
                words = words[1:]
            if "-m" in words and words[words.index("-m") + 1 : words.index("-m") + 2] == ["toxbench"]:
                words = words[words.index("-m") + 1 :]
            if words[:1] == ["toxbench"]:
                out.append(words[1:])
    return out


def test_every_block_with_commands_has_a_language():
    bare = [b.where for b in ALL if not b.lang and re.search(r"^\s*toxbench ", b.code, re.M)]
    assert not bare, f"give these blocks a language (bash to run, text for a synopsis): {bare}"


def test_every_toxbench_command_in_the_docs_parses():
    root = typer.main.get_command(app)
    checked, problems = 0, []
    for block in ALL:
        if block.lang not in SHELL:
            continue
        for words in commands(block.code):
            command, args, path = root, list(words), ["toxbench"]
            while hasattr(command, "commands") and args and not args[0].startswith("-"):
                name = args.pop(0)
                if name not in command.commands:
                    problems.append(f"{block.where}: no command {' '.join([*path, name])}")
                    break
                command, path = command.commands[name], [*path, name]
            else:
                try:
                    command.make_context(path[-1], args, resilient_parsing=False)
                    checked += 1
                except Exception as exc:  # click's usage errors: a renamed option, a bad value
                    if type(exc).__name__ != "Exit":
                        problems.append(f"{block.where}: {' '.join(words)}: {exc}")
                    else:
                        checked += 1
    assert not problems, "\n".join(problems)
    assert checked > 60  # the parser found the commands


RUNNABLE_PAGES = sorted({b.page for b in ALL if b.not_run is None and b.lang in SHELL | PYTHON})


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_page_runs(page, tmp_path, data_root, models_dir):
    for folder in ("experiments", "examples"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    env = {
        **os.environ,
        "TOXBENCH_DATA_DIR": str(data_root),
        "TOXBENCH_CACHE": str(tmp_path / "cache.sqlite"),
        "TOXBENCH_REGISTRY": str(tmp_path / "registry"),
        "COLUMNS": "120",
    }
    runnable = [b for b in blocks(page) if b.not_run is None and b.lang in SHELL | PYTHON]
    python_so_far: list[str] = []  # a page's Python blocks run as one script: later blocks use earlier names
    for block in runnable:
        if block.lang in SHELL:
            argv = ["bash", "-euo", "pipefail", "-c", block.code]
        else:
            python_so_far.append(block.code)
            if block is not [b for b in runnable if b.lang in PYTHON][-1] and _next_is_python(runnable, block):
                continue
            argv = [sys.executable, "-c", "\n\n".join(python_so_far)]
            python_so_far = []
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (
            f"{block.where} failed ({done.returncode}):\n{block.code}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


def _next_is_python(runnable: list[Block], block: Block) -> bool:
    later = runnable[runnable.index(block) + 1 :]
    return bool(later) and later[0].lang in PYTHON


def test_mkdocs_build_strict(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's end-of-life banner
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "toxbench run" in cli and "--shot-pool" in cli and "toxbench finetune sft" in cli
    adapters = (tmp_path / "site" / "reference" / "adapters" / "index.html").read_text(encoding="utf-8")
    assert "share_prefix" in adapters and "label_policy" in adapters
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "load_run" in api and "A recorded run by directory" in api
