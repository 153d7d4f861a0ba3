"""Every committed file under results/ regenerates byte for byte from the data directory and the
committed local runs, with the repository's own script (so `git status` stays clean)."""

import os
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


def test_regenerating_results_changes_no_committed_file(tmp_path, data_root):
    env = {
        **os.environ,
        "TOXBENCH": f"{sys.executable} -m toxbench",
        "RUNS": str(tmp_path / "runs"),
        "OUT": str(tmp_path / "results"),
        "TOXBENCH_DATA_DIR": str(data_root),
        "COLUMNS": "200",
    }
    proc = subprocess.run(["sh", str(ROOT / "results" / "regenerate.sh")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    committed, regenerated = _files(ROOT / "results"), _files(tmp_path / "results")
    assert sorted(regenerated) == sorted(committed)  # no committed table is stale, none is missing
    changed = [name for name in committed if committed[name] != regenerated[name]]
    assert changed == []
