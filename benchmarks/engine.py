"""API engine overhead: `toxbench run` against a bare client on the SDK's own transport, on one loopback server.

The server runs in its own process (asyncio streams, HTTP/1.1 keep-alive) and speaks the OpenAI
chat-completions wire format: every request is answered "non-toxique" after a fixed latency, given
in the URL (`/lat200/v1` waits 200 ms; `/lat200x7/v1` too, counted apart as run 7). Under
`/rpm600/...` it also enforces a token bucket of 600 requests a minute (burst 5) and answers 429
with Retry-After beyond it. It notes, per path prefix, when the first request arrived and when the
last answer left.

Two clients, each a whole process, send the same 1388 rendered ToxiFrench requests (detailed
prompt):
- floor: a bare AsyncClient of the HTTP library the installed OpenAI SDK is built on (httpx2 for
  openai 3.x, httpx before), with the SDK's connection limits and `concurrency` workers pulling
  from a queue; no SDK, no records;
- toxbench: `toxbench run -m openai:gpt-4o-mini --concurrency C --no-cache` into a fresh runs dir.

Cases: concurrency 4/16/64 x latency 100/200 ms, the two clients interleaved, repeated. Per case
and client (medians over repeats):
- wall: the whole process, launch to exit; CPU: user + system of the client process;
- serving wall: the server's first request to its last answer (start-up and shutdown left out);
- efficiency: ideal / wall, ideal = ceil(n / concurrency) x latency;
- CPU per request: (CPU - the CPU of the same client sending 1 request) / (n - 1), i.e. the
  steady-state cost of one more request, start-up left out (it has its own section).
Ratios are toxbench / floor. A rate-limit section runs toxbench against the 600/min bucket with
`--rpm 600` and without: achieved rate, 429s, failed samples. A start-up section times
`toxbench --help` and, for `toxbench run`, the seconds from launching the process to the server
receiving its first request, beside the same for the floor and for `python -c "import openai"`.
Prints tables and writes benchmarks/engine.json.

    python benchmarks/engine.py [--repeat 3] [--n 1388] [--concurrency 4 16 64] [--latency 100 200]
    python benchmarks/engine.py --quick      # 400 requests, concurrency 16 and 64, one repeat
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPLY = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "non-toxique"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 400, "completion_tokens": 3, "total_tokens": 403},
}
BURST = 5


# -- the server (its own process) ----------------------------------------------------------------
class Bucket:
    """A token bucket refilled continuously: `rate` tokens a second, at most `burst` in hand."""

    def __init__(self, per_minute: float, burst: int = BURST) -> None:
        self.rate, self.burst, self.tokens, self.at = per_minute / 60, burst, float(burst), time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


async def serve(port: int) -> None:
    buckets: dict[str, Bucket] = {}
    stats: dict[str, dict[str, int]] = {}
    connections = [0]
    body_ok = json.dumps(REPLY).encode()
    body_429 = json.dumps(
        {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    ).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                prefix = path.strip("/").split("/", 1)[0]
                counts = stats.setdefault(
                    prefix, {"requests": 0, "ok": 0, "429": 0, "first_at": time.time(), "last_at": 0.0}
                )
                if method == "GET" and path.startswith("/stats/"):
                    key = path.rsplit("/", 1)[-1]
                    status, body, extra = (
                        200,
                        json.dumps({**stats.pop(key, {}), "connections": connections[0]}).encode(),
                        "",
                    )
                    buckets.pop(key, None)
                else:
                    counts["requests"] += 1
                    status, body, extra = 200, body_ok, ""
                    if prefix.startswith("rpm"):
                        bucket = buckets.setdefault(prefix, Bucket(float(prefix[3:])))
                        wait = bucket.take()
                        if wait:
                            status, body, extra = (
                                429,
                                body_429,
                                f"retry-after-ms: {int(wait * 1000) + 1}\r\nretry-after: {math.ceil(wait)}\r\n",
                            )
                    if status == 200:
                        counts["ok"] += 1
                        latency = float(prefix[3:].split("x")[0]) / 1000 if prefix.startswith("lat") else 0.0
                        await asyncio.sleep(latency)
                    else:
                        counts["429"] += 1
                head = (
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Too Many Requests'}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\n{extra}\r\n"
                )
                writer.write(head.encode() + body)
                await writer.drain()
                counts["last_at"] = time.time()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


# -- the floor client (its own process) -----------------------------------------------------------
def sdk_transport():
    """The HTTP library the installed OpenAI SDK sends with: httpx2 from openai 3.x on, httpx before.
    (httpcore 1.0.9 under httpx scans its pool quadratically: at concurrency 64 a bare httpx client
    spends 20 s of CPU on 1388 requests, httpx2 2.7 s; the floor must be the SDK's own transport.)"""
    from importlib.metadata import requires

    if any(r.startswith("httpx2") for r in requires("openai") or ()):
        import httpx2

        return httpx2
    import httpx

    return httpx


async def floor(url: str, concurrency: int, requests_file: str, limit: int | None = None) -> None:
    httpx = sdk_transport()
    bodies = [line.encode() for line in Path(requests_file).read_text("utf-8").splitlines()][:limit]
    queue: asyncio.Queue = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)  # the OpenAI SDK's own limits
    answers = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post("/chat/completions", content=body, headers=headers)
                answers.append(response.json()["choices"][0]["message"]["content"])

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    assert len(answers) == len(bodies)


