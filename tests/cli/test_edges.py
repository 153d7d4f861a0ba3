"""Runs you can trust at the edges: options checked before any work, one-line errors that name the
file and the fix (exit 2, nothing half-written or flipped), subsets that never pass for full runs,
refusals that are not errors, latencies that are the provider's, damaged runs that block nothing."""

from __future__ import annotations

import json
import socket
import statistics
import time

import pytest

from toxbench.records import MANIFEST, PREDICTIONS, Run, iter_run_dirs
from toxbench.run.engine import ExecutionSettings
from toxbench.run.runner import RunOptions, execute

CANARY = "canary-key-0123456789abcdefghijklmnop"


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)


@pytest.fixture
def openai_run(cli, fake, dataset, data_root, tmp_path, key):
    """`toxbench run` against the loopback OpenAI server, with extra arguments."""

    def run(*extra, out=None, data_file=None):
        return cli(
            "run",
            "-m",
            "openai:gpt-4o-mini",
            "-d",
            data_file or dataset,
            "--model-arg",
            f"base_url={fake.url}/v1",
            "--lang",
            "fr",
            "--out",
            out or tmp_path / "runs",
            "--data-dir",
            data_root,
            "--timeout",
            "0.7",
            "--max-retries",
            "1",
            *extra,
        )

    return run


def one_line_error(code: int, out: str, err: str, *needles: str, progress: bool = False) -> None:
    """Exit 2 and one line on stderr holding the needles; nothing on stdout but a run's progress bar."""
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), (code, out, err)
    assert out == "" or (progress and "━" in out and "\n" not in out.strip()), out
    assert "Traceback" not in err and all(n in err for n in needles), err


@pytest.mark.parametrize("option,value", [("--shots", "3"), ("--shot-pool", "all")])
def test_prompt_options_are_checked_before_any_work(option, value, cli, fake, dataset, data_root, tmp_path, key):
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        option,
        value,
    )
    one_line_error(code, out, err, f"{option} {value!r}")
    assert fake.requests == [] and not (tmp_path / "runs").exists()


def write_csv(path, texts):
    path.write_text(
        "id,text,label\n" + "".join(f'{i},"{t}",{int("TOX" in t)}\n' for i, t in enumerate(texts)), encoding="utf-8"
    )
    return path


BAD_NUMBERS = [
    ("--limit", "0"),
    ("--limit", "-5"),
    ("--sample", "0"),
    ("--concurrency", "0"),
    ("--timeout", "0"),
    ("--timeout", "-1"),
    ("--rpm", "-1"),
    ("--tpm", "0"),
    ("--batch-size", "0"),
    ("--max-retries", "-1"),
]


@pytest.mark.parametrize("option,value", BAD_NUMBERS, ids=[f"{o}={v}" for o, v in BAD_NUMBERS])
def test_every_numeric_option_is_checked_before_any_work(option, value, cli, fake, dataset, data_root, tmp_path, key):
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        option,
        value,
    )
    one_line_error(code, out, err, f"{option} {value}")
    assert fake.requests == [] and not (tmp_path / "runs").exists()


def test_a_limited_run_is_its_own_subset_run(openai_run, tmp_path, data):
    code, out, _ = openai_run("--json")
    full = json.loads(out)
    code, out, err = openai_run("--json", "--limit", "3")
    assert code == 0, err
    limited = json.loads(out)
    assert limited["run_dir"] != full["run_dir"] and limited["n"] == 3  # not the 10 of the complete run
    assert Run.load(limited["run_dir"]).spec.subset == "first-3" and Run.load(full["run_dir"]).spec.subset is None
    code, out, _ = openai_run(
        "--json", "--limit", "50", "--no-retry-errors"
    )  # more than the dataset: the whole dataset, the same run
    assert json.loads(out)["run_dir"] == full["run_dir"] and json.loads(out)["requests_sent"] == 0


