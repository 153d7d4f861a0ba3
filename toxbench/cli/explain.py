"""`toxbench explain` and `toxbench spans`: saliency explanations of encoder runs, and what they
are worth (span agreement with gold, faithfulness)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toxbench.cli._options import DataDirOption, console, data_dir
from toxbench.errors import ToxbenchError


def explain(
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="An encoder: encoder:PATH, encoder:minilm-l6 or finetuned:NAME (an encoder card)."
        ),
    ] = None,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="A dataset name or a CSV/JSONL file (with --model).")
    ] = "toxifrench",
    run_ref: Annotated[
        str | None,
        typer.Option("--run", help="Explain this recorded encoder run instead (a directory, run id or label)."),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="gradxinput (gradient × input) or ig (integrated gradients, captum).")
    ] = "gradxinput",
    extract: Annotated[str, typer.Option("--extract", help="Span rule: cliff, threshold or topk.")] = "cliff",
    extract_arg: Annotated[
        list[str] | None,
        typer.Option(
            "--extract-arg",
            help="A span rule constant, key=value (repeatable): threshold, k, peak_min, floor, max_drop, merge_gap, whole_words.",
        ),
    ] = None,
    tune_on: Annotated[
        str | None,
        typer.Option(
            "--tune-on",
            help="Choose the span rule's constants on this validation dataset (with gold spans) first, e.g. toxicspans-en:trial.",
        ),
    ] = None,
    spans_for: Annotated[
        str, typer.Option("--spans-for", help="predicted: spans where the run said toxic; all: every sample.")
    ] = "predicted",
    ig_steps: Annotated[int, typer.Option("--ig-steps", help="Integration steps of ig.")] = 50,
    ig_baseline: Annotated[
        str,
        typer.Option("--ig-baseline", help="The token each word becomes in ig's reference input: pad, mask or unk."),
    ] = "pad",
    no_faithfulness: Annotated[
        bool,
        typer.Option(
            "--no-faithfulness", help="Skip comprehensiveness, sufficiency and AOPC (7 more forward passes a sample)."
        ),
    ] = False,
    model_arg: Annotated[
        list[str] | None, typer.Option("--model-arg", help="key=value for the adapter (repeatable).")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N samples (with --model).")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", help="A seeded class-balanced sample of N samples (with --model).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Samples explained at once (default: 32, 8 for ig).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "--runs", help="Runs directory.")] = Path("runs"),
    data_dir_: DataDirOption = None,
) -> None:
    """Explain an encoder's decisions: token saliency, toxic spans and faithfulness, written to
    explanations.jsonl beside the run's records. Re-running resumes."""
    from toxbench._util import validate
    from toxbench.adapters.registry import parse_model_args
    from toxbench.explain.extraction import Extraction
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.explain import ExplainSettings

    if (model is None) == (run_ref is None):
        raise ToxbenchError(
            "give --model (a run is made first, or resumed) or --run (a recorded encoder run), not both"
        )
    if run_ref is not None and (limit or sample or model_arg):
        raise ToxbenchError(
            "--limit, --sample and --model-arg choose a new run: use them with --model; --run explains the run's own samples"
        )
    extraction = validate(
        Extraction, {"rule": extract, **parse_model_args(extract_arg or [])}, "--extract/--extract-arg"
    )
    settings = validate(
        ExplainSettings,
        {
            "method": method,
            "extraction": extraction,
            "spans_for": spans_for,
            "ig_steps": ig_steps,
            "ig_baseline": ig_baseline,
            "faithfulness": not no_faithfulness,
        },
        "toxbench explain",
    )
    data = data_dir(data_dir_)
    execution = ExecutionSettings(batch_size=batch_size)
    try:
        run_dir, explainer, counts = _explain(
            model,
            dataset,
            run_ref,
            settings,
            tune_on,
            parse_model_args(model_arg or []),
            limit,
            sample,
            out,
            data,
            execution,
        )
    except KeyboardInterrupt:
        console(stderr=True).print("interrupted: what was explained is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    console().print(
        f"{run_dir}: explainer {explainer}: {counts['ok']} of {counts['samples']} samples explained, {counts['error']} errors"
        + (f" ({counts['unlabelled']} without a label are not explained)" if counts["unlabelled"] else "")
        + f"; next: toxbench spans {run_dir}"
    )


