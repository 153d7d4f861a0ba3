"""Every committed file under results/ regenerates byte for byte from the data directory and the
committed local runs, with the repository's own script (so `git status` stays clean), even where a
user's own runs exist in `runs/`: the script reads only the sources it names."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_GENERATED = {"regenerate.sh", "README.md"}


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] != "runs" and p.name not in NOT_GENERATED
    }


def test_regenerating_results_changes_no_committed_file(tmp_path, data_root, models_dir):
    """In a copy of the repository whose runs/ holds a user's own ToxiFrench run (which would join
    the leaderboard and the ensembles if the script read runs/), with RUNS left to its default."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "results" / "runs", repo / "results" / "runs")
    shutil.copy(ROOT / "results" / "regenerate.sh", repo / "results" / "regenerate.sh")
    shutil.copytree(ROOT / "experiments", repo / "experiments")
    env = {
        **{k: v for k, v in os.environ.items() if k != "RUNS"},
        "TOXBENCH": f"{sys.executable} -m toxbench",
        "OUT": str(tmp_path / "results"),
        "TOXBENCH_DATA_DIR": str(data_root),
        "TMPDIR": str(tmp_path),
        "COLUMNS": "200",
    }
    own = subprocess.run(
        [sys.executable, "-m", "toxbench", "run", "--dataset", "toxifrench"], cwd=repo, env=env, capture_output=True
    )
    assert own.returncode == 0 and len(list((repo / "runs").iterdir())) == 1, own.stderr
    proc = subprocess.run(["sh", str(repo / "results" / "regenerate.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not list(tmp_path.glob("toxbench-release-runs.*"))  # its temporary runs directory is gone
    committed, regenerated = _files(ROOT / "results"), _files(tmp_path / "results")
    assert sorted(regenerated) == sorted(committed)  # no committed table is stale, none is missing
    changed = [name for name in committed if committed[name] != regenerated[name]]
    assert changed == []