# -- the driver -----------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of one whole client process: the CPU is the growth of
    the children's usage once it has been waited for (the server, still running, is not in it)."""
    before = child_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:6])}... failed ({proc.returncode}): {err[-2000:]}")
    return wall, child_cpu() - before, out


def render_requests(n: int, data_dir: str | None, path: Path) -> None:
    """The JSON bodies the OpenAI SDK sends for the first n ToxiFrench samples (detailed prompt)."""
    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset
    from toxbench.run.prompts import make_renderer

    data = DataDir(data_dir)
    renderer = make_renderer("detailed", "fr", "0", 0, data)
    samples = load_dataset("toxifrench", data).samples[:n]
    path.write_text(
        "".join(
            json.dumps(
                {"model": "gpt-4o-mini", "messages": renderer.messages(s.text), "max_tokens": 10, "temperature": 0},
                ensure_ascii=False,
            )
            + "\n"
            for s in samples
        ),
        "utf-8",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", nargs=4, metavar=("URL", "CONCURRENCY", "FILE", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, default=1388)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--latency", type=int, nargs="+", default=[100, 200], help="milliseconds")
    parser.add_argument("--rate-n", type=int, default=400, help="requests of each rate-limit run (at 600/min: 40 s)")
    parser.add_argument("--no-rate", action="store_true", help="skip the rate-limit section")
    parser.add_argument(
        "--quick", action="store_true", help="400 requests, concurrency 16 and 64, latency 200 ms, one repeat"
    )
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    args = parser.parse_args()
    if args.serve:
        return asyncio.run(serve(args.serve))
    if args.floor:
        url, concurrency, file, n = args.floor
        return asyncio.run(floor(url, int(concurrency), file, int(n)))
    if args.quick:
        args.n, args.concurrency, args.latency, args.repeat, args.rate_n = 400, [16, 64], [200], 1, 200

    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    if args.data_dir:
        env["TOXBENCH_DATA_DIR"] = args.data_dir
    results: dict = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "n": args.n,
        "repeat": args.repeat,
        "transport": sdk_transport().__name__,
        "cases": [],
        "rate_limit": [],
        "startup": {
            "help_s": [],
            "import_openai_s": [],
            "first_request_s": [],
            "floor_first_request_s": [],
            "toxbench_one_cpu_s": [],
            "floor_one_cpu_s": [],
        },
    }
    runs = iter(range(10**6))

    def stats(prefix: str) -> dict:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/{prefix}").read())

    def client(kind: str, latency: int, concurrency: int, n: int, out: Path) -> dict:
        """One whole client process against a prefix of its own: wall, CPU, the server's view."""
        prefix = f"lat{latency}x{next(runs)}"
        url = f"http://127.0.0.1:{port}/{prefix}/v1"
        if kind == "floor":
            cmd = [sys.executable, __file__, "--floor", url, str(concurrency), str(requests_file), str(n)]
        else:
            cmd = [
                sys.executable,
                "-m",
                "toxbench",
                "run",
                "-m",
                "openai:gpt-4o-mini",
                "--model-arg",
                f"base_url={url}",
                "--limit",
                str(n),
                "--concurrency",
                str(concurrency),
                "--no-cache",
                "--json",
                "--out",
                str(out),
            ]
        launched = time.time()
        wall, cpu, output = timed(cmd, env)
        if kind == "toxbench":
            statuses = json.loads(output)["status"]
            assert statuses.get("ok", 0) + statuses.get("unparseable", 0) == n, statuses
        served = stats(prefix)
        assert served["ok"] == n, served
        return {
            "wall_s": wall,
            "cpu_s": cpu,
            "first_request_s": served["first_at"] - launched,
            "serving_s": served["last_at"] - served["first_at"],
        }

    try:
        time.sleep(0.5)
        with tempfile.TemporaryDirectory() as tmp:
            requests_file = Path(tmp) / "requests.jsonl"
            render_requests(args.n, args.data_dir, requests_file)
            startup = results["startup"]
            for rep in range(max(3, args.repeat)):
                startup["help_s"].append(timed([sys.executable, "-m", "toxbench", "--help"], env)[0])
                startup["import_openai_s"].append(timed([sys.executable, "-c", "import openai"], env)[0])
                one = client("toxbench", 0, 1, 1, Path(tmp) / f"runs-start-{rep}")
                startup["first_request_s"].append(one["first_request_s"])
                startup["toxbench_one_cpu_s"].append(one["cpu_s"])
                one = client("floor", 0, 1, 1, Path(tmp))
                startup["floor_first_request_s"].append(one["first_request_s"])
                startup["floor_one_cpu_s"].append(one["cpu_s"])
            for latency in args.latency:
                for concurrency in args.concurrency:
                    case = {"latency_ms": latency, "concurrency": concurrency, "floor": [], "toxbench": []}
                    for rep in range(args.repeat):
                        for kind in ("floor", "toxbench"):  # interleaved, so drift hits both alike
                            case[kind].append(
                                client(
                                    kind,
                                    latency,
                                    concurrency,
                                    args.n,
                                    Path(tmp) / f"runs-{latency}-{concurrency}-{rep}",
                                )
                            )
                    results["cases"].append(case)
            if not args.no_rate:
                for label, extra in (("--rpm 600", ["--rpm", "600"]), ("no --rpm (AIMD)", [])):
                    url = f"http://127.0.0.1:{port}/rpm600/v1"
                    cmd = [
                        sys.executable,
                        "-m",
                        "toxbench",
                        "run",
                        "-m",
                        "openai:gpt-4o-mini",
                        "--model-arg",
                        f"base_url={url}",
                        "--limit",
                        str(args.rate_n),
                        "--concurrency",
                        "16",
                        "--no-cache",
                        "--json",
                        "--max-retries",
                        "8",
                        "--out",
                        str(Path(tmp) / f"runs-rate-{len(results['rate_limit'])}"),
                        *extra,
                    ]
                    time.sleep(1.0)  # let the bucket refill between runs
                    stats("rpm600")  # reset the counters and the bucket
                    wall, _, out = timed(cmd, env)
                    served = stats("rpm600")
                    statuses = json.loads(out)["status"]
                    results["rate_limit"].append(
                        {
                            "run": label,
                            "n": args.rate_n,
                            "wall_s": wall,
                            "per_minute": 60 * args.rate_n / wall,
                            "http_429": served.get("429", 0),
                            "failed_samples": statuses.get("error", 0),
                        }
                    )
    finally:
        server.terminate()
        server.wait()
    report(results)


