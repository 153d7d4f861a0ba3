"""The `toxbench` command: parses options and calls the harness; nothing else lives here.

Imports of the harness happen inside each command so `toxbench --help` stays fast and never
imports torch, scikit-learn or a provider SDK.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from toxbench import __version__
from toxbench.errors import ToxbenchError

app = typer.Typer(
    help="Benchmark toxicity detectors from records you can trust.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="The data directory: list, verify, fetch and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDirOption = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Data directory (else $TOXBENCH_DATA_DIR, else the user cache directory).", show_default=False),
]
MirrorOption = Annotated[
    Optional[str],
    typer.Option("--mirror", help="Download from this base URL instead of the pinned upstream URLs (else $TOXBENCH_DATA_MIRROR).", show_default=False),
]


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _data(data_dir: Path | None, mirror: str | None = None):
    from toxbench.harness.datadir import DataDir

    return DataDir(data_dir, mirror=mirror)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"toxbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """toxbench: datasets, runs, metrics and leaderboards for toxicity detection."""


@data_app.command("list")
def data_list(data_dir: DataDirOption = None) -> None:
    """Known datasets, where each file is, and whether it matches its pinned checksum."""
    from rich.table import Table

    from toxbench.harness.datasets import REGISTRY, RTPLX_FILE, RTPLX_LOCALES
    from toxbench.harness.published import published_files

    data = _data(data_dir)
    console = _console()
    console.print(f"data directory: {data.root} (from {data.source})")
    table = Table("dataset", "description", "file", "status")
    style = {"ok": "green", "missing": "yellow", "mismatch": "red"}
    rows = [(name, info.description, rel) for name, info in REGISTRY.items() for rel in info.files]
    locales = ["ZH-Hans" if loc == "ZH-HANS" else loc for loc in RTPLX_LOCALES]
    rows += [(f"rtplx:{loc}", "RTP-LX, seeded balanced sample", RTPLX_FILE.format(loc)) for loc in locales]
    for name, description, rel in rows:
        state = data.status(rel)
        table.add_row(name, description, str(data.root / rel), f"[{style[state]}]{state}[/]")
    console.print(table)
    states = [data.status(rel) for rel in published_files(data)]
    console.print(
        f"published prediction files: {len(states)} ({states.count('ok')} ok, {states.count('missing')} missing, "
        f"{states.count('mismatch')} mismatch) under {data.root / 'toxifrench/predictions'}"
    )


@data_app.command("verify")
def data_verify(data_dir: DataDirOption = None) -> None:
    """Check the sha256 of every manifest file; exit 1 if any is missing or differs."""
    data = _data(data_dir)
    console = _console()
    bad = 0
    for rel in data.known_files:
        state = data.status(rel)
        if state != "ok":
            bad += 1
            console.print(f"{state:8s} {data.root / rel}")
    total = len(data.known_files)
    console.print(f"{total - bad} of {total} files verified in {data.root}")
    if bad:
        console.print("fix: `toxbench data fetch` downloads missing files; add --force to replace differing ones")
        raise typer.Exit(1)


@data_app.command("fetch")
def data_fetch(
    files: Annotated[Optional[list[str]], typer.Argument(help="Manifest paths to fetch (default: all).", show_default=False)] = None,
    data_dir: DataDirOption = None,
    mirror: MirrorOption = None,
    force: Annotated[bool, typer.Option("--force", help="Re-download files whose checksum differs.")] = False,
) -> None:
    """Download the pinned upstream files, verify their sha256 and place them atomically."""
    data = _data(data_dir, mirror)
    console = _console()
    console.print(f"data directory: {data.root}")
    outcomes = data.fetch(files or None, force=force, on_file=lambda rel, outcome: outcome != "present" and console.print(f"{outcome:8s} {rel}"))
    failed = [rel for rel, outcome in outcomes.items() if outcome.startswith(("failed", "mismatch"))]
    fetched = sum(1 for o in outcomes.values() if o == "fetched")
    console.print(f"{fetched} fetched, {len(outcomes) - fetched - len(failed)} already present, {len(failed)} failed")
    if failed:
        raise typer.Exit(1)


@data_app.command("show")
def data_show(
    dataset: Annotated[str, typer.Argument(help="A dataset name (toxifrench, rtplx:FR, ...) or a path to a CSV/JSONL file.")],
    data_dir: DataDirOption = None,
    text_col: Annotated[Optional[str], typer.Option("--text-col", help="Text column of a user file (default: text or content).")] = None,
    label_col: Annotated[Optional[str], typer.Option("--label-col", help="0/1 label column of a user file (default: label).")] = None,
    id_col: Annotated[Optional[str], typer.Option("--id-col", help="Id column of a user file (default: id; else a hash of the text).")] = None,
    lang_col: Annotated[Optional[str], typer.Option("--lang-col", help="Language column of a user file (default: lang).")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of a user file without a language column.")] = "und",
    rows: Annotated[int, typer.Option("--rows", help="How many rows to show.")] = 5,
) -> None:
    """Counts, class balance, languages and a few rows of a dataset."""
    from collections import Counter

    from rich.table import Table

    from toxbench.harness.datasets import load_dataset
    from toxbench.harness.tables import Columns

    ds = load_dataset(dataset, _data(data_dir), Columns(text_col, label_col, id_col, lang_col), default_lang=lang)
    console = _console()
    labels = Counter(s.label for s in ds.samples)
    n = len(ds)
    console.print(f"[bold]{ds.name}[/] — {ds.description}")
    console.print(f"samples: {n}   toxic (1): {labels[1]} ({100 * labels[1] / n:.1f}%)   non-toxic (0): {labels[0]} ({100 * labels[0] / n:.1f}%)")
    console.print("languages: " + ", ".join(f"{k} {v}" for k, v in Counter(s.lang for s in ds.samples).most_common()))
    console.print(f"identity sha256: {ds.sha256[:16]}…")
    table = Table("id", "label", "text")
    for sample in ds.samples[:rows]:
        text = " ".join(sample.text.split())
        table.add_row(sample.id, str(sample.label), text[:100] + ("…" if len(text) > 100 else ""))
    console.print(table)


@app.command("leaderboard")
def leaderboard(
    dataset: Annotated[Optional[list[str]], typer.Option("--dataset", "-d", help="Dataset(s) to rank (default: every dataset with published predictions).", show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Where leaderboard.csv and leaderboard.md go (one sub-directory per dataset when there are several).")] = Path("results"),
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory: every complete run in it is ranked; published files are replayed into it.")] = Path("runs"),
    data_dir: DataDirOption = None,
    labelled_only: Annotated[bool, typer.Option("--labelled-only", help="Compute metrics on labelled samples only (default: unlabelled answers count as wrong).")] = False,
    published: Annotated[bool, typer.Option("--published/--no-published", help="Replay the release's published prediction files first.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Write the files without printing the tables.")] = False,
) -> None:
    """Rank every run of a dataset (published predictions included) and write CSV and Markdown."""
    from toxbench.harness import leaderboard as lb
    from toxbench.harness.published import PUBLISHED_DATASETS, DatasetCache, import_published

    names = dataset or list(PUBLISHED_DATASETS)
    data = _data(data_dir)
    err = _console(stderr=True)
    if published:
        import os

        from rich.progress import Progress

        from toxbench.harness.published import published_files

        rels = published_files(data)
        # No refresh thread (auto_refresh=False): the import may fork worker processes.
        with Progress(transient=True, console=err, auto_refresh=False) as progress:
            task = progress.add_task("replaying published predictions", total=len(rels))

            def advance(_item) -> None:
                progress.advance(task)
                progress.refresh()

            imported = import_published(
                data, runs, rels, DatasetCache(data), only_dataset=names[0] if len(names) == 1 else None,
                workers=os.cpu_count() or 1, on_done=advance,
            )
        for item in imported:
            if item.run_dir is None:
                err.print(f"[yellow]note[/] {item.rel}: {'; '.join(item.problems)}")
    policy = "labelled_only" if labelled_only else "count_as_wrong"
    console = _console()
    for name in names:
        board = lb.collect(runs, name, policy)
        target = out if len(names) == 1 else out / name
        csv_path, md_path = lb.write(board, target)
        if not quiet:
            _print_board(console, board)
        console.print(f"{name}: {len(board.rows)} runs -> {csv_path}, {md_path}")


def _print_board(console, board) -> None:
    from rich.table import Table

    from toxbench.harness.metrics import POLICY_TEXT

    def pct(x):
        return "–" if x is None or x != x else f"{100 * x:.1f}"

    table = Table("#", "run", "prompt", "shots", "n", "cov", "P0", "R0", "F1-0", "P1", "R1", "F1-1", "acc", "95% CI", "AUC", title=f"{board.dataset}", caption=POLICY_TEXT[board.policy])
    for rank, row in enumerate(board.rows, start=1):
        m = row.metrics
        table.add_row(
            str(rank), row.run + (" *" if row.notes else ""), row.prompt or "–", row.shots or "–", str(m.n), pct(m.coverage),
            pct(m.precision_0), pct(m.recall_0), pct(m.f1_0), pct(m.precision_1), pct(m.recall_1), pct(m.f1_1),
            f"[bold]{pct(m.accuracy)}[/]", f"{pct(m.accuracy_ci_low)}–{pct(m.accuracy_ci_high)}", pct(m.roc_auc),
        )
    console.print(table)


@app.command("run")
def run(
    model: Annotated[str, typer.Option("--model", "-m", help="ADAPTER:MODEL, e.g. openai:gpt-4o-mini, mistral:mistral-large-latest, perspective; default: the offline baseline.")] = "baseline",
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="A dataset name or a path to a CSV/JSONL file.")] = "toxifrench",
    prompt: Annotated[str, typer.Option("--prompt", help="Prompt set (simple, detailed) or a .toml file; chat adapters only.")] = "detailed",
    lang: Annotated[Optional[str], typer.Option("--lang", help="Prompt language (fr, en); default: the dataset's.")] = None,
    shots: Annotated[str, typer.Option("--shots", help="0, 1t, 1nt, 4 or 10 few-shot examples.")] = "0",
    seed: Annotated[int, typer.Option("--seed", help="Seed for choosing and ordering few-shot examples.")] = 0,
    model_arg: Annotated[Optional[list[str]], typer.Option("--model-arg", help="key=value for the adapter (repeatable), e.g. base_url=...")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", help="Only the first N samples.")] = None,
    sample: Annotated[Optional[int], typer.Option("--sample", help="A seeded class-balanced sample of N samples (seed: --sample-seed).")] = None,
    sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of --sample.")] = 0,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Batch size of local models.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Most requests in flight (lowered automatically on rate limits).")] = 8,
    rpm: Annotated[Optional[float], typer.Option("--rpm", help="Requests per minute.")] = None,
    tpm: Annotated[Optional[float], typer.Option("--tpm", help="Tokens per minute (estimated).")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = 60.0,
    max_retries: Annotated[int, typer.Option("--max-retries", help="Retries per request on rate limits and transient errors.")] = 5,
    out: Annotated[Path, typer.Option("--out", "--runs", help="Runs directory.")] = Path("runs"),
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the response cache.")] = False,
    prices: Annotated[Optional[str], typer.Option("--prices", help="Price table TOML overriding the shipped one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run a model on a dataset; re-running the same command resumes."""
    from toxbench.harness.engine import ExecutionSettings
    from toxbench.harness.live import RunOptions, execute, parse_model_args

    options = RunOptions(model=model, dataset=dataset, prompt=prompt, lang=lang, shots=shots, seed=seed,
                         model_args=parse_model_args(model_arg or []), limit=limit, sample=sample, sample_seed=sample_seed, runs_dir=out, use_cache=not no_cache, prices=prices)
    settings = ExecutionSettings(concurrency=concurrency, rpm=rpm, tpm=tpm, timeout_s=timeout, max_retries=max_retries, batch_size=batch_size)
    try:
        result = execute(options, _data(data_dir), settings, show_progress=not as_json)
    except KeyboardInterrupt:  # click would swallow it; say what happened and how to go on
        _console(stderr=True).print("interrupted: what was recorded is kept; run the same command again to resume")
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(result.as_json())
    else:
        m = result.metrics
        _console().print(f"{result.run_dir}: n={result.n} {result.statuses} accuracy={m['accuracy']:.3f} coverage={m['coverage']:.3f} "
                         f"cost=${result.cost_usd:.4f} requests={result.requests_sent} cache hits={result.cache_hits}")


