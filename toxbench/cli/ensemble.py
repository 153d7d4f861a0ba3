"""`toxbench ensemble`: majority vote and cross-fitted stacking of a dataset's recorded runs, each
ensemble written as an ordinary run."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import DataDirOption, console, data_dir
from toxbench.errors import ToxbenchError

METHODS = ("all", "vote", "stack")
FEATURES = ("votes", "scores")


def _c_values(values: list[str]) -> list[float | str]:
    out: list[float | str] = []
    for value in values:
        if value == "auto":
            out.append("auto")
            continue
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not number > 0 or number == float("inf"):
            raise ToxbenchError(f"--c {value}: give a positive number (the inverse regularisation strength) or auto")
        out.append(number)
    return out


def ensemble(
    member: Annotated[
        list[str] | None,
        typer.Argument(
            help="Runs to combine: labels, run ids or globs (default: every complete run of the dataset).",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="The dataset whose complete runs are the members.")
    ] = "toxifrench",
    method: Annotated[str, typer.Option("--method", help="vote, stack, or all (both).")] = "all",
    features: Annotated[
        list[str] | None,
        typer.Option(
            "--features",
            help="The stack's inputs: votes, or scores (a run's P(toxic) where it recorded one, else its vote). Repeatable: one stack per value.",
            show_default=False,
        ),
    ] = None,
    c: Annotated[
        list[str] | None,
        typer.Option(
            "--c",
            help="The stack's inverse regularisation C, or auto (chosen on each training part by inner 5-fold CV on log-loss). Repeatable. Default: 1.",
            show_default=False,
        ),
    ] = None,
    folds: Annotated[int, typer.Option("--folds", help="Stratified folds of the cross-fitted stack.")] = 5,
    seeds: Annotated[int, typer.Option("--seeds", help="Fold assignments to repeat over (seeds 0..N-1).")] = 10,
    best_k: Annotated[
        int | None,
        typer.Option("--best-k", help="Also stack only the K runs most accurate on each fold's training part."),
    ] = None,
    in_sample: Annotated[
        bool, typer.Option("--in-sample", help="Also show the optimistic in-sample stack, labelled as such.")
    ] = False,
    runs: Annotated[
        list[Path] | None,
        typer.Option(
            "--runs",
            help="Runs directory to take members from (repeatable; default: runs); each ensemble is recorded in the first.",
            show_default=False,
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record", help="Write each ensemble as a run (on the leaderboard, usable by compare)."
        ),
    ] = True,
    out: Annotated[Path | None, typer.Option("--out", help="Write NAME.md and NAME.json here.")] = None,
    source: Annotated[
        str,
        typer.Option(
            "--source", help="Members from: yours (runs made here), release (the release's replayed files), or all."
        ),
    ] = "all",
    name: Annotated[
        str | None,
        typer.Option("--name", help="The files' name in --out (default: the dataset's).", show_default=False),
    ] = None,
    data_dir_: DataDirOption = None,
) -> None:
    """Ensembles of recorded runs chosen without looking at the labels they are scored on: the
    majority vote, and logistic-regression stacking cross-fitted over folds and seeds."""
    import numpy as np

    from toxbench._util import folder_name, writable_dir, write_atomic
    from toxbench.analysis.ensemble import (
        INNER_FOLDS,
        StackConfig,
        build,
        markdown,
        members,
        records,
        run_notes,
        run_spec,
    )
    from toxbench.data.datasets import is_path_spec, load_dataset
    from toxbench.records import write_run

    if method not in METHODS:
        raise ToxbenchError(f"--method {method}: choose one of {', '.join(METHODS)}")
    for value in features or ():
        if value not in FEATURES:
            raise ToxbenchError(f"--features {value}: choose votes or scores")
    for option, number, least in (("--folds", folds, 2), ("--seeds", seeds, 1), ("--best-k", best_k, 1)):
        if number is not None and number < least:
            raise ToxbenchError(f"{option} {number}: give a whole number of at least {least}")
    if method == "vote" and (best_k or c or features):
        raise ToxbenchError("--best-k, --c and --features set up stacking; --method vote takes none of them")
    c_values = _c_values(c or ["1"])
    runs_dirs = runs or [Path("runs")]
    for directory in runs_dirs:
        if not directory.is_dir():
            raise ToxbenchError(
                f"--runs {directory}: no such runs directory; --runs is where runs are recorded, and member runs are "
                "named as arguments (toxbench ensemble RUN_A RUN_B ...)"
            )
    if out is not None:
        writable_dir(out, "--out")
    if record:
        writable_dir(runs_dirs[0], "--runs")
    loaded = load_dataset(dataset, data_dir(data_dir_))
    samples = loaded.samples
    ids, gold = [s.id for s in samples], np.array([s.label for s in samples])
    if any(g is None for g in gold.tolist()):
        raise ToxbenchError(
            f"--dataset {dataset}: some samples have no gold label; an ensemble is fitted and scored on gold labels"
        )
    smallest = min(int((gold == 1).sum()), int((gold == 0).sum()))
    if method != "vote" and smallest < folds:
        raise ToxbenchError(
            f"--folds {folds}: the dataset has {smallest} sample(s) of its smaller class; give at most {smallest} folds"
        )
    if "auto" in c_values and method != "vote" and smallest * (folds - 1) // folds < INNER_FOLDS:
        raise ToxbenchError(
            f"--c auto: each training part holds fewer than {INNER_FOLDS} samples of the smaller class for the inner "
            "cross-validation; give a number for --c"
        )
    if source not in ("yours", "release", "all"):
        raise ToxbenchError(f"--source {source!r}: use yours, release, all")
    found, notes = members(runs_dirs, loaded.name, ids, loaded.sha256, member or (), source)
    if len(found) < 2:
        left_out = (
            f"; left out: {'; '.join(notes[:3])}{f' (and {len(notes) - 3} more)' if len(notes) > 3 else ''}"
            if notes
            else ""
        )
        raise ToxbenchError(
            f"--dataset {dataset}: {len(found)} complete run(s) of the whole dataset found in {', '.join(map(str, runs_dirs))}; "
            f"an ensemble needs at least 2 (run or replay more, or check the run names given){left_out}"
        )
    stacks = (
        [StackConfig(f, value) for f, value in product(features or ["votes"], c_values)] if method != "vote" else []
    )
    if best_k and stacks:
        stacks.append(StackConfig(stacks[0].features, stacks[0].c, min(best_k, len(found))))
    result = build(found, ids, gold, folds, seeds, vote=method != "stack", stacks=stacks, show_in_sample=in_sample)
    from collections import Counter

    from toxbench.records import read_manifest, run_source

    sources = Counter(run_source(read_manifest(m.run_dir).spec) for m in found)
    summary = result.as_dict() | {"notes": notes, "sources": dict(sorted(sources.items()))}
    if record:
        lang = samples[0].lang if len({s.lang for s in samples}) == 1 else None
        for derived in result.derived:
            spec = run_spec(derived, found, loaded.name, loaded.sha256, lang, folds, seeds)
            run_dir = write_run(
                runs_dirs[0],
                spec,
                records(derived, ids, gold),
                run_notes(derived, found, folds, seeds, result.fair_single, result.best_single),
            )
            derived.row["run"] = spec.label
            derived.row["run_id"] = run_dir.name
    text = markdown(f"{dataset} ({name})" if name else dataset, summary)
    console().print(text, markup=False)
    if out is not None:
        stem = folder_name(
            name or (Path(dataset).stem if is_path_spec(dataset) else dataset)
        )  # never a path outside --out
        write_atomic(out / f"{stem}.md", text)
        write_atomic(out / f"{stem}.json", json.dumps(summary, indent=2) + "\n")
