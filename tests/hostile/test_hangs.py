"""Issue 28, hangs and unbounded growth: a download stops at the manifest's size and has a
deadline; a huge Retry-After ends samples as errors instead of holding the run; an unbounded
answer is not kept; a large sweep's dry run answers at once, a gigantic one is refused."""

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hostile_helpers import one_line_refusal

SMALL = "toxifrench/prompts/system_prompt_english.txt"  # 136 bytes


class HostileMirror:
    """A mirror that answers every file with `mode`: endless (a body that never ends), gzip (20 KB on the
    wire inflating to 20 MB), trickle (a byte a second, each read within the per-read timeout)."""

    def __init__(self, mode: str) -> None:
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                try:
                    if mode == "gzip":
                        body = gzip.compress(b"a" * (20 << 20))
                        self.send_header("content-encoding", "gzip")
                        self.send_header("content-length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    self.end_headers()  # no length: the body ends when the connection does
                    while not mirror.stopped.is_set():
                        self.wfile.write(b"x" * (1 << 16) if mode == "endless" else b"x")
                        self.wfile.flush()
                        if mode == "trickle":
                            time.sleep(0.5)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def fetch_from(mode: str, cli, data_dir, within_s: float) -> tuple[str, str]:
    """`data fetch SMALL` from a hostile mirror; fails if it takes longer than `within_s`."""
    mirror = HostileMirror(mode)
    try:
        started = time.monotonic()
        _code, out, err = cli("data", "fetch", SMALL, "--data-dir", data_dir, "--mirror", mirror.url)
        assert time.monotonic() - started < within_s
    finally:
        mirror.close()
    return out, err


@pytest.mark.parametrize("mode", ["endless", "gzip"])
def test_a_download_stops_at_the_manifests_size(tmp_path, cli, mode):
    out, err = fetch_from(mode, cli, tmp_path / "data", 20)
    assert "0 fetched" in out and "more than the 136 bytes the manifest pins" in out, (out, err)
    assert sum(p.stat().st_size for p in (tmp_path / "data").rglob("*") if p.is_file()) == 0  # nothing left behind


def test_a_download_has_a_total_deadline_and_stale_parts_go(tmp_path, cli, monkeypatch):
    from toxbench.data import fetch

    monkeypatch.setattr(fetch, "DEADLINE_S", 2.0)
    folder = tmp_path / "data" / "toxifrench" / "prompts"
    folder.mkdir(parents=True)
    stale = folder / ".system_prompt_english.txt.abc123.part"
    stale.write_bytes(b"x" * 1000)
    old = time.time() - 2 * fetch.STALE_PART_S
    import os

    os.utime(stale, (old, old))
    out, err = fetch_from("trickle", cli, tmp_path / "data", 15)
    assert "stopped" in out and "0 fetched" in out, (out, err)
    assert not list(folder.glob("*.part"))


KEY = "sk-hangs-canary-0123456789abcdefghij"


def test_a_retry_after_years_away_ends_those_samples_as_errors_not_a_hang(tmp_path, fake, cli, data_root, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    texts = tmp_path / "t.csv"
    texts.write_text(
        "id,text,label\n0,TOX [quota] a,1\n1,merci [quotadate] b,0\n2,TOX c,1\n3,merci d,0\n", encoding="utf-8"
    )
    started = time.monotonic()
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        texts,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs",
        "--timeout",
        "5",
        "--data-dir",
        data_root,
        "--json",
        "--no-cache",
    )
    assert time.monotonic() - started < 30 and code == 0, err
    import json

    from toxbench.records import Run

    records = {r.sample_id: r for r in Run.load(json.loads(out)["run_dir"]).records}
    assert (records["2"].status, records["3"].status) == ("ok", "ok")
    for sid in ("0", "1"):
        assert records[sid].status == "error" and "asks to wait" in records[sid].raw and "days" in records[sid].raw
        assert records[sid].attempts == 1  # asked once, not retried into the quota


@pytest.mark.parametrize(
    "model, key_env, base",
    [
        ("openai:gpt-4o-mini", "OPENAI_API_KEY", "/v1"),
        ("anthropic:claude-haiku-4-5", "ANTHROPIC_API_KEY", ""),
        ("mistral:mistral-large-latest", "MISTRAL_API_KEY", ""),
        ("gemini:gemini-2.0-flash", "GEMINI_API_KEY", ""),
    ],
)
def test_an_answer_inflating_to_megabytes_is_neither_read_whole_nor_kept(
    tmp_path, fake, cli, data_root, monkeypatch, model, key_env, base
):
    monkeypatch.setenv(key_env, KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    texts = tmp_path / "t.csv"
    texts.write_text(
        "id,text,label\n0,TOX [huge] a,1\n1,merci [huge] b,0\n2,TOX [huge] c,1\n3,merci d,0\n", encoding="utf-8"
    )
    code, out, err = cli(
        "run",
        "-m",
        model,
        "-d",
        texts,
        "--model-arg",
        f"base_url={fake.url}{base}",
        "--out",
        tmp_path / "runs",
        "--timeout",
        "20",
        "--max-retries",
        "0",
        "--data-dir",
        data_root,
        "--json",
    )
    assert code == 0, err
    import json

    assert json.loads(out)["status"] == {"ok": 1, "error": 3}
    from toxbench.records import Run

    errors = [r.raw for r in Run.load(json.loads(out)["run_dir"]).records if r.status == "error"]
    assert all("more than 1,000,000 bytes" in e and "reads no further" in e for e in errors), (
        errors
    )  # read up to the bound, not inflated whole
    written = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file() and p.name != "t.csv")
    assert written < 1 << 20, written  # was 120 MB for three samples


def sweep_file(tmp_path, seeds: int) -> str:
    path = tmp_path / f"grid-{seeds}.toml"
    path.write_text(
        'name = "grid"\nseeds = [' + ",".join(map(str, range(seeds))) + ']\nshot_pool = "random"\n'
        'configs = [{ prompt = "detailed", shots = "4" }, { prompt = "detailed", shots = "10" }]\n'
        '[[models]]\nmodel = "openai:gpt-4o-mini"\n[[models]]\nmodel = "baseline"\n',
        encoding="utf-8",
    )
    return str(path)


def test_a_gigantic_sweep_grid_is_refused_in_one_line_at_once(tmp_path, cli, data_root):
    started = time.monotonic()
    err = one_line_refusal(cli("sweep", sweep_file(tmp_path, 1_000_000), "--dry-run", "--data-dir", data_root))
    assert "4,000,000 cells, more than the 10,000" in err and time.monotonic() - started < 20


def test_a_large_sweeps_dry_run_answers_with_the_same_costs(tmp_path, cli, data_root, data):
    from toxbench.data.datasets import load_dataset
    from toxbench.run.pricing import cost_usd, price_table
    from toxbench.run.prompts import make_renderer
    from toxbench.run.sweep import CostEstimator, expand, load_sweep

    started = time.monotonic()
    code, out, err = cli("sweep", sweep_file(tmp_path, 2400), "--dry-run", "--data-dir", data_root)
    assert code == 0 and "9600 cells" in out and time.monotonic() - started < 60, err
    assert out.count("2400") >= 4  # one row per configuration, its seeds counted
    sweep = load_sweep(sweep_file(tmp_path, 3))
    samples = load_dataset("toxifrench", data).samples
    for cell in [c for c in expand(sweep, data, "live") if c.model.model.startswith("openai")]:
        renderer = make_renderer(cell.prompt, cell.lang, cell.shots, cell.seed, data, "random")
        chars = sum(
            len(m["content"]) for s in samples for m in renderer.messages(s.text)
        )  # every message rendered, as before
        assert CostEstimator(sweep, data)(cell) == pytest.approx(
            cost_usd("gpt-4o-mini", chars // 4, 5 * len(samples), price_table())
        )