def test_a_failed_later_command_changes_nothing_on_disk(openai_run, tmp_path, fake, monkeypatch):
    _code, out, _err = openai_run("--json", "--no-retry-errors")
    run_dir = json.loads(out)["run_dir"]
    before = {p.name: p.read_bytes() for p in tmp_path.joinpath(run_dir).iterdir() if p.is_file()}
    assert json.loads(before[MANIFEST])["status"] == "complete"
    bad_prices = tmp_path / "prices.toml"
    bad_prices.write_text("this is = = not toml")
    one_line_error(*openai_run("--prices", bad_prices), str(bad_prices), "not valid TOML")
    corrupt = tmp_path / "cache.sqlite"
    corrupt.write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("TOXBENCH_CACHE", str(corrupt))
    one_line_error(*openai_run(), str(corrupt), "--no-cache")
    after = {p.name: p.read_bytes() for p in tmp_path.joinpath(run_dir).iterdir() if p.is_file()}
    assert after == before  # status, counts, records: untouched


def test_a_garbage_manifest_on_resume_is_one_line(openai_run, tmp_path):
    _code, out, _ = openai_run("--json")
    manifest = tmp_path.joinpath(json.loads(out)["run_dir"]) / MANIFEST
    manifest.write_text("{ not json")
    one_line_error(*openai_run(), str(manifest), "delete the run directory")
    assert manifest.read_text() == "{ not json"


def test_a_provider_content_filter_is_a_refusal_and_no_answer_at_all_fails(openai_run, tmp_path, fake):
    texts = write_csv(tmp_path / "filtered.csv", ["TOX [cfilter] menace", "bonjour"])
    code, out, err = openai_run("--json", data_file=texts)
    assert code == 0, err
    records = {r.sample_id: r for r in Run.load(json.loads(out)["run_dir"]).records}
    assert (records["0"].status, records["0"].pred, records["0"].attempts) == ("refused", None, 1)
    assert "content_filter" in records["0"].raw and records["1"].status == "ok"
    down = write_csv(tmp_path / "down.csv", ["TOX [down] a", "[down] b", "[down] c"])
    code, out, err = openai_run("--max-retries", "1", data_file=down)
    one_line_error(code, out, err, "no sample got an answer", "3 errors", "HTTP 500", progress=True)
    (run_dir,) = [d for d in iter_run_dirs(tmp_path / "runs") if Run.load(d).spec.dataset == str(down)]
    assert Run.load(run_dir).manifest.status == "running"  # never a complete run, never on a leaderboard


@pytest.mark.parametrize(
    "model", ["openai:gpt-4o-mini", "openai-moderation:omni-moderation-latest", "anthropic:claude-haiku-4-5"]
)
def test_valid_json_of_an_unexpected_shape_is_retried_not_a_traceback(model, tmp_path, fake, data, monkeypatch, fast):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    texts = write_csv(tmp_path / "odd.csv", ["TOX [nullmsg] a", "[nullbody] b", "TOX [emptyjson] c", "bonjour"])
    base_url = fake.url + ("" if model.startswith("anthropic") else "/v1")
    opts = RunOptions(
        model=model,
        dataset=str(texts),
        model_args={"base_url": base_url},
        runs_dir=tmp_path / "runs",
        use_cache=False,
        lang="fr",
    )
    records = {r.sample_id: r for r in Run.load(execute(opts, data, fast, show_progress=False).run_dir).records}
    assert {k: (r.status, r.attempts) for k, r in records.items()} == {
        "0": ("ok", 2),
        "1": ("ok", 2),
        "2": ("ok", 2),
        "3": ("ok", 1),
    }
    assert [records[k].pred for k in "0123"] == [1, 0, 1, 0]


def test_latency_is_the_final_attempts_send_to_answer(tmp_path, data, monkeypatch):
    from fakes.providers import FakeProvider

    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    server = FakeProvider(delay_s=0.2)  # every answer takes 0.2 s
    try:
        texts = write_csv(tmp_path / "t.csv", [f"message {i}" for i in range(11)] + ["bonjour [500]"])
        opts = RunOptions(
            model="openai:gpt-4o-mini",
            dataset=str(texts),
            model_args={"base_url": server.url + "/v1"},
            runs_dir=tmp_path / "runs",
            use_cache=False,
            lang="fr",
        )
        run = Run.load(
            execute(opts, data, ExecutionSettings(concurrency=2, backoff_initial_s=0.01), show_progress=False).run_dir
        )
    finally:
        server.close()
    latencies = [r.latency_s for r in run.records]
    # 12 answers two at a time take over a second; a latency that counted the wait for a slot would approach it
    assert all(0.19 <= x < 0.5 for x in latencies), latencies
    assert statistics.median(latencies) < 0.3 and [r.attempts for r in run.records][-1] == 2


