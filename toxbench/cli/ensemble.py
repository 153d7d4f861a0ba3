"""`toxbench ensemble`: majority vote and cross-fitted stacking of a dataset's recorded runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from toxbench.cli._options import DataDirOption, console, data_dir
from toxbench.errors import ToxbenchError


def ensemble(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset whose complete runs are the members.")] = "toxifrench",
    runs: Annotated[Optional[list[Path]], typer.Option("--runs", help="Runs directories to take members from (repeatable; default: runs).")] = None,
    member: Annotated[Optional[list[str]], typer.Option("--member", help="Only runs whose label or id matches this glob (repeatable; default: every complete run).")] = None,
    folds: Annotated[int, typer.Option("--folds", help="Stratified folds of the cross-fitted stack.")] = 5,
    seeds: Annotated[int, typer.Option("--seeds", help="Fold assignments to repeat over (seeds 0..N-1).")] = 10,
    best_k: Annotated[Optional[int], typer.Option("--best-k", help="Also stack only the K runs most accurate on each fold's training part.")] = None,
    in_sample: Annotated[bool, typer.Option("--in-sample", help="Also show the optimistic in-sample stack, labelled as such.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write DATASET.md and DATASET.json here.")] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Ensembles of recorded runs chosen without looking at the labels they are scored on: the
    majority vote, and logistic-regression stacking cross-fitted over folds and seeds."""
    from toxbench._util import writable_dir, write_atomic
    from toxbench.analysis.ensemble import markdown, members, report
    from toxbench.data.datasets import is_path_spec, load_dataset

    import numpy as np

    for option, value, least in (("--folds", folds, 2), ("--seeds", seeds, 1), ("--best-k", best_k, 1)):
        if value is not None and value < least:
            raise ToxbenchError(f"{option} {value}: give a whole number of at least {least}")
    if out is not None:
        writable_dir(out, "--out")
    found, notes = members(runs or [Path("runs")], dataset, member or ())
    if len(found) < 2:
        raise ToxbenchError(f"--dataset {dataset}: {len(found)} complete run(s) found in {', '.join(map(str, runs or ['runs']))}; "
                            "an ensemble needs at least 2 (run or replay more, or check --member)")
    samples = load_dataset(dataset, data_dir(data_dir_)).samples
    gold = np.array([s.label for s in samples])
    result = report(found, [s.id for s in samples], gold, folds, seeds, best_k, in_sample)
    result["notes"] = notes
    text = markdown(dataset, result)
    console().print(text, markup=False)
    if out is not None:
        name = re.sub(r"[^\w.-]", "-", Path(dataset).stem if is_path_spec(dataset) else dataset)  # never a path outside --out
        write_atomic(out / f"{name}.md", text)
        write_atomic(out / f"{name}.json", json.dumps(result, indent=2) + "\n")
