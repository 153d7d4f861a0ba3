"""Local models that fail fast and say what matters, an API base_url that answered 404, a
semicolon-separated CSV, and Perspective's closure: each through the CLI, as a user meets it."""

import datetime
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from toxbench.records import Run, iter_run_dirs

CANARY = "sk-everyday-canary-0123456789abcdefghij"


def closed_port() -> str:
    with socket.socket() as s:  # a port nobody listens on: a connection is refused at once
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


class Answering:
    """An HTTP server on 127.0.0.1 that answers every POST with one status and JSON body."""

    def __init__(self, status: int, body: dict):
        outer = self
        self.paths: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.paths.append(self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answering():
    servers = []

    def make(status, body):
        servers.append(Answering(status, body))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def last_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_hub_id_that_cannot_be_downloaded_is_one_line_at_once(cli, dataset, data_root, tmp_path, monkeypatch):
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOXBENCH_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    args = ("run", "--model", "hf:Qwen/Qwen3-0.6B", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root)
    code, _, err = cli(*args)
    line = last_error(err)
    assert code == 2 and "'Qwen/Qwen3-0.6B' is not in the Hugging Face cache" in line and "cannot be reached" in line
    assert "hf download Qwen/Qwen3-0.6B" in line and "retry" not in err.lower()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = cli(*args)
    assert code == 2 and "HF_HUB_OFFLINE is set" in last_error(err)
    assert not (tmp_path / "runs").exists()  # nothing half-made


def test_an_untrained_encoder_head_is_warned_about_and_marked(cli, dataset, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = cli(
        "run", "--model", "encoder:minilm-l6", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root
    )
    assert code == 0, err
    assert err.count("untrained classification head") == 1 and "warning encoder:minilm-l6" in " ".join(err.split())
    (run_dir,) = iter_run_dirs(tmp_path / "runs")
    assert Run.load(run_dir).manifest.notes[0].startswith("untrained classification head: minilm-l6")
    assert "cost=n/a" in out  # a local model has no price, not an unknown one
    code, out, _ = cli("runs", "list", "--runs", tmp_path / "runs")
    assert "(untrained head)" in out and "n/a" in out
    code, _, err = cli(
        "leaderboard", "-d", dataset, "--runs", tmp_path / "runs", "--no-published", "--out", tmp_path / "b", "-q"
    )
    assert code == 0 and "untrained classification head" in (tmp_path / "b" / "leaderboard.md").read_text(), err


@pytest.mark.slow
def test_library_logs_are_quiet_unless_verbose(dataset, data_root, tmp_path):
    env = {**os.environ, "TOXBENCH_DATA_DIR": str(data_root)}
    env.pop("TOXBENCH_VERBOSE", None)

    def run(*extra):
        args = [
            "run",
            "--model",
            "encoder:minilm-l6",
            "-d",
            str(dataset),
            "--out",
            str(tmp_path / "runs"),
            "--no-cache",
        ]
        done = subprocess.run(
            [sys.executable, "-m", "toxbench", *extra, *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stderr

    quiet = run()
    assert "LOAD REPORT" not in quiet and "Loading weights" not in quiet and "kernels" not in quiet, quiet
    assert "untrained classification head" in quiet  # what matters is still said
    assert "LOAD REPORT" in run("--verbose")


def test_a_base_url_without_its_version_path_names_the_url_and_the_usual_one(
    cli, dataset, data_root, tmp_path, monkeypatch, answering
):
    server = answering(404, {"detail": "Not Found"})
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    code, _, err = cli(
        "run", "--model", "openai:gpt-4o-mini", "--model-arg", f"base_url={server.url}", "-d", dataset,
        "--out", tmp_path / "runs", "--no-cache", "--max-retries", "0", "--data-dir", data_root,
    )  # fmt: skip
    line = last_error(err)
    assert code == 2 and f"{server.url}/chat/completions answered 404" in line
    assert f"try base_url={server.url}/v1" in line and CANARY not in err


def test_a_semicolon_separated_csv_is_read_and_said(cli, data_root, tmp_path):
    path = tmp_path / "commentaires.csv"
    path.write_text("id;texte;toxique\n1;quel idiot, vraiment;1\n2;merci, bonne journée;0\n", encoding="utf-8")
    code, out, err = cli("data", "show", path, "--text-col", "texte", "--label-col", "toxique", "--data-dir", data_root)
    assert code == 0 and "read as ';'-separated" in out and "samples: 2" in out, err
    code, out, err = cli(
        "run", "-d", path, "--text-col", "texte", "--label-col", "toxique", "--out", tmp_path / "runs",
        "--data-dir", data_root, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["n"] == 2, err


PERSPECTIVE = ("run", "--model", "perspective", "--max-retries", "0", "--no-cache")


def test_perspective_s_closure_is_one_line_with_the_alternatives(
    cli, dataset, data_root, tmp_path, monkeypatch, answering
):
    monkeypatch.setenv("PERSPECTIVE_API_KEY", CANARY)
    closed = answering(
        403, {"error": {"code": 403, "message": "Perspective API has been shut down.", "status": "PERMISSION_DENIED"}}
    )
    code, _, err = cli(
        *PERSPECTIVE, "--model-arg", f"base_url={closed.url}", "-d", dataset, "--out", tmp_path / "runs",
        "--data-dir", data_root,
    )  # fmt: skip
    line = last_error(err)
    assert code == 2 and "Perspective API closed on 31 December 2026" in line and len(closed.paths) == 1
    assert all(alt in line for alt in ("encoder:MODEL", "shieldgemma", "openai-moderation", "replay offline"))


def test_after_the_date_any_refusal_or_a_missing_key_is_the_closure(
    cli, dataset, data_root, tmp_path, monkeypatch, answering
):
    import toxbench.adapters.perspective_api as perspective

    refused = answering(403, {"error": {"code": 403, "message": "API key not valid.", "status": "PERMISSION_DENIED"}})
    args = (
        *PERSPECTIVE,
        "--model-arg",
        f"base_url={refused.url}",
        "-d",
        dataset,
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
    )
    monkeypatch.setenv("PERSPECTIVE_API_KEY", CANARY)
    code, _, err = cli(*args)  # before the date: an ordinary refusal
    assert code == 2 and "HTTP 403" in last_error(err) and "closed" not in err
    monkeypatch.setattr(perspective, "today", lambda: datetime.date(2027, 1, 2))
    code, _, err = cli(*args)
    assert code == 2 and "Perspective API closed on 31 December 2026" in last_error(err)
    monkeypatch.delenv("PERSPECTIVE_API_KEY")
    code, _, err = cli(*args)
    line = last_error(err)
    assert code == 2 and "Perspective API closed" in line and "no PERSPECTIVE_API_KEY is set" in line


def test_recorded_perspective_answers_replay_from_the_cache_after_the_closure(
    cli, data_root, tmp_path, monkeypatch, fake
):
    import toxbench.adapters.perspective_api as perspective

    plain = tmp_path / "plain.csv"  # answered at the first request (the shared dataset's markers make errors)
    plain.write_text("id,text,label\n1,tu es un TOX idiot,1\n2,merci pour tout,0\n3,à demain,0\n", encoding="utf-8")

    def run(out):
        return cli(
            "run", "--model", "perspective", "--model-arg", f"base_url={fake.url}", "-d", plain, "--out", out,
            "--data-dir", data_root, "--json",
        )  # fmt: skip

    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    monkeypatch.setenv("PERSPECTIVE_API_KEY", CANARY)
    code, out, err = run(tmp_path / "before")
    first = json.loads(out)
    assert code == 0 and first["requests_sent"] == 3 and first["status"] == {"ok": 3}, err
    monkeypatch.delenv("PERSPECTIVE_API_KEY")
    monkeypatch.setattr(perspective, "today", lambda: datetime.date(2027, 3, 1))
    code, out, err = run(tmp_path / "after")  # no key, after the closure: every answer from the cache
    summary = json.loads(out)
    assert code == 0 and summary["requests_sent"] == 0 and summary["cache_hits"] == first["status"].get("ok"), (
        out,
        err,
    )
    before, after = (Run.load(next(iter_run_dirs(tmp_path / d))) for d in ("before", "after"))
    assert [(r.sample_id, r.pred, r.score) for r in before.records] == [
        (r.sample_id, r.pred, r.score) for r in after.records
    ]


def test_delimiter_names_the_separator_and_a_bad_one_is_one_line(cli, data_root, tmp_path):
    path = tmp_path / "pipes.csv"
    path.write_text(
        "id|text|label\n1|quel idiot; vraiment, nul|1\n2|merci, à demain; bonne journée|0\n", encoding="utf-8"
    )
    code, out, err = cli("data", "show", path, "--delimiter", "|", "--data-dir", data_root)
    assert code == 0 and "read as '|'-separated (--delimiter)" in out and "samples: 2" in out, err
    code, _, err = cli("data", "show", path, "--delimiter", "||", "--data-dir", data_root)
    assert code == 2 and "--delimiter '||': give one character" in last_error(err)
    tabbed = tmp_path / "tabs.csv"
    tabbed.write_text("id\ttext\tlabel\n1\tquel idiot, vraiment\t1\n", encoding="utf-8")
    code, out, err = cli(
        "run", "-d", tabbed, "--delimiter", "tab", "--out", tmp_path / "runs", "--data-dir", data_root, "--json"
    )
    assert code == 0 and json.loads(out)["n"] == 1, err


def test_a_sweep_files_bad_delimiter_is_named_before_any_cell_runs(cli, data_root, tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text('name = "x"\n[[models]]\nmodel = "baseline"\n[columns]\ndelimiter = ";;"\n', encoding="utf-8")
    code, out, err = cli("sweep", sweep, "--data-dir", data_root, "--out", tmp_path / "t")
    assert code == 2 and "columns.delimiter" in last_error(err) and "give one character" in err and "[1/" not in out
