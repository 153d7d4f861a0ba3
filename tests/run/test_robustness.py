"""A run killed with SIGKILL resumes to the same records; one run, one writer; pacing; run listing."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from fakes.providers import FakeProvider

from toxbench.records import PREDICTIONS, Run
from toxbench.run.engine import ExecutionSettings
from toxbench.run.runner import RunOptions, execute

N = 60
CONCURRENCY = 4


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "many.csv"
    path.write_text(
        "id,text,label\n"
        + "".join(f"s{i},{'TOX ' if i % 3 == 0 else ''}message {i},{int(i % 3 == 0)}\n" for i in range(N)),
        encoding="utf-8",
    )
    return path


def toxbench_run(fake, dataset, out, data_root, *extra):
    cmd = [
        sys.executable,
        "-m",
        "toxbench",
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        str(dataset),
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        str(out),
        "--concurrency",
        str(CONCURRENCY),
        "--no-cache",
        "--json",
        "--data-dir",
        str(data_root),
        *extra,
    ]
    env = {**os.environ, "OPENAI_API_KEY": "sk-canary-kill-test-000000000000"}
    return cmd, env


@pytest.mark.slow
def test_sigkill_at_a_random_point_then_resume(tmp_path, dataset, data_root):
    fake = FakeProvider(delay_s=0.05)
    try:
        cmd, env = toxbench_run(fake, dataset, tmp_path / "killed", data_root)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop_after = random.Random().randint(5, N - 10)
        deadline = time.monotonic() + 60
        recorded = 0
        while time.monotonic() < deadline and proc.poll() is None:
            files = list((tmp_path / "killed").glob(f"*/{PREDICTIONS}"))
            recorded = files[0].read_bytes().count(b"\n") if files else 0
            if recorded >= stop_after:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        sent_before = len(fake.requests)
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert resumed.returncode == 0, resumed.stderr
        run_dir = next((tmp_path / "killed").iterdir())
        records = Run.load(run_dir).records
        assert len(records) == N and len({r.sample_id for r in records}) == N  # exactly one record per sample
        assert len(fake.requests) <= N + CONCURRENCY  # re-asked at most what was in flight at the kill
        assert sent_before >= recorded

        clean_cmd, _ = toxbench_run(fake, dataset, tmp_path / "clean", data_root)
        assert subprocess.run(clean_cmd, env=env, capture_output=True).returncode == 0
        clean = {r.sample_id: r.pred for r in Run.load(next((tmp_path / "clean").iterdir())).records}
        assert {r.sample_id: r.pred for r in records} == clean
        assert Run.load(run_dir).manifest.status == "complete"
    finally:
        fake.close()


def test_a_second_process_on_the_same_run_is_refused(tmp_path, dataset, data_root):
    fake = FakeProvider(delay_s=0.2)
    try:
        cmd, env = toxbench_run(fake, dataset, tmp_path / "runs", data_root)
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not list((tmp_path / "runs").glob(f"*/{PREDICTIONS}")) and time.monotonic() < deadline:
            time.sleep(0.02)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True)
        first.kill()
        first.wait()
        assert second.returncode == 2
        assert "another toxbench process is writing this run" in second.stderr and second.stderr.count("\n") == 1
    finally:
        fake.close()


def test_rpm_paces_requests(tmp_path, data, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-rpm-000000000000")
    path = tmp_path / "d.csv"
    path.write_text("id,text,label\n" + "".join(f"{i},m{i},0\n" for i in range(125)), encoding="utf-8")
    fake = FakeProvider()
    try:
        opts = RunOptions(
            model="openai:gpt-4o-mini",
            dataset=str(path),
            model_args={"base_url": fake.url + "/v1"},
            runs_dir=tmp_path / "r",
            use_cache=False,
        )
        start = time.monotonic()
        result = execute(opts, data, ExecutionSettings(concurrency=16, rpm=120), show_progress=False)
        elapsed = time.monotonic() - start
    finally:
        fake.close()
    # 120 per minute lets a burst of 120 through, then one every 0.5 s: the last 5 take >= 2 s
    assert result.requests_sent == 125 and elapsed >= 2.0


def test_reasoning_models_take_no_temperature(tmp_path, data, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-reason-000000000000")
    path = tmp_path / "d.csv"
    path.write_text("id,text,label\n1,TOX a,1\n", encoding="utf-8")
    fake = FakeProvider()
    try:
        for model in ("o4-mini", "deepseek-reasoner"):
            opts = RunOptions(
                model=f"openai:{model}",
                dataset=str(path),
                model_args={"base_url": fake.url + "/v1", "max_tokens": 500},
                runs_dir=tmp_path / model,
                use_cache=False,
            )
            assert execute(opts, data, ExecutionSettings(), show_progress=False).statuses == {"ok": 1}
        for request in fake.requests:
            assert "temperature" not in request["body"] and request["body"]["max_completion_tokens"] == 500
    finally:
        fake.close()


def test_runs_list_and_leaderboard_show_live_runs(tmp_path, dataset, data, data_root, cli, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-list-000000000000")
    fake = FakeProvider()
    try:
        opts = RunOptions(
            model="openai:gpt-4o-mini",
            dataset=str(dataset),
            model_args={"base_url": fake.url + "/v1"},
            runs_dir=tmp_path / "runs",
            use_cache=False,
        )
        execute(opts, data, ExecutionSettings(), show_progress=False)
    finally:
        fake.close()
    code, out, _ = cli("runs", "list", "--runs", tmp_path / "runs")
    assert code == 0 and "openai:gpt-4o-mini" in out and "complete" in out and "1.000" in out
    code, out, _ = cli(
        "leaderboard",
        "-d",
        str(dataset),
        "--runs",
        tmp_path / "runs",
        "--out",
        tmp_path / "lb",
        "--no-published",
        "--data-dir",
        data_root,
    )
    table = (tmp_path / "lb" / "leaderboard.csv").read_text()
    assert code == 0 and f"openai:gpt-4o-mini base_url={fake.url}/v1,gpt-4o-mini,detailed,0,60," in table


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path, dataset, data_root):
    fake = FakeProvider(delay_s=0.15)  # 60 samples, 4 at a time: about 2 s, so Ctrl-C lands mid-run
    try:
        cmd, env = toxbench_run(fake, dataset, tmp_path / "runs", data_root)
        # A shell starts background jobs with SIGINT ignored, and a child inherits that; give the
        # run the default disposition, as a terminal's Ctrl-C would find it.
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list((tmp_path / "runs").glob(f"*/{PREDICTIONS}"))
            if files and files[0].read_bytes().count(b"\n") >= 10:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "run the same command again to resume" in err
        run_dir = next((tmp_path / "runs").iterdir())
        partial = Run.load(run_dir)
        assert partial.manifest.status == "running" and 10 <= len(partial.records) < N
        assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
        done = Run.load(run_dir)
        assert done.manifest.status == "complete" and len({r.sample_id for r in done.records}) == len(done.records) == N
    finally:
        fake.close()
