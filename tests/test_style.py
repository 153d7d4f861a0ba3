"""ruff keeps the code base's lint rules and format (configured in pyproject.toml): a change that
breaks either fails here, so CI's one test command checks them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff") or pytest.fail("ruff is not installed: pip install -e '.[dev]'")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_passes():
    done = ruff("check", "--no-cache", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_check_passes():
    done = ruff("format", "--check", "--no-cache", ".")
    assert done.returncode == 0, "run `ruff format .`:\n" + done.stdout + done.stderr


def test_the_pinned_ruff_is_the_one_installed():
    pinned = next(line for line in (ROOT / "pyproject.toml").read_text().splitlines() if '"ruff==' in line)
    version = subprocess.run([shutil.which("ruff") or "ruff", "--version"], capture_output=True, text=True).stdout
    assert pinned.split("==")[1].split('"')[0] in version, (pinned, version, sys.executable)