def _explain(model, dataset, run_ref, settings, tune_on, model_args, limit, sample, out, data, execution):
    from toxbench.data.datasets import parse_dataset_spec
    from toxbench.records import find_run, read_manifest
    from toxbench.run.explain import explain_run, rebuild_adapter, tune_extraction
    from toxbench.run.runner import RunOptions, execute

    if run_ref is not None:
        run_dir = find_run(run_ref, out)
        spec = read_manifest(run_dir).spec
        dataset = spec.dataset
    if tune_on is not None and parse_dataset_spec(tune_on) == parse_dataset_spec(
        dataset
    ):  # checked before a model loads
        raise ToxbenchError(
            f"--tune-on {tune_on} is the dataset being explained; tune on another split (e.g. toxicspans-en:trial for toxicspans-en:test)"
        )
    if run_ref is not None:
        model, model_args, adapter = rebuild_adapter(run_dir, spec, data)
    else:
        from toxbench.adapters.registry import create
        from toxbench.run.explain import encoder_of
        from toxbench.run.progress import preparing

        options = RunOptions(
            model=model, dataset=dataset, model_args=model_args, limit=limit, sample=sample, runs_dir=out
        )
        with preparing(model):
            adapter = create(model, model_args, data)
        encoder_of(adapter)  # a chat model is refused before its run is made
        run_dir = None
    if tune_on is not None:
        settings = tune_extraction(model, model_args, tune_on, settings, data, out, execution, True, adapter)
        console(stderr=True).print(
            f"span rule {settings.extraction.rule} tuned on {tune_on}: "
            + ", ".join(f"{k}={v}" for k, v in settings.extraction.constants().items())
            + f" (SemEval F1 {settings.tuned_on['semeval_f1']:.4f} there)"
        )
    if run_dir is None:
        run_dir = execute(options, data, execution, True, adapter=adapter).run_dir
    explainer, counts = explain_run(run_dir, settings, data, execution, True, adapter)
    return run_dir, explainer, counts


def spans(
    run_ref: Annotated[str, typer.Argument(help="A run directory, run id (or unique prefix) or label.")],
    explainer: Annotated[
        str | None,
        typer.Option("--explainer", help="Which explainer's lines (an id or prefix; needed when several wrote)."),
    ] = None,
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    data_dir_: DataDirOption = None,
) -> None:
    """Span F1 / precision / recall / IoU against gold spans (beside SemEval's floors), and
    faithfulness (comprehensiveness, sufficiency, AOPC), of a run's explanations."""
    import json

    from toxbench.analysis.explanations import summarise
    from toxbench.data.datasets import texts_by_id
    from toxbench.explanations import read_explanations
    from toxbench.records import find_run, read_manifest

    run_dir = find_run(run_ref, runs)
    chosen, settings, lines = read_explanations(run_dir, explainer)
    spec = read_manifest(run_dir).spec
    summary = summarise(lines, texts_by_id(spec.dataset, data_dir(data_dir_)))
    if as_json:
        typer.echo(
            json.dumps({"run": run_dir.name, "explainer": chosen, "settings": settings, **summary.as_dict()}, indent=2)
        )
        return
    out = console()
    from toxbench.explain.extraction import Extraction

    rule = settings["extraction"]
    constants = ", ".join(f"{k}={v}" for k, v in Extraction(**rule).constants().items())
    out.print(
        f"[bold]{run_dir.name}[/] — explainer {chosen}: {settings['method']}, spans by {rule['rule']} ({constants})"
        + (f", tuned on {settings['tuned_on']['dataset']}" if settings.get("tuned_on") else ", constants not tuned")
    )
    out.print(
        f"explained {summary.explained} samples ({summary.errors} errors); {summary.with_spans} with at least one span"
    )
    if summary.spans:
        s = summary.spans
        out.print(
            f"spans vs gold ({s['n']} posts): SemEval char F1 {s['f1']:.4f}   char P {s['precision']:.4f} R {s['recall']:.4f}   "
            f"IoU {s['iou']:.4f}   overlap F1 {s['overlap_f1']:.4f}"
        )
        if summary.floors:
            out.print(
                f"  floors on the same posts: no span {summary.floors['empty']:.4f}, every character {summary.floors['all_characters']:.4f}"
            )
    else:
        out.print("spans vs gold: the dataset has no gold spans (faithfulness below needs none)")
    for measure, value in summary.faithfulness.items():
        low, high = value["ci95"]
        out.print(f"{measure}: {value['mean']:.4f} (95% CI {low:.4f}–{high:.4f}, n={value['n']})")
    if summary.ig_delta_max is not None:
        out.print(f"integrated gradients: largest |convergence delta| {summary.ig_delta_max:.2e}")
