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
    opened = toxbench.load_run(result.run_dir.name, tmp_path / "runs")
    assert opened.dir == result.run_dir and opened.metrics == result.metrics
    listed = toxbench.list_runs(tmp_path / "runs")
    assert list(listed["run_dir"]) == [result.run_dir] and list(listed["status"]) == ["complete"]
    assert listed.loc[0, "label"] == "baseline:tfidf-char-lr" and listed.loc[0, "recorded"] == 10


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


def test_a_runs_records_are_a_dataframe_of_what_was_recorded(tmp_path, dataset, data_root):
    result = toxbench.evaluate("baseline", str(dataset), runs_dir=tmp_path / "runs", data_dir=data_root)
    frame = result.records
    lines = [json.loads(line) for line in (result.run_dir / "predictions.jsonl").read_text().splitlines()]
    assert list(frame.columns)[:4] == ["sample_id", "pred", "status", "score"] and len(frame) == 10
    assert frame.to_dict("records") == lines  # every field, as written
    assert (frame["pred"] == frame["gold"]).mean() == pytest.approx(result.metrics.accuracy)


def test_leaderboard_compare_sweep_and_report_return_objects_and_frames(tmp_path, dataset, data_root):
    runs = tmp_path / "runs"
    a = toxbench.evaluate("baseline", str(dataset), runs_dir=runs, data_dir=data_root)
    b = toxbench.evaluate("baseline", str(dataset), runs_dir=runs, data_dir=data_root, model_args={"C": 0.01})

    (board,) = toxbench.leaderboard(
        str(dataset), runs_dir=runs, out=tmp_path / "board", published=False, data_dir=data_root
    )
    frame = board.frame()
    assert set(frame["run_dir"]) == {a.run_dir, b.run_dir} and list(frame["accuracy"]) == sorted(
        [a.metrics.accuracy, b.metrics.accuracy], reverse=True
    )
    csv_rows = (tmp_path / "board" / "leaderboard.csv").read_text().splitlines()
    assert len(csv_rows) == 3  # the same board the files hold
    with pytest.raises(ToxbenchError, match="use ranked, subset or fitted"):
        board.frame("partial")

    comparison = toxbench.compare(a.run_dir, b.run_dir, runs_dir=runs)
    disagreements = comparison.frame()
    assert comparison.n_common == 10 and len(disagreements) == comparison.only_a_right + comparison.only_b_right + sum(
        d.pred_a == d.pred_b for d in comparison.disagreements
    )
    assert list(disagreements.columns) == ["sample_id", "gold", "pred_a", "pred_b"]

    sweep_file = tmp_path / "mini.toml"
    sweep_file.write_text(
        f'name = "mini"\ndatasets = ["{dataset.as_posix()}"]\nprompts = ["simple", "detailed"]\n'
        '[[models]]\nmodel = "baseline"\n',
        encoding="utf-8",
    )
    made = toxbench.sweep(sweep_file, runs_dir=runs, out=tmp_path / "sweep", data_dir=data_root)
    table = made.frame()
    assert list(table["config"]) == ["simple 0-shot", "detailed 0-shot"]
    assert list(table["accuracy"]) == [a.metrics.accuracy] * 2 and list(table["n"]) == [10, 10]
    assert made.csv.exists() and made.svg.exists() and set(made.run_dirs) == {a.run_dir}  # the baseline reads no prompt
    with pytest.raises(ToxbenchError, match="unknown option concurency"):
        toxbench.sweep(sweep_file, runs_dir=runs, concurency=2)

    page = toxbench.report(tmp_path / "report", runs_dir=runs, results=tmp_path, data_dir=data_root)
    explorer = (page.parent / "explorer" / "0.js").read_text(encoding="utf-8")  # the run's samples, beside the page
    assert (
        page.name == "index.html"
        and a.run_dir.name in explorer
        and "<h3>sweep</h3>" in page.read_text(encoding="utf-8")
    )


def test_the_public_api_is_listed_and_documented():
    import importlib

    assert set(toxbench._API) == set(importlib.import_module("toxbench.api").__all__)  # the lazy list is the module's
    for name in toxbench.__all__:
        assert getattr(toxbench, name) is not None
        if name != "__version__":
            assert getattr(toxbench, name).__doc__, name
    assert set(toxbench.__all__) <= set(dir(toxbench))