runs_app = typer.Typer(help="Recorded runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs")) -> None:
    """Every run with its status, size, coverage, accuracy and cost."""
    from rich.table import Table

    from toxbench.harness.metrics_cache import metrics_for
    from toxbench.harness.records import PREDICTIONS, iter_run_dirs, read_manifest

    table = Table("run", "dataset", "model", "status", "n", "coverage", "accuracy", "cost $")
    for run_dir in iter_run_dirs(runs):
        manifest = read_manifest(run_dir)
        has_records = (run_dir / PREDICTIONS).is_file() and (run_dir / PREDICTIONS).stat().st_size > 0
        m = metrics_for(run_dir, "count_as_wrong") if has_records else None
        table.add_row(manifest.spec.label or run_dir.name, manifest.spec.dataset, f"{manifest.spec.adapter}:{manifest.spec.model}",
                      manifest.status, str(m.n if m else 0), f"{m.coverage:.3f}" if m else "–",
                      f"{m.accuracy:.3f}" if m and m.accuracy == m.accuracy else "–", f"{manifest.cost_usd:.4f}")
    _console().print(table)


@app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="A run directory, run id (or unique prefix) or label.")],
    run_b: Annotated[str, typer.Argument(help="The run to compare it with, on the same dataset.")],
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs"),
    show: Annotated[int, typer.Option("--show", help="Disagreements to print (0 for none).")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the comparison, every disagreement included, to this file.")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Paired comparison: exact McNemar test, Cohen's kappa, agreement, bootstrap F1 intervals, disagreements."""
    import json

    from rich.table import Table

    from toxbench.harness.compare import compare_runs
    from toxbench.harness.records import Run, find_run

    a, b = (Run.load(find_run(ref, runs)) for ref in (run_a, run_b))
    c = compare_runs(a, b, seed=seed)
    console = _console()
    names = [r.spec.label or r.dir.name for r in (a, b)]
    console.print(f"A = {names[0]}\nB = {names[1]}\ndataset {a.spec.dataset}: {c.n_common} samples labelled by both (A recorded {c.n_a}, B {c.n_b})")
    table = Table("", "A", "B")
    table.add_row("accuracy (common samples)", f"{c.accuracy_a:.4f}", f"{c.accuracy_b:.4f}")
    table.add_row(f"macro F1 [{c.confidence:.0%} bootstrap]", "{1:.4f} [{0:.4f}, {2:.4f}]".format(*c.f1_a), "{1:.4f} [{0:.4f}, {2:.4f}]".format(*c.f1_b))
    table.add_row("right where the other is wrong", str(c.only_a_right), str(c.only_b_right))
    console.print(table)
    verdict = "significant" if c.mcnemar_p < 0.05 else "not significant"
    console.print(f"agreement {c.agreement:.4f}  Cohen's kappa {c.kappa:.4f}  exact McNemar p = {c.mcnemar_p:.4g} ({verdict} at 0.05)\n"
                  "macro F1 difference A - B {1:+.4f} [{0:+.4f}, {2:+.4f}] (paired bootstrap, seed {3})".format(*c.f1_diff, seed))
    if show and c.disagreements:
        texts = _texts_for(a.spec.dataset, data_dir)
        listing = Table("sample", "gold", "A", "B", "text", title=f"{len(c.disagreements)} disagreements (first {min(show, len(c.disagreements))})")
        for d in c.disagreements[:show]:
            listing.add_row(d.sample_id, str(d.gold), str(d.pred_a), str(d.pred_b), texts.get(d.sample_id, "")[:120])
        console.print(listing)
    if json_out:
        json_out.write_text(json.dumps({"a": names[0], "b": names[1], **c.as_dict()}, indent=2, ensure_ascii=False))
        console.print(f"wrote {json_out}")


def _texts_for(dataset: str, data_dir: Path | None) -> dict[str, str]:
    """Sample texts by id when the dataset is available, else nothing (the ids are still printed)."""
    from toxbench.harness.datasets import load_dataset

    try:
        return {s.id: s.text for s in load_dataset(dataset, _data(data_dir)).samples}
    except (ToxbenchError, OSError):
        return {}


@app.command("adapters")
def adapters() -> None:
    """Registered adapters: kind, capabilities and the environment variable holding their key."""
    from rich.table import Table

    from toxbench.adapters.base import adapter_names, get_adapter

    table = Table("adapter", "kind", "scores", "concurrency", "key from", "description")
    for name in adapter_names():
        try:
            cls = get_adapter(name)
        except ImportError as exc:
            table.add_row(name, "–", "–", "–", "–", f"not available: {exc} (pip install 'toxbench[api]')")
            continue
        caps = cls.capabilities
        table.add_row(name, cls.kind, "yes" if caps.scores else "no", str(caps.concurrency), " or ".join(cls.required_env) or "–", cls.description)
    _console().print(table)


@app.command("sweep")
def sweep(
    file: Annotated[Path, typer.Argument(help="A sweep file (TOML), e.g. experiments/icl-table5.toml.")],
    source: Annotated[str, typer.Option("--source", help="auto: replay the release's file when the model cannot run here; live; published.")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells, their source and estimated cost; run nothing.")] = False,
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Where the sensitivity table and plot go (default: results/<sweep name>).")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Batch size of local models.")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Most requests in flight per run.")] = 8,
    data_dir: DataDirOption = None,
) -> None:
    """Run every cell of a sweep (each an ordinary run) and write the sensitivity table and plot."""
    from rich.table import Table

    from toxbench.harness.engine import ExecutionSettings
    from toxbench.harness.sweep import estimate_cost, expand, load_sweep, plot, run_cell, sensitivity, write_table

    if source not in ("auto", "live", "published"):
        raise ToxbenchError(f"--source {source!r}: use auto, live or published")
    spec = load_sweep(file)
    data = _data(data_dir)
    cells = expand(spec, data, source)  # type: ignore[arg-type]
    console = _console()
    if dry_run:
        table = Table("model", "dataset", "lang", "configuration", "seed", "source", "estimated $")
        total, unknown = 0.0, 0
        for cell in cells:
            cost = estimate_cost(cell, spec, data)
            total += cost or 0.0
            unknown += cost is None
            table.add_row(cell.model.display, cell.dataset, cell.lang, cell.config, "–" if cell.seed is None else str(cell.seed),
                          cell.source + (f" ({cell.published_file.rsplit('/', 1)[-1]})" if cell.published_file else ""),
                          "?" if cost is None else f"{cost:.4f}")
        console.print(table)
        console.print(f"{len(cells)} cells; estimated ${total:.4f}" + (f" plus {unknown} unpriced (local or not in the price table)" if unknown else ""))
        return
    settings = ExecutionSettings(concurrency=concurrency, **({"batch_size": batch_size} if batch_size else {}))
    done = []
    for i, cell in enumerate(cells, 1):
        console.print(f"[{i}/{len(cells)}] {cell.model.display} {cell.dataset} {cell.config}" + (f" seed {cell.seed}" if cell.seed is not None else "") + f" ({cell.source})")
        done.append((cell, run_cell(cell, spec, data, runs, settings)))
    rows = sensitivity(done)
    out = out or Path("results") / spec.name
    csv_path, md_path = write_table(rows, spec, out)
    svg = plot(rows, out / "sensitivity.svg")
    console.print(f"wrote {csv_path}, {md_path}, {svg}")


@app.command("agreement")
def agreement(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="The dataset whose runs are compared.")] = "toxifrench",
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs"),
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the matrix as CSV here.")] = None,
) -> None:
    """Cohen's kappa between every two complete runs of a dataset (on the samples both labelled)."""
    import csv

    from toxbench.harness.compare import kappa_matrix
    from toxbench.harness.leaderboard import collect
    from toxbench.harness.records import Run

    board = collect(runs, dataset)
    if len(board.rows) < 2:
        raise ToxbenchError(f"{runs}: fewer than two complete runs of {dataset}; nothing to compare")
    names = [row.run for row in board.rows]
    matrix = kappa_matrix([Run.load(row.run_dir) for row in board.rows])
    if out:
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["run", *names])
            writer.writerows([name, *(f"{k:.4f}" for k in row)] for name, row in zip(names, matrix))
        _console().print(f"wrote {out}: {len(names)} x {len(names)} kappa matrix, runs in leaderboard order")
    else:
        from rich.table import Table

        table = Table("run", *[str(i) for i in range(1, len(names) + 1)])
        for i, (name, row) in enumerate(zip(names, matrix), 1):
            table.add_row(f"{i}. {name}", *(f"{k:.2f}" for k in row))
        _console().print(table)


