"""The notebook-style example (examples/notebooks/first-benchmark.py) runs end to end as a user
would run it: from an empty folder, with only the data directory set; it makes two runs, a
leaderboard and a comparison, and prints their DataFrames."""

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[1] / "examples" / "notebooks" / "first-benchmark.py"


def test_the_notebook_example_runs_and_shows_its_tables(tmp_path, data_root, models_dir):
    env = {**os.environ, "TOXBENCH_DATA_DIR": str(data_root), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    accuracies = re.findall(r"accuracy (0\.\d+) \[(0\.\d+), (0\.\d+)\], n=200", out)
    assert len(accuracies) == 2 and all(float(lo) <= float(acc) <= float(hi) for acc, lo, hi in accuracies)
    assert "{'ok': 200}" in out and "sample_id" in out and "pred_a" in out
    assert re.search(r"McNemar p = [0-9.e-]+, kappa = -?[0-9.]+, n = 200", out)
    assert (tmp_path / "results" / "notebook" / "leaderboard.csv").exists()
    assert len(list((tmp_path / "runs").iterdir())) == 2
