"""Time `toxbench leaderboard` as a whole process over every published prediction file.

cold: an empty runs directory, so all 126 published files are replayed into records first.
warm: the records exist; the leaderboards are regenerated from them (the everyday case).
Prints a table and writes benchmarks/leaderboard.json. Target: under 3 s on the project's
2-core machine.

    python benchmarks/leaderboard.py [--repeat 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 3.0


def run_once(runs: Path, out: Path, data_dir: str | None) -> float:
    cmd = [sys.executable, "-m", "toxbench", "leaderboard", "--runs", str(runs), "--out", str(out), "--quiet"]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    args = parser.parse_args()
    timings: dict[str, list[float]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):
            runs, out = Path(tmp) / "runs", Path(tmp) / "out"
            shutil.rmtree(runs, ignore_errors=True)
            timings["cold"].append(run_once(runs, out, args.data_dir))
            timings["warm"].append(run_once(runs, out, args.data_dir))
        n_runs = sum(1 for _ in (Path(tmp) / "runs").iterdir())
    print(f"toxbench leaderboard, every dataset, {n_runs} replayed runs, {args.repeat} repeats ({os.cpu_count()} CPUs)")
    print(f"{'case':6} {'median s':>9} {'min s':>7} {'max s':>7}  target < {TARGET_S:.0f} s")
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": n_runs,
        "target_s": TARGET_S,
        "cases": {},
    }
    for case, values in timings.items():
        median = statistics.median(values)
        print(f"{case:6} {median:9.2f} {min(values):7.2f} {max(values):7.2f}  {'ok' if median < TARGET_S else 'over'}")
        result["cases"][case] = {"median_s": median, "min_s": min(values), "max_s": max(values), "all_s": values}
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
