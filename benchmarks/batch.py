"""Building, submitting and merging a 100,000-request `toxbench run --batch` against a loopback
server speaking OpenAI's Files and Batch API wire format (tests/fakes/openai_batch.py, in a process
of its own), through the real openai SDK.

The dataset is N synthetic French comments (a CSV); the server answers every line at once after
one poll. Per repeat: the whole `toxbench run --batch` process's wall time (launch to exit: the
dataset read, every line built, the JSONL files uploaded, the batches polled, every result parsed,
recorded and cached, the run settled), its peak resident memory (ru_maxrss of that process alone,
from os.wait4), and the batches it split the run into (OpenAI's limit: 50,000 requests a batch).
Targets: under 60 s and under 1 GB. Prints a table and writes benchmarks/batch.json.

    TOXBENCH_DATA_DIR=DIR python benchmarks/batch.py [--n 100000] [--repeat 1]   # DIR: the data mirror (prompts)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER = """
import sys, time
sys.path.insert(0, {tests!r})
from fakes.openai_batch import FakeBatchAPI
api = FakeBatchAPI(lambda body: "toxique" if "TOX" in body["messages"][-1]["content"] else "non-toxique", polls_in_progress=1)
print(api.url, flush=True)
sys.stdin.read()  # until the benchmark closes our stdin
"""


def one_run(url: str, dataset: Path, work: Path) -> dict:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench-0000000000000000", "TOXBENCH_CACHE": str(work / "cache.sqlite")}
    command = [
        sys.executable, "-m", "toxbench", "run", "--model", "openai:gpt-4o-mini", "--model-arg", f"base_url={url}",
        "-d", str(dataset), "--out", str(work / "runs"), "--batch", "--poll-interval", "0.2",
    ]  # fmt: skip
    started = time.perf_counter()
    with (work / "stderr.txt").open("w") as log:  # a file, not a pipe: os.wait4 reaps the process itself
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    err = (work / "stderr.txt").read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"toxbench run --batch failed:\n{err[-2000:]}")
    (manifest,) = (work / "runs").glob("*/manifest.json")
    counts = json.loads(manifest.read_text())["counts"]
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "recorded": sum(counts.values()),
        "status": {k: v for k, v in counts.items() if v},
        "batches": sum(" submitted (" in line for line in err.splitlines()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=str(ROOT / "tests"))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    url = server.stdout.readline().strip()
    results = []
    try:
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                dataset = work / "comments.csv"
                with dataset.open("w", encoding="utf-8") as f:
                    f.write("id,text,label\n")
                    for i in range(args.n):
                        toxic = i % 3 == 0
                        text = f"commentaire numéro {i} : {'TOX espèce de nul' if toxic else 'merci pour ton aide'}"
                        f.write(f"{i},{text},{int(toxic)}\n")
                results.append(one_run(url, dataset, work))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    wall = statistics.median(r["wall_s"] for r in results)
    rss = max(r["peak_rss_mb"] for r in results)
    print(
        f"toxbench run --batch, {args.n:,} requests, loopback OpenAI Batch API ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)"
    )
    print(f"{'repeat':>6} {'wall s':>8} {'peak MB':>8} {'batches':>8} {'recorded':>9}")
    for i, r in enumerate(results, 1):
        print(f"{i:>6} {r['wall_s']:>8.2f} {r['peak_rss_mb']:>8.1f} {r['batches']:>8} {r['recorded']:>9,}")
    verdict = "met" if wall < 60 and rss < 1024 else "MISSED"
    print(f"median wall {wall:.2f} s (target < 60 s), peak {rss:.0f} MB (target < 1024 MB): {verdict}")
    (HERE / "batch.json").write_text(
        json.dumps(
            {"n": args.n, "runs": results, "median_wall_s": wall, "peak_rss_mb": rss, "targets_met": verdict == "met"},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
