"""A throwaway package registers an adapter through the `toxbench.adapters` entry point, is
installed, and runs end to end through `toxbench run` (docs/adding-an-adapter.md's example)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "adding-an-adapter.md"


@pytest.mark.slow
def test_entry_point_adapter_runs_end_to_end(tmp_path, data_root):
    source = re.search(r"```python\n(# my_toxbench_keywords/adapter.py\n.*?)```", DOC.read_text("utf-8"), re.S).group(1)
    pkg = tmp_path / "src"
    (pkg / "my_toxbench_keywords").mkdir(parents=True)
    (pkg / "my_toxbench_keywords" / "__init__.py").write_text("")
    (pkg / "my_toxbench_keywords" / "adapter.py").write_text(source)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "my-toxbench-keywords"\nversion = "0.1"\n'
        '[tool.setuptools]\npackages = ["my_toxbench_keywords"]\n'
        '[project.entry-points."toxbench.adapters"]\nkeywords = "my_toxbench_keywords.adapter:KeywordAdapter"\n'
    )
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(pkg)],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}

    listed = subprocess.run(
        [sys.executable, "-m", "toxbench", "adapters"], env={**env, "COLUMNS": "200"}, capture_output=True, text=True
    )
    assert listed.returncode == 0 and re.search(r"keywords\s+│\s+classifier", listed.stdout)

    data = tmp_path / "d.csv"
    data.write_text("id,text,label\n1,tu es nul,1\n2,merci,0\n3,quel idiot,1\n4,bonne journée,0\n", encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "toxbench",
            "run",
            "--model",
            "keywords",
            "-d",
            str(data),
            "--model-arg",
            "words=idiot,nul",
            "--out",
            str(tmp_path / "runs"),
            "--no-cache",
            "--json",
            "--data-dir",
            str(data_root),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["n"] == 4 and summary["metrics"]["accuracy"] == 1.0 and summary["requests_sent"] == 4
    assert "keywords" in summary["run_dir"]