@pytest.fixture
def not_a_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    return blocker / "out"  # a directory under a file can never be created


def test_an_output_directory_that_cannot_be_written_is_one_line(cli, not_a_dir, openai_run, tmp_path, data_root, fake):
    one_line_error(*openai_run(out=not_a_dir), str(not_a_dir), "--out")
    assert fake.requests == []
    one_line_error(
        *cli("leaderboard", "--runs", tmp_path / "lb-runs", "--out", not_a_dir, "--data-dir", data_root, "-q"),
        str(not_a_dir),
        "--out",
    )
    assert not (tmp_path / "lb-runs").exists()  # checked before replaying anything
    _code, out, _ = openai_run("--json")
    one_line_error(
        *cli("report", "--runs", tmp_path / "runs", "--out", not_a_dir, "--data-dir", data_root),
        str(not_a_dir),
        "--out",
    )
    sweep = tmp_path / "s.toml"
    sweep.write_text('name = "s"\n[[models]]\nmodel = "baseline"\n')
    one_line_error(
        *cli("sweep", sweep, "--runs", tmp_path / "sweep-runs", "--out", not_a_dir, "--data-dir", data_root),
        str(not_a_dir),
        "--out",
    )
    assert not (tmp_path / "sweep-runs").exists()
    run_dir = json.loads(out)["run_dir"]
    one_line_error(
        *cli("compare", run_dir, run_dir, "--runs", tmp_path / "runs", "--json", not_a_dir / "c.json", "--show", "0"),
        str(not_a_dir),
    )


def test_unknown_datasets_and_missing_runs_directories_are_errors(cli, tmp_path, data_root):
    one_line_error(
        *cli(
            "leaderboard",
            "--dataset",
            "nosuch",
            "--runs",
            tmp_path / "runs",
            "--out",
            tmp_path / "out",
            "--data-dir",
            data_root,
        ),
        "--dataset nosuch",
        "known: ",
        "toxifrench",
    )
    assert not (tmp_path / "out" / "leaderboard.csv").exists()
    one_line_error(*cli("runs", "list", "--runs", tmp_path / "missing"), str(tmp_path / "missing"), "--runs")


def test_an_offline_fetch_is_one_summary_line(cli, tmp_path):
    with socket.socket() as s:  # a port nobody listens on: every download is refused at once
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    code, out, err = cli("data", "fetch", "--data-dir", tmp_path / "empty", "--mirror", closed)
    assert (
        code == 2
        and err.count("\n") == 1
        and "171 of 171 files are not in" in err
        and "--mirror" in err
        and "Traceback" not in err
    )
    assert [line for line in out.splitlines() if line.strip()] == [f"data directory: {tmp_path / 'empty'}"]


