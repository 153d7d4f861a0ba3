"""`runs list` shows your runs apart from the release's replays, with a short id, filters and a
status that tells a run being written from one that was stopped; `runs rm` deletes runs but never
one in progress; `compare` (every command that takes a run) accepts a model name that picks one
run and suggests close names when none does."""

import re

import pytest
from filelock import FileLock

from toxbench.records import LOCK, RunSpec, RunWriter, run_label
from toxbench.types import Record


def _run(runs, adapter, model, dataset="toxifrench", n=4, finish=True, **spec):
    spec.setdefault("label", run_label(adapter, model, spec.get("adapter_params", {})))  # as a live run's
    writer = RunWriter(
        runs, RunSpec(adapter=adapter, model=model, dataset=dataset, dataset_sha256="x", **spec), n_expected=n
    )
    for i in range(n if finish else n // 2):
        writer.append(Record(sample_id=f"s{i}", pred=i % 2, status="ok", gold=1))
    run_dir = writer.dir
    writer.finish() if finish else writer.close()
    return run_dir


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    dirs = {
        "release": _run(runs, "replay", "gpt-4o", label="gpt-4o-detailed-tf-fr"),
        "openai": _run(runs, "openai", "gpt-4o-mini", adapter_params={"base_url": "http://127.0.0.1:9/v1"}),
        "baseline": _run(runs, "baseline", "tfidf-char-lr"),
        "rtplx": _run(runs, "baseline", "tfidf-char-lr", dataset="rtplx-fr"),
        "stopped": _run(runs, "hf", "smollm2-135m-instruct", finish=False),
    }
    return runs, dirs


def table(out: str) -> dict[str, list[str]]:
    """Rows of a rich table by their first cell (the short id)."""
    cells = ([c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 2)
    return {c[0]: c for c in cells if c[0]}


def test_runs_list_shows_your_runs_with_short_ids_and_says_what_it_left_out(runs, cli, monkeypatch):
    runs_dir, dirs = runs
    monkeypatch.setenv("COLUMNS", "160")
    code, out, err = cli("runs", "list", "--runs", runs_dir)
    rows = table(out)
    assert code == 0, err
    assert set(rows) == {d.name.rsplit("--", 1)[1][:8] for k, d in dirs.items() if k != "release"}
    assert "4 of yours shown; 1 replayed from the release not shown (--source all)" in " ".join(out.split())
    assert len(table(cli("runs", "list", "--runs", runs_dir, "--source", "all")[1])) == 5
    assert len(table(cli("runs", "list", "--runs", runs_dir, "--source", "release")[1])) == 1


def test_a_stopped_run_is_not_running_and_a_locked_one_is(runs, cli, monkeypatch):
    runs_dir, dirs = runs
    monkeypatch.setenv("COLUMNS", "160")
    short = dirs["stopped"].name.rsplit("--", 1)[1][:8]
    assert table(cli("runs", "list", "--runs", runs_dir)[1])[short][3] == "stopped"
    lock = FileLock(dirs["stopped"] / LOCK)  # another process writing the run holds this lock
    with lock:
        code, out, _ = cli("runs", "list", "--runs", runs_dir, "--status", "running")
        assert code == 0 and list(table(out)) == [short]
        code, _, err = cli("runs", "rm", short, "--runs", runs_dir, "--yes")
        assert code == 2 and "a toxbench process is writing this run" in err and "nothing deleted" in err
        assert dirs["stopped"].is_dir()


def test_runs_list_filters_by_dataset_model_and_status(runs, cli, monkeypatch):
    runs_dir, dirs = runs
    monkeypatch.setenv("COLUMNS", "160")
    by = lambda *a: sorted(table(cli("runs", "list", "--runs", runs_dir, *a)[1]))  # noqa: E731
    short = {k: d.name.rsplit("--", 1)[1][:8] for k, d in dirs.items()}
    assert by("--dataset", "rtplx*") == [short["rtplx"]]
    assert by("--model", "baseline") == sorted([short["baseline"], short["rtplx"]])
    assert by("--status", "stopped") == [short["stopped"]]
    assert by("--status", "complete", "--model", "gpt") == [short["openai"]]
    code, _, err = cli("runs", "list", "--runs", runs_dir, "--status", "done")
    assert code == 2 and "--status 'done': use complete, partial, running, stopped" in err


def test_runs_rm_deletes_what_it_names_after_confirmation(runs, cli, monkeypatch):
    runs_dir, dirs = runs
    short = dirs["baseline"].name.rsplit("--", 1)[1][:8]
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("n\n"))
    code, _, err = cli("runs", "rm", short, "--runs", runs_dir)
    assert code == 2 and "nothing deleted" in err and dirs["baseline"].is_dir()
    code, out, err = cli("runs", "rm", short, dirs["rtplx"].name, "--runs", runs_dir, "--yes")
    assert code == 0 and "deleted 2 runs" in out, err
    assert not dirs["baseline"].exists() and not dirs["rtplx"].exists() and dirs["openai"].is_dir()
    code, _, err = cli("runs", "rm", "nope", "--runs", runs_dir, "--yes")
    assert code == 2 and "no run 'nope'" in err


def test_compare_takes_a_model_name_that_picks_one_run(runs, cli):
    runs_dir, dirs = runs
    code, out, err = cli("compare", "openai:gpt-4o-mini", "gpt-4o-detailed-tf-fr", "--runs", runs_dir, "--show", "0")
    assert code == 0, err
    assert "A = openai:gpt-4o-mini base_url=http://127.0.0.1:9/v1" in out and "B = gpt-4o-detailed-tf-fr" in out
    code, _, err = cli("compare", "gpt-4o-mini", dirs["baseline"].name, "--runs", runs_dir, "--show", "0")
    assert code == 0, err  # the model alone, too


def test_a_model_name_with_several_runs_lists_them_and_a_typo_gets_suggestions(runs, cli):
    runs_dir, dirs = runs
    code, _, err = cli("compare", "baseline:tfidf-char-lr", "gpt-4o-detailed-tf-fr", "--runs", runs_dir)
    short = sorted(d.name.rsplit("--", 1)[1][:8] for k, d in dirs.items() if k in ("baseline", "rtplx"))
    assert code == 2 and "names 2 runs" in err and all(s in err for s in short) and "give one of these ids" in err
    code, _, err = cli("compare", "openai:gpt4o-mini", "gpt-4o-detailed-tf-fr", "--runs", runs_dir)
    assert code == 2 and re.search(r"no run 'openai:gpt4o-mini' under .*did you mean 'openai:gpt-4o-mini'", err)


def test_the_leaderboard_says_its_sources_and_can_rank_yours_alone(runs, cli, tmp_path):
    runs_dir, _ = runs  # the stopped run is not ranked; the rtplx run is another dataset's
    code, out, err = cli(
        "leaderboard", "-d", "toxifrench", "--runs", runs_dir, "--no-published", "--out", tmp_path / "b", "-q"
    )
    flat = " ".join(out.split())
    assert code == 0 and "sources: 1 replayed from the release's prediction files, 2 made with toxbench" in flat, err
    assert "Sources of the runs on this page: 1 replayed" in (tmp_path / "b" / "leaderboard.md").read_text()
    code, out, err = cli(
        "leaderboard", "-d", "toxifrench", "--runs", runs_dir, "--source", "yours", "--out", tmp_path / "y", "-q"
    )
    assert code == 0 and "sources: 2 made with toxbench" in " ".join(out.split()), err
    assert "gpt-4o-detailed-tf-fr" not in (tmp_path / "y" / "leaderboard.csv").read_text()