def report(results: dict) -> None:
    med = statistics.median
    n = results["n"]
    print(
        f"API engine: {n} ToxiFrench requests, loopback OpenAI-compatible server, {results['repeat']} repeats "
        f"({results['cpus']} CPUs; medians; floor = bare {results['transport']})"
    )
    startup = results["startup"]
    print(
        f"start-up (median of {len(startup['help_s'])}): toxbench --help {med(startup['help_s']):.2f} s; launch to first request: "
        f"toxbench run {med(startup['first_request_s']):.2f} s, floor {med(startup['floor_first_request_s']):.2f} s "
        f"(target 0.5 s); python -c 'import openai' alone {med(startup['import_openai_s']):.2f} s"
    )
    one = {"floor": med(startup["floor_one_cpu_s"]), "toxbench": med(startup["toxbench_one_cpu_s"])}
    print(f"{'':12} | {'floor':^31} | {'toxbench':^31} | {'toxbench / floor':^27}")
    print(
        f"{'latency conc':12} | {'wall':>6} {'serve':>6} {'cpu':>6} {'ms/req':>6} {'eff':>4} | {'wall':>6} {'serve':>6} {'cpu':>6} "
        f"{'ms/req':>6} {'eff':>4} | {'wall':>6} {'serve':>6} {'cpu':>5} {'ms/req':>6}"
    )
    for case in results["cases"]:
        ideal = math.ceil(n / case["concurrency"]) * case["latency_ms"] / 1000
        row = {}
        for kind in ("floor", "toxbench"):
            runs = case[kind]
            wall, serving, cpu = (med(r[k] for r in runs) for k in ("wall_s", "serving_s", "cpu_s"))
            row[kind] = {
                "wall_s": wall,
                "serving_s": serving,
                "cpu_s": cpu,
                "cpu_ms_per_request": 1000 * (cpu - one[kind]) / (n - 1),
                "efficiency": ideal / wall,
            }
        case["ideal_s"], case["summary"] = ideal, row
        case["ratio"] = {
            k: row["toxbench"][k] / row["floor"][k] for k in ("wall_s", "serving_s", "cpu_s", "cpu_ms_per_request")
        }
        cells = [
            f"{row[k]['wall_s']:6.2f} {row[k]['serving_s']:6.2f} {row[k]['cpu_s']:6.2f} {row[k]['cpu_ms_per_request']:6.2f} "
            f"{row[k]['efficiency']:4.2f}"
            for k in ("floor", "toxbench")
        ]
        r = case["ratio"]
        print(
            f"{case['latency_ms']:>5}ms {case['concurrency']:>5} | {cells[0]} | {cells[1]} | {r['wall_s']:6.2f} {r['serving_s']:6.2f} "
            f"{r['cpu_s']:5.2f} {r['cpu_ms_per_request']:6.2f}"
        )
    print(
        "wall: launch to exit; serve: first request to last answer (server clock); cpu: whole process; ms/req: CPU of one "
        "more request, the 1-request run's CPU taken off"
    )
    if results["rate_limit"]:
        print("\nrate limit: server bucket 600/min (burst 5), concurrency 16")
        print(f"{'run':16} {'n':>5} {'wall s':>7} {'per min':>8} {'429s':>5} {'failed':>6}")
        for r in results["rate_limit"]:
            print(
                f"{r['run']:16} {r['n']:>5} {r['wall_s']:7.1f} {r['per_minute']:8.1f} {r['http_429']:>5} {r['failed_samples']:>6}"
            )
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(results, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