def test_one_damaged_run_blocks_no_other(openai_run, cli, tmp_path, data_root):
    outs = [json.loads(openai_run("--json", *extra)[1]) for extra in ((), ("--limit", "4"), ("--limit", "6"))]
    torn, garbage, _fine = (tmp_path.joinpath(o["run_dir"]) for o in outs)
    with open(torn / PREDICTIONS, "ab") as fh:
        fh.write(b'{"sample_id": "x", "pred"')  # a crash mid-write
    (garbage / MANIFEST).write_text("garbage")
    code, out, err = cli("runs", "list", "--runs", tmp_path / "runs")
    assert code == 0 and "openai:gpt-4o-mini" in out
    assert err.count("skipped") == 2 and f"toxbench runs repair {torn}" in err and "delete the run directory" in err
    code, out, err = cli(
        "leaderboard",
        "--runs",
        tmp_path / "runs",
        "--out",
        tmp_path / "lb",
        "--no-published",
        "--data-dir",
        data_root,
        "-q",
        "--dataset",
        str(tmp_path / "comments.csv"),
    )
    assert code == 0 and "0 runs (+1 on part of it, ranked apart)" in out and err.count("skipped") == 2, err
    code, _, err = cli("report", "--runs", tmp_path / "runs", "--out", tmp_path / "report", "--data-dir", data_root)
    assert code == 0 and err.count("skipped") == 2 and (tmp_path / "report" / "index.html").is_file()
    code, out, err = cli("runs", "repair", str(torn), "--runs", tmp_path / "runs")
    assert code == 0 and "dropped line 11" in out and "10 samples recorded" in out and "status complete" in out
    assert len(Run.load(torn).records) == 10
    code, out, err = cli("runs", "list", "--runs", tmp_path / "runs")
    assert err.count("skipped") == 1


def table_width(out: str) -> int:
    return max(len(line) for line in out.splitlines() if any(c in line for c in "│━┃"))


def test_runs_with_one_label_are_told_apart_and_tables_fit_80_columns(
    openai_run, cli, tmp_path, data_root, monkeypatch
):
    for extra in ((), ("--limit", "3"), ("--limit", "5")):
        assert openai_run("--json", *extra)[0] == 0
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli("runs", "list", "--runs", tmp_path / "runs")
    assert code == 0 and table_width(out) <= 80
    monkeypatch.setenv("COLUMNS", "250")
    code, wide, _ = cli("runs", "list", "--runs", tmp_path / "runs", "--wide")
    flat = " ".join(wide.split())
    monkeypatch.setenv("COLUMNS", "80")
    assert (
        all(h in wide for h in ("prompt", "lang", "shots", "seed", "subset"))
        and "first-3" in flat
        and "first-5" in flat
    )
    code, out, _ = cli(
        "leaderboard",
        "--runs",
        tmp_path / "runs",
        "--out",
        tmp_path / "lb",
        "--no-published",
        "--data-dir",
        data_root,
        "--dataset",
        str(tmp_path / "comments.csv"),
    )
    assert code == 0 and table_width(out) <= 80
    names: list[str] = []  # a row's run name, its wrapped lines joined
    for line in (row for row in out.splitlines() if row.count("│") >= 7):
        rank, name = (c.strip() for c in line.split("│")[1:3])
        if rank.isdigit():
            names.append(name)
        elif names:
            names[-1] += name
    assert len(names) == len(set(names)) == 3 and sum("[first-3]" in n for n in names) == 1
    code, out, _ = cli("adapters")
    assert code == 0 and table_width(out) <= 80 and "description" not in out


def test_a_run_says_what_it_prepares_before_any_record(cli, tmp_path, data_root, monkeypatch, capsys):
    from toxbench.run import progress

    monkeypatch.setenv("TOXBENCH_MODELS", str(tmp_path / "models"))  # the baseline trains: the slow first run
    monkeypatch.setattr(progress, "NOTICE_AFTER_S", 0.0)  # as if it took longer than the notice delay
    texts = write_csv(tmp_path / "t.csv", ["quel idiot TOX", "merci"])
    code, _out, err = cli("run", "-d", texts, "--out", tmp_path / "runs", "--no-cache", "--data-dir", data_root)
    deadline = time.monotonic() + 2
    while not err and time.monotonic() < deadline:  # the notice comes from a timer thread
        err += capsys.readouterr().err
    assert code == 0 and err.startswith("preparing baseline: loading the model, or training it on first use")
    code, _out, err = cli(
        "run", "-d", texts, "--out", tmp_path / "runs2", "--no-cache", "--data-dir", data_root, "--json"
    )
    assert code == 0 and err == ""  # --json: nothing but the summary


