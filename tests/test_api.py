"""The Python API: `toxbench.evaluate` makes the run `toxbench run` makes (same id, records,
resume), from a script and from inside a running event loop (a notebook), through the real engine."""

import asyncio
import json
import subprocess
import sys

import pytest

import toxbench
from toxbench.errors import ToxbenchError

KEY = "sk-api-canary-0123456789abcdefghijkl"


def test_import_toxbench_loads_nothing_else():
    code = "import sys, toxbench; print(sorted(m for m in sys.modules if m.startswith('toxbench')))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "['toxbench']"
    )


def test_evaluate_makes_the_run_the_cli_makes(tmp_path, dataset, data_root, cli):
    result = toxbench.evaluate("baseline", str(dataset), runs_dir=tmp_path / "runs", data_dir=data_root)
    assert result.n == 10 and result.statuses == {"ok": 10} and 0 <= result.metrics.accuracy <= 1
    assert result.metrics.n == 10 and result.load().spec.adapter == "baseline"
    code, out, err = cli(
        "run", "-m", "baseline", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root, "--json"
    )
    assert code == 0 and json.loads(out)["run_dir"] == str(result.run_dir), (
        err
    )  # the same identity: the CLI finds the run
    assert toxbench.load_run(result.run_dir.name, tmp_path / "runs").dir == result.run_dir
    assert [d for d, _ in toxbench.list_runs(tmp_path / "runs")] == [result.run_dir]


def test_evaluate_works_inside_a_running_event_loop(tmp_path, fake, dataset, data_root, monkeypatch):
    """As in Jupyter: the caller's loop is running; the engine's requests go through the real SDK."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    async def notebook_cell():
        assert asyncio.get_running_loop().is_running()
        return toxbench.evaluate(
            "openai:gpt-4o-mini",
            str(dataset),
            runs_dir=tmp_path / "runs",
            data_dir=data_root,
            model_args={"base_url": f"{fake.url}/v1"},
            use_cache=False,
            timeout_s=1.2,
            max_retries=2,
            backoff_initial_s=0.01,
            backoff_max_s=0.5,
            concurrency=4,
        )

    first = asyncio.run(notebook_cell())
    assert first.n == 10 and first.statuses["ok"] == 7 and first.requests_sent >= 10
    sent = len(fake.requests)
    again = asyncio.run(notebook_cell())  # resumes: only the error sample is asked again
    assert again.run_dir == first.run_dir and len(fake.requests) - sent == again.requests_sent <= 3


def test_evaluate_names_an_unknown_option(tmp_path):
    with pytest.raises(ToxbenchError, match=r"unknown option tmeout_s; known: .*timeout_s"):
        toxbench.evaluate("baseline", runs_dir=tmp_path, tmeout_s=3)
