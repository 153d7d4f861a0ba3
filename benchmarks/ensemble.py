"""Wall time of ensembles over every complete ToxiFrench run in a runs directory (the release's
published files replayed by `toxbench leaderboard`, plus any live runs there).

Times, separately: reading the members' records, the majority vote, 10-seed 5-fold cross-fitted
stacking with C=1 (the target: under 5 s on this 2-core machine), and the same with C chosen on
each training part by inner 5-fold cross-validation (`--c auto`, 6 values of C). Prints a table and
writes benchmarks/ensemble.json.

    python benchmarks/ensemble.py [--runs runs] [--dataset toxifrench] [--folds 5] [--seeds 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--dataset", default="toxifrench")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    args = parser.parse_args()
    from toxbench.analysis.ensemble import cross_fitted_stack, majority_vote, members, stack_features, vote_matrix
    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset

    samples = load_dataset(args.dataset, DataDir(args.data_dir)).samples
    ids, gold = [s.id for s in samples], np.array([s.label for s in samples])
    timings = {"read": [], "vote": [], "stack": [], "stack_nested_c": []}
    for _ in range(args.repeat):
        start = time.perf_counter()
        found, _ = members([Path(args.runs)], args.dataset, ids)
        votes = vote_matrix([m.labels for m in found], ids)
        timings["read"].append(time.perf_counter() - start)
        start = time.perf_counter()
        voted = majority_vote(votes)
        timings["vote"].append(time.perf_counter() - start)
        start = time.perf_counter()
        stacked = cross_fitted_stack(stack_features(votes), gold, args.folds, range(args.seeds))
        timings["stack"].append(time.perf_counter() - start)
        start = time.perf_counter()
        nested = cross_fitted_stack(stack_features(votes), gold, args.folds, range(args.seeds), c="auto")
        timings["stack_nested_c"].append(time.perf_counter() - start)
    result = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "dataset": args.dataset,
        "members": len(found),
        "samples": len(ids),
        "folds": args.folds,
        "seeds": args.seeds,
        "vote_accuracy": float(np.mean([v == g for v, g in zip(voted, gold.tolist())])),
        "stack_accuracy": stacked.mean,
        "stack_range": [stacked.low, stacked.high],
        "stack_nested_c_accuracy": nested.mean,
        **{f"{k}_s": round(statistics.median(v), 3) for k, v in timings.items()},
    }
    print(f"{len(found)} runs x {len(ids)} samples; medians of {args.repeat}")
    print(
        f"{'read records s':>15} {'vote s':>8} {f'stack {args.folds}-fold x {args.seeds} seeds s':>26} {'same, nested C s':>17}"
    )
    print(f"{result['read_s']:>15} {result['vote_s']:>8} {result['stack_s']:>26} {result['stack_nested_c_s']:>17}")
    (HERE / "ensemble.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