@pytest.mark.parametrize(
    "option,value,needle",
    [
        ("--prompt", "weird", "unknown prompt 'weird'"),
        ("--prompt", "nope.toml", "nope.toml: no such prompt file"),
        ("-d", "nope", "unknown dataset 'nope'"),
        ("--lang-col", "langue", "langue"),
    ],
)
def test_prompt_and_dataset_are_checked_before_a_model_loads(
    option, value, needle, cli, data_root, tmp_path, monkeypatch
):
    """A typo in the prompt or the dataset costs no model loading (minutes for a 7B model)."""
    loaded = []

    def create(*args, **kwargs):
        loaded.append(args)
        raise RuntimeError("a model was loaded")

    monkeypatch.setattr("toxbench.run.runner.create", create)
    extra = ("-d", write_csv(tmp_path / "posts.csv", ["un", "deux"])) if option == "--lang-col" else ()
    code, out, err = cli(
        "run",
        "-m",
        "hf:smollm2-135m-instruct",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        *extra,
        option,
        value,
    )
    one_line_error(code, out, err, needle)
    assert loaded == [] and not (tmp_path / "runs").exists()


def test_prompt_options_given_to_a_model_that_reads_no_prompt_are_said_not_to_apply(cli, data_root, tmp_path):
    code, _, err = cli(
        "run",
        "-m",
        "baseline",
        "--limit",
        "2",
        "--shots",
        "4",
        "--lang",
        "en",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
    )
    assert code == 0 and "note baseline reads no prompt: --prompt, --lang and --shots do not apply to it" in err
    (manifest,) = (tmp_path / "runs").glob("*/manifest.json")
    spec = json.loads(manifest.read_text())["spec"]
    assert (spec["prompt"], spec["lang"], spec["shots"]) == (None, None, None)
    code, _, err = cli("run", "-m", "baseline", "--limit", "2", "--out", tmp_path / "runs", "--data-dir", data_root)
    assert code == 0 and "note" not in err  # the defaults say nothing


def test_a_subset_as_large_as_the_dataset_is_said_to_be_the_whole_dataset_run(cli, data_root, tmp_path):
    posts = write_csv(tmp_path / "posts.csv", ["un TOX", "deux", "trois TOX", "quatre"])
    code, out, err = cli(
        "run",
        "-m",
        "baseline",
        "-d",
        posts,
        "--sample",
        "10",
        "--limit",
        "4",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        "--json",
    )
    assert code == 0 and json.loads(out)["n"] == 4
    assert f"note --sample 10: {posts} has 4 samples, so this is the whole-dataset run" in err
    assert f"note --limit 4: {posts} has 4 samples" in err
    (manifest,) = (tmp_path / "runs").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["spec"]["subset"] is None
    # 3 toxic and 1 not: a balanced sample of 4 holds 1 + 2 of them, a subset, so no such note
    uneven = write_csv(tmp_path / "uneven.csv", ["un TOX", "deux", "trois TOX", "quatre TOX"])
    code, out, err = cli(
        "run",
        "-m",
        "baseline",
        "-d",
        uneven,
        "--sample",
        "4",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        "--json",
    )
    assert code == 0 and json.loads(out)["n"] == 3 and "note" not in err


def test_runs_list_says_of_how_many_samples_when_a_run_holds_fewer(cli, tmp_path, monkeypatch):
    from toxbench.records import RunSpec, RunWriter
    from toxbench.types import Record

    for label, recorded in (("halfway", 2), ("done", 4)):
        writer = RunWriter(
            tmp_path / "runs",
            RunSpec(adapter="replay", model=label, dataset="d", dataset_sha256="x", label=label),
            n_expected=4,
        )
        for i in range(recorded):
            writer.append(Record(sample_id=f"s{i}", pred=1, status="ok", gold=1))
        writer.finish() if recorded == 4 else writer.close()
    monkeypatch.setenv("COLUMNS", "120")
    code, out, _ = cli("runs", "list", "--runs", tmp_path / "runs", "--source", "all")
    rows = {
        cells[1]: cells
        for cells in ([c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.count("│") > 2)
    }
    # nobody holds the half-done run's lock: it was stopped, not running
    assert code == 0 and rows["halfway"][3:5] == ["stopped", "2 of 4"] and rows["done"][3:5] == ["complete", "4"]
