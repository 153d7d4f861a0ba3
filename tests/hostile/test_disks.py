"""Issue 28, caches and disks that fail: a cache of another schema is one line before any request;
a damaged row, or one a newer toxbench wrote, is a miss and is replaced; a full disk (runs, cache,
data directory) and a read-only file system are one line or a note, never a traceback; a read-only
runs directory is read as it is, never "damaged".

Full and read-only file systems are real: small tmpfs mounts (root only; skipped elsewhere)."""

import json
import sqlite3
import subprocess
import uuid

import pytest
from hostile_helpers import one_line_refusal

KEY = "sk-disks-canary-0123456789abcdefghij"


@pytest.fixture
def mount(tmp_path):
    """mount(size) -> a fresh tmpfs of that size; `remount_read_only(path)` makes it read-only. Unmounted after the test."""
    mounted = []

    def make(size: str):
        path = tmp_path / f"fs-{uuid.uuid4().hex[:6]}"
        path.mkdir()
        if (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
            ).returncode
            != 0
        ):
            pytest.skip("mounting a tmpfs needs root")
        mounted.append(path)
        return path

    yield make
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def read_only(path):
    """Remount read-only; a file still open for writing (a descriptor not yet collected) makes the
    kernel refuse with "busy", so collect and retry briefly before failing."""
    import gc
    import time

    for _ in range(20):
        gc.collect()
        done = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"cannot remount {path} read-only: {done.stderr}")


def run_args(fake, dataset, out, data_root, *extra):
    return (
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        out,
        "--timeout",
        "2",
        "--max-retries",
        "1",
        "--data-dir",
        data_root,
        "--json",
        *extra,
    )


@pytest.fixture
def key(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))


def test_a_cache_of_another_schema_is_one_line_before_any_request(tmp_path, fake, dataset, cli, data_root, key):
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        db.execute("CREATE TABLE answers (id INTEGER, payload TEXT)")
    err = one_line_refusal(cli(*run_args(fake, dataset, tmp_path / "runs", data_root)))
    assert "not a usable response cache" in err and "payload" in err and fake.requests == []
    (tmp_path / "cache.sqlite").unlink()
    (tmp_path / "cache.sqlite").write_bytes(b"this is not sqlite" * 100)
    err = one_line_refusal(cli(*run_args(fake, dataset, tmp_path / "runs", data_root)))
    assert "not a usable response cache" in err and fake.requests == []


def test_damaged_or_newer_cache_rows_are_misses_and_are_replaced(tmp_path, fake, dataset, cli, data_root, key):
    code, out, err = cli(*run_args(fake, dataset, tmp_path / "runs", data_root))
    assert code == 0, err
    with sqlite3.connect(tmp_path / "cache.sqlite") as db:
        keys = [k for (k,) in db.execute("SELECT key FROM answers ORDER BY key")]
        db.execute("UPDATE answers SET answer = ? WHERE key = ?", (b"{damaged", keys[0]))
        newer = json.loads(db.execute("SELECT answer FROM answers WHERE key = ?", (keys[1],)).fetchone()[0])
        db.execute(
            "UPDATE answers SET answer = ? WHERE key = ?",
            (json.dumps({**newer, "reasoning_tokens": 12}).encode(), keys[1]),
        )
    code, out, err = cli(*run_args(fake, dataset, tmp_path / "again", data_root))
    assert code == 0, err
    assert json.loads(out)["requests_sent"] >= 2 and json.loads(out)["cache_hits"] == len(keys) - 2
    code, out, err = cli(*run_args(fake, dataset, tmp_path / "third", data_root))
    assert code == 0 and json.loads(out)["cache_hits"] == len(keys)  # the two rows were replaced


def test_a_full_runs_disk_is_one_line(tmp_path, cli, data_root, mount):
    disk = mount("48k")
    err = one_line_refusal(
        cli("run", "-m", "baseline", "-d", "toxifrench", "--out", disk / "runs", "--data-dir", data_root)
    )
    assert "No space left on device" in err and "run the same command again" in err


def test_a_full_cache_disk_is_a_note_not_a_failure(tmp_path, fake, dataset, cli, data_root, key, mount, monkeypatch):
    disk = mount("16k")
    with open(disk / "filler", "wb") as fh:  # fill it
        try:
            fh.write(b"x" * (64 << 10))
        except OSError:
            pass
    monkeypatch.setenv("TOXBENCH_CACHE", str(disk / "cache.sqlite"))
    code, out, err = cli(*run_args(fake, dataset, tmp_path / "runs", data_root))
    assert code == 0, err
    assert json.loads(out)["n"] == 10 and "response cache" in err and "Traceback" not in err


def test_a_read_only_runs_directory_is_read_as_it_is(tmp_path, fake, dataset, cli, data_root, key, mount):
    disk = mount("4m")
    code, out, err = cli(*run_args(fake, dataset, disk / "runs", data_root, "--no-cache"))
    assert code == 0, err
    first = json.loads(out)
    read_only(disk)
    sent = len(fake.requests)
    code, out, err = cli(*run_args(fake, dataset, disk / "runs", data_root, "--no-cache", "--no-retry-errors"))
    assert code == 0 and json.loads(out)["run_dir"] == first["run_dir"] and len(fake.requests) == sent, err
    err = one_line_refusal(
        cli(*run_args(fake, dataset, disk / "runs", data_root, "--no-cache"))
    )  # its error sample would be asked again
    assert "cannot write this run" in err and "--no-retry-errors" in err
    code, out, err = cli("runs", "list", "--runs", disk / "runs")
    assert code == 0 and "damaged" not in out + err and "gpt-4o-mini" in out, out + err
    code, out, err = cli(
        "leaderboard",
        "-d",
        dataset,
        "--runs",
        disk / "runs",
        "--no-published",
        "--out",
        tmp_path / "board",
        "-q",
        "--data-dir",
        data_root,
    )
    assert code == 0 and "damaged" not in out + err, out + err
    assert "| 1 |" in (tmp_path / "board" / "leaderboard.md").read_text(encoding="utf-8")


def test_a_full_or_read_only_data_directory_is_one_line(tmp_path, cli, data_root, mount):
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(
        type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}), directory=str(data_root)
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        disk = mount("64k")
        _code, out, err = cli(
            "data",
            "fetch",
            "toxifrench/benchmark/ToxiFrenchBalanced.csv",
            "--data-dir",
            disk,
            "--mirror",
            f"http://127.0.0.1:{server.server_address[1]}",
        )
        assert "Traceback" not in err and "No space left on device" in out + err and "0 fetched" in out, out + err
        assert not list(disk.rglob("*.part"))
        read_only(disk)
        _code, out, err = cli(
            "data",
            "fetch",
            "toxifrench/prompts/system_prompt_english.txt",
            "--data-dir",
            disk,
            "--mirror",
            f"http://127.0.0.1:{server.server_address[1]}",
        )
        assert "Traceback" not in err and "Read-only file system" in out + err, out + err
    finally:
        server.shutdown()
        server.server_close()