@app.command("report")
def report(
    out: Annotated[Path, typer.Option("--out", help="Folder for index.html.")] = Path("results/report"),
    runs: Annotated[Path, typer.Option("--runs", help="Runs directory.")] = Path("runs"),
    results: Annotated[Path, typer.Option("--results", help="Where sweep results (*/sensitivity.svg) are looked for.")] = Path("results"),
    labelled_only: Annotated[bool, typer.Option("--labelled-only", help="Compute on labelled samples only.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """A static HTML report of every run (open index.html; nothing is fetched at view time)."""
    from toxbench.harness.report import build_report

    path = build_report(runs, _data(data_dir), out, results, "labelled_only" if labelled_only else "count_as_wrong")
    _console().print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


finetune_app = typer.Typer(help="Fine-tuning: CoT data, SFT with the Dynamic Weighted Loss, DPO, encoders.", no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")
models_app = typer.Typer(help="Trained models registered by name (run them as finetuned:NAME).", no_args_is_help=True)
app.add_typer(models_app, name="models")
ConfigOption = Annotated[Path, typer.Option("--config", help="A TOML job file (see examples/finetune/).")]
FreshOption = Annotated[bool, typer.Option("--fresh", help="Ignore checkpoints in the output directory instead of resuming.")]


@finetune_app.command("data")
def finetune_data(
    out: Annotated[Path, typer.Option("--out", help="Folder for train.jsonl, validation.jsonl and settings.json.")],
    blocks: Annotated[Optional[str], typer.Option("--blocks", help="Comma-separated CoT blocks (explanation,tone,intention,category,labels,score).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    validation_fraction: Annotated[float, typer.Option("--validation-fraction")] = 0.1,
    max_examples: Annotated[Optional[int], typer.Option("--max-examples", help="A seeded, stratified subset of the training split.")] = None,
    no_oversample: Annotated[bool, typer.Option("--no-oversample", help="Keep the training split's class balance as it is.")] = False,
    drop_disagreeing: Annotated[bool, typer.Option("--drop-disagreeing", help="Leave out rows whose annotated CoT concluded against the gold label.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """CoT SFT examples (prompt, completion) from the annotated files that are in no benchmark."""
    from toxbench.finetune.cot_data import CotDataSettings, build_splits, write_splits

    settings = CotDataSettings(seed=seed, validation_fraction=validation_fraction, max_examples=max_examples, oversample=not no_oversample,
                               drop_disagreeing=drop_disagreeing, **({"blocks": [b.strip() for b in blocks.split(",") if b.strip()]} if blocks else {}))
    train, validation, stats = build_splits(_data(data_dir), settings)
    write_splits(out, train, validation, settings, stats)
    _console().print(f"{out}: {len(train)} training examples {stats['train']} (before oversampling {stats['train_before_oversampling']}), "
                     f"{len(validation)} validation {stats['validation']}; {stats['disagreeing_cot']} rows whose annotated CoT concluded otherwise "
                     f"({'left out' if drop_disagreeing else 'kept, with the gold conclusion'})")


@finetune_app.command("sft")
def finetune_sft(config: ConfigOption, fresh: FreshOption = False, data_dir: DataDirOption = None) -> None:
    """LoRA (QLoRA on CUDA) SFT with the Dynamic Weighted Loss through TRL's SFTTrainer."""
    from toxbench.finetune.config import SFTJob, load_job
    from toxbench.finetune.sft import run_sft

    out = run_sft(load_job(config, SFTJob), _data(data_dir), resume=not fresh)
    _console().print(f"{out}: adapter and toxbench-model.json written; next: toxbench models register {out} --name NAME")


@finetune_app.command("dpo")
def finetune_dpo(config: ConfigOption, fresh: FreshOption = False, data_dir: DataDirOption = None) -> None:
    """Preference pairs sampled from the SFT model, then DPO against the frozen SFT model."""
    from toxbench.finetune.config import DPOJob, load_job
    from toxbench.finetune.dpo import run_dpo

    out = run_dpo(load_job(config, DPOJob), _data(data_dir), resume=not fresh)
    _console().print(f"{out}: DPO adapter, pairs.jsonl and toxbench-model.json written; next: toxbench models register {out} --name NAME")


@finetune_app.command("encoder")
def finetune_encoder(config: ConfigOption, fresh: FreshOption = False, data_dir: DataDirOption = None) -> None:
    """A two-label sequence classifier (CamemBERT-style); best checkpoint by validation F1."""
    from toxbench.finetune.config import EncoderJob, load_job
    from toxbench.finetune.encoder_ft import run_encoder

    out = run_encoder(load_job(config, EncoderJob), _data(data_dir), resume=not fresh)
    _console().print(f"{out}: classifier and toxbench-model.json written; next: toxbench models register {out} --name NAME")


@models_app.command("register")
def models_register(
    model_dir: Annotated[Path, typer.Argument(help="A directory written by toxbench finetune sft|dpo|encoder.")],
    name: Annotated[str, typer.Option("--name", help="The name to run it by: --model finetuned:NAME.")],
) -> None:
    """Register a trained model directory under a name."""
    from toxbench.finetune.registry import register

    path = register(model_dir, name)
    _console().print(f"registered {name} -> {model_dir} ({path}); run it: toxbench run --model finetuned:{name}")


@models_app.command("list")
def models_list() -> None:
    """Registered models."""
    from rich.table import Table

    from toxbench.finetune.registry import registered

    table = Table("name", "kind", "path", "weights sha256", "registered")
    for entry in registered():
        table.add_row(entry["name"], entry["kind"], entry["path"], entry["weights_sha256"][:12], entry["registered_at"])
    _console().print(table)


def main() -> None:
    try:
        app()
    except ToxbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted; what was recorded is kept, run the same command again to resume", file=sys.stderr)
        sys.exit(130)
