"""Throughput of the CoT annotation pipeline: `toxbench annotate run` (7 steps: the release's steps
without the optional certainty) against a loopback OpenAI-compatible server with a fixed latency.

The server is benchmarks/engine.py's (its own process, asyncio streams, HTTP/1.1 keep-alive; the
latency is in the URL, `/lat300/v1` waits 300 ms), answering every request with one text that
every step's parser reads (`Labels : S0/H0/V0/R0/A0/I0`, `Catégories : []`, `Note : 1/10`,
`Conclusion : 0`), so the run does all its work, parsing included.

Per case (medians over repeats): the whole process's wall time (launch to exit), the serving wall
(the server's first request to its last answer), comments per minute over the whole process, and
efficiency = ideal / serving wall with ideal = n x steps x latency / concurrency (the target:
at least 0.8 at 300 ms and concurrency 32). Prints a table and writes benchmarks/annotate.json.

    python benchmarks/annotate.py [--n 320] [--concurrency 32] [--latency 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 7
TEXT = "Labels : S0/H0/V0/R0/A0/I0\nCatégories : []\nNote : 1/10\nConclusion : 0\nJustification : neutre."


def engine_module():
    spec = importlib.util.spec_from_file_location("bench_engine", HERE / "engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def serve(port: int) -> None:
    engine = engine_module()
    engine.REPLY = {
        **engine.REPLY,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
    }
    asyncio.run(engine.serve(port))


def stats(port: int, key: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/{key}") as response:
        return json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=320, help="comments")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[32])
    parser.add_argument("--latency", type=int, nargs="+", default=[300], help="milliseconds")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve)
    engine = engine_module()
    port = engine.free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    results = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "n": args.n,
        "steps": STEPS,
        "repeat": args.repeat,
        "cases": [],
    }
    try:
        time.sleep(1.0)
        with tempfile.TemporaryDirectory() as tmp:
            comments = Path(tmp) / "comments.csv"
            comments.write_text(
                "id,text\n" + "".join(f"{i},commentaire numéro {i} sur le forum\n" for i in range(args.n)), "utf-8"
            )
            env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "TOXBENCH_CACHE": str(Path(tmp) / "cache.sqlite")}
            if args.data_dir:
                env["TOXBENCH_DATA_DIR"] = args.data_dir
            run = 0
            for latency in args.latency:
                for concurrency in args.concurrency:
                    walls, serving, efficiency, cpus = [], [], [], []
                    for _ in range(args.repeat):
                        run += 1
                        key = f"lat{latency}x{run}"
                        cmd = [
                            sys.executable,
                            "-m",
                            "toxbench",
                            "annotate",
                            "run",
                            str(comments),
                            "--model",
                            "openai:gpt-4o-mini",
                            "--model-arg",
                            f"base_url=http://127.0.0.1:{port}/{key}/v1",
                            "--concurrency",
                            str(concurrency),
                            "--no-cache",
                            "--out",
                            str(Path(tmp) / f"out{run}"),
                            "--json",
                        ]
                        wall, cpu, out = engine.timed(cmd, env)
                        cpus.append(cpu)
                        summary = json.loads(out.strip().splitlines()[-1])
                        assert summary["state"] == {"ok": args.n}, summary
                        seen = stats(port, key)
                        assert seen["ok"] == args.n * STEPS, seen
                        served = seen["last_at"] - seen["first_at"]
                        ideal = args.n * STEPS * latency / 1000 / concurrency
                        walls.append(wall)
                        serving.append(served)
                        efficiency.append(ideal / served)
                    case = {
                        "latency_ms": latency,
                        "concurrency": concurrency,
                        "ideal_s": round(ideal, 2),
                        "wall_s": round(statistics.median(walls), 2),
                        "serving_s": round(statistics.median(serving), 2),
                        "comments_per_min": round(args.n / statistics.median(walls) * 60, 1),
                        "efficiency": round(statistics.median(efficiency), 3),
                        "cpu_s": round(statistics.median(cpus), 2),
                        "walls": [round(w, 2) for w in walls],
                    }
                    results["cases"].append(case)
    finally:
        server.terminate()
    print(f"{args.n} comments x {STEPS} steps; medians of {args.repeat}")
    print(
        f"{'latency':>8} {'conc':>5} {'ideal s':>8} {'serving s':>10} {'wall s':>7} {'comments/min':>13} {'efficiency':>11} {'client CPU s':>13}"
    )
    for c in results["cases"]:
        print(
            f"{c['latency_ms']:>6}ms {c['concurrency']:>5} {c['ideal_s']:>8} {c['serving_s']:>10} {c['wall_s']:>7} {c['comments_per_min']:>13} {c['efficiency']:>11} {c['cpu_s']:>13}"
        )
    (HERE / "annotate.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
