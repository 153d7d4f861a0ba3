"""Shared fixtures. The real data comes from TOXBENCH_DATA_DIR (CI points it at ../shared/datasets);
tests that need it fail loudly, rather than skip, when it is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("TOXBENCH_DATA_DIR")
    root = Path(env) if env else REPO.parent / "shared" / "datasets"
    if not (root / "toxifrench" / "benchmark" / "ToxiFrenchBalanced.csv").is_file():
        pytest.fail(f"no data directory at {root}: set TOXBENCH_DATA_DIR to a directory with the mirrored data")
    return root


@pytest.fixture(scope="session")
def data_root() -> Path:
    return _data_root()


@pytest.fixture(scope="session")
def data(data_root):
    from toxbench.data.datadir import DataDir

    return DataDir(data_root, auto_fetch=False)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `toxbench ARGS` in-process through main(); returns (exit code, stdout, stderr)."""
    from toxbench.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["toxbench", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return run


sys.path.insert(0, str(Path(__file__).parent))  # tests/fakes/


# Texts scripted for tests/fakes/providers.py: (text, gold). Markers make the server misbehave.
LIVE_TEXTS = [
    ("tu es un TOX idiot", 1),
    ("merci pour tout", 0),
    ("TOX [429] va-t'en", 1),
    ("bonne journée [500]", 0),
    ("TOX [slow] dégage", 1),
    ("super idée [badjson]", 0),
    ("TOX [filter] menace", 1),
    ("[refuse] question", 0),
    ("TOX [down] encore", 1),
    ("à demain", 0),
]


@pytest.fixture
def fake():
    """A provider server on 127.0.0.1 (tests/fakes/providers.py), closed after the test."""
    from fakes.providers import FakeProvider

    server = FakeProvider(slow_s=2.0)  # beyond `fast`'s timeout
    yield server
    server.close()


@pytest.fixture
def fast():
    """Execution settings for runs against the loopback provider: short timeouts, quick backoff.
    The timeout leaves room for an SDK's first call (lazy imports, TLS context) on a busy machine."""
    from toxbench.run.engine import ExecutionSettings

    return ExecutionSettings(concurrency=4, timeout_s=1.2, max_retries=2, backoff_initial_s=0.01, backoff_max_s=0.5)


@pytest.fixture
def dataset(tmp_path):
    """A CSV of LIVE_TEXTS with ids 0..9."""
    path = tmp_path / "comments.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("id,text,label\n" + "".join(f'{i},"{t}",{g}\n' for i, (t, g) in enumerate(LIVE_TEXTS)))
    return path


@pytest.fixture(scope="session", autouse=True)
def models_dir(tmp_path_factory):
    """Converted GGUF models and trained baselines go to one per-session directory (CI converts SmolLM2 once per run)."""
    path = tmp_path_factory.mktemp("models")
    old = os.environ.get("TOXBENCH_MODELS")
    os.environ["TOXBENCH_MODELS"] = str(path)
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield path
    if old is None:
        os.environ.pop("TOXBENCH_MODELS", None)
    else:
        os.environ["TOXBENCH_MODELS"] = old
