"""`toxbench calibrate`: a scored run's threshold chosen on a seeded dev split, scored on the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import RunsOption, console, pct
from toxbench.errors import ToxbenchError


def calibrate(
    run: Annotated[str, typer.Argument(help="A scored run: directory, run id (or unique prefix) or label.")],
    dev_fraction: Annotated[
        float,
        typer.Option(
            "--dev-fraction",
            help="Share of the samples, stratified by label, that chooses the threshold; the rest is scored.",
        ),
    ] = 0.2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the dev split.")] = 0,
    objective: Annotated[
        str, typer.Option("--objective", help="What the threshold maximises on the dev part: accuracy or macro-f1.")
    ] = "accuracy",
    runs: RunsOption = Path("runs"),
    record: Annotated[
        bool,
        typer.Option(
            "--record/--no-record", help="Write the rest, relabelled, as a run (ranked with the subset runs)."
        ),
    ] = True,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the threshold and every figure to this file.")
    ] = None,
) -> None:
    """Choose a scored run's decision threshold on a seeded dev split (maximising accuracy or macro
    F1), and report metrics on the other samples only, beside the run's own labels on the same
    samples."""
    from rich.table import Table

    from toxbench._util import writable_file, write_atomic
    from toxbench.analysis.calibration import OBJECTIVES
    from toxbench.analysis.calibration import calibrate as calibrate_run
    from toxbench.analysis.significance import format_p
    from toxbench.records import Run, RunSpec, find_run, write_run

    if objective not in OBJECTIVES:
        raise ToxbenchError(f"--objective {objective}: choose accuracy or macro-f1")
    if seed < 0:
        raise ToxbenchError(f"--seed {seed}: give a whole number of at least 0")
    if not 0 < dev_fraction < 1:
        raise ToxbenchError(f"--dev-fraction {dev_fraction}: give a fraction between 0 and 1 (e.g. 0.2)")
    if json_out:
        writable_file(json_out, "--json")
    base = Run.load(find_run(run, runs))
    if base.manifest.status != "complete":
        raise ToxbenchError(f"{base.dir}: the run is not finished; run it again to resume, then calibrate it")
    if base.spec.adapter == "calibrated":
        raise ToxbenchError(
            f"{base.dir}: already a calibrated run; calibrate the run it came from ({base.spec.adapter_params['run']})"
        )
    name = base.spec.label or base.dir.name
    try:
        result = calibrate_run(base.records, dev_fraction, seed, objective)  # type: ignore[arg-type]
    except ToxbenchError as exc:
        raise ToxbenchError(f"{name}: {exc}") from None
    n_dev, n_rest = len(result.dev_ids), len(result.records)
    out = console()
    out.print(
        f"{name}: threshold {result.threshold:.6g}, chosen on a dev part of {n_dev} samples ({dev_fraction:g}, stratified, seed {seed}) "
        f"by {objective} ({result.dev_value:.4f} there); scored on the other {n_rest}"
        + (f"; {result.unscored} samples without a score keep the run's own label" if result.unscored else ""),
        markup=False,
    )
    table = Table(
        "part",
        "labels",
        "n",
        "accuracy",
        "95% CI",
        "macro F1",
        "F1 (0)",
        "F1 (1)",
        caption=f"rest: the {n_rest} samples scored (the result); dev*: the {n_dev} that chose the threshold (not a result). Percentages.",
    )
    cut = f">= {result.threshold:.4g}"
    for key, part, labels in (
        ("test own", "rest", "own"),
        ("test calibrated", "rest", cut),
        ("dev own", "dev*", "own"),
        ("dev calibrated", "dev*", cut),
    ):
        m = result.metrics[key]
        table.add_row(
            part,
            labels,
            str(m.n),
            pct(m.accuracy),
            f"{pct(m.accuracy_ci_low)}–{pct(m.accuracy_ci_high)}",
            pct((m.f1_0 + m.f1_1) / 2),
            pct(m.f1_0),
            pct(m.f1_1),
        )
    out.print(table)
    out.print(f"on the rest, own labels vs threshold: exact McNemar p = {format_p(result.mcnemar_p)}")
    payload = {
        "run": base.dir.name,
        "label": name,
        "threshold": result.threshold,
        "objective": objective,
        "dev_fraction": dev_fraction,
        "seed": seed,
        "dev_objective": result.dev_value,
        "dev_ids": result.dev_ids,
        "unscored": result.unscored,
        "mcnemar_p": result.mcnemar_p,
        "metrics": {k: m.as_dict() for k, m in result.metrics.items()},
    }
    if record:
        spec = RunSpec(
            **(
                base.spec.model_dump(exclude={"toxbench_version"})
                | {
                    "adapter": "calibrated",
                    "label": f"{name}-calibrated-{objective}",
                    "adapter_params": {
                        "run": base.dir.name,
                        "threshold": result.threshold,
                        "objective": objective,
                        "dev_fraction": dev_fraction,
                        "seed": seed,
                    },
                    "subset": ", ".join(
                        filter(None, [base.spec.subset, f"rest after a {dev_fraction:g} dev split, seed {seed}"])
                    ),
                }
            )
        )
        notes = [
            f"{name} relabelled at threshold {result.threshold:.6g}, chosen on a stratified dev part ({dev_fraction:g}, seed {seed}) by "
            f"{objective}; only the other {n_rest} samples are recorded and scored"
        ]
        run_dir = write_run(runs, spec, result.records, notes)
        payload["calibrated_run"] = run_dir.name
        out.print(f"recorded {run_dir}", markup=False)
    if json_out:
        write_atomic(json_out, json.dumps(payload, indent=2) + "\n")
        out.print(f"wrote {json_out}", markup=False)
