"""The prompt-sensitivity study of a sweep: run every cell (toxbench.run.sweep), then one row per
(model, dataset, prompt configuration) with the accuracy's mean and range over seeds, as CSV,
Markdown and an SVG plot. Rows are computed from each cell's records only."""

from __future__ import annotations

import io
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from toxbench._util import csv_for_people, write_atomic
from toxbench.analysis.markdown_cells import cell as md_cell
from toxbench.analysis.metrics_cache import metrics_for, remember_metrics
from toxbench.run.sweep import Cell, Source, Sweep, expand, run_cell

SEED_MEANING = {"first": "orders of the release's examples", "random": "which examples and their order"}
HASHED_ID = re.compile(r"\b([mp])([0-9a-f]{10})\b")  # matplotlib's _make_id: a letter and 10 hex digits


def run_sweep(
    spec: Sweep,
    data,
    runs_dir: Path,
    out_dir: Path,
    settings,
    source: Source = "auto",
    on_cell: Callable[[int, int, Cell], None] | None = None,
    recorded_only: bool = False,
) -> SweepResult:
    """Run (or resume, or find) every cell, then write the sensitivity table and plot; returns the
    rows and the CSV, Markdown and SVG paths. recorded_only: make no run, find each live cell's
    recorded one."""
    cells = expand(spec, data, source)
    if getattr(settings, "batch", False) and not recorded_only:
        submit_batches(cells, spec, data, runs_dir, settings)
    done = []
    for i, cell in enumerate(cells, 1):
        if on_cell:
            on_cell(i, len(cells), cell)
        done.append(
            (
                cell,
                run_cell(
                    cell, spec, data, runs_dir, settings, on_records=remember_metrics, recorded_only=recorded_only
                ),
            )
        )
    rows = sensitivity(done)
    csv_path, md_path = write_table(rows, spec, out_dir)
    return SweepResult(
        rows, [run_dir for _, run_dir in done], csv_path, md_path, plot(rows, out_dir / "sensitivity.svg")
    )


def submit_batches(cells: list[Cell], spec: Sweep, data, runs_dir: Path, settings) -> None:
    """A batched sweep's first pass: every live cell with a batch API submits its batches without
    waiting, so the provider works on all of them at once; the pass that follows waits on each
    (a sweep of ten cells waits about as long as one, not ten times as long)."""
    from dataclasses import replace

    from toxbench.adapters.registry import get_adapter, parse_model
    from toxbench.run.batch import has_batch_api

    submit = replace(settings, submit_only=True)
    for cell in cells:
        if cell.source == "live" and has_batch_api(get_adapter(parse_model(cell.model.model)[0])):
            run_cell(cell, spec, data, runs_dir, submit, show_progress=False)


@dataclass
class SensitivityRow:
    model: str
    dataset: str
    lang: str  # the prompt's language: French and English prompts are rows apart, never "seeds" of one row
    config: str
    prompt: str
    shots: str
    source: str
    n: int
    seeds: int
    accuracy: float  # mean over seeds
    accuracy_min: float
    accuracy_max: float
    ci_low: float  # Wilson interval of the first seed's run
    ci_high: float
    f1_0: float
    f1_1: float
    coverage: float


@dataclass
class SweepResult:
    """What a sweep made: one row per (model, dataset, prompt language, configuration), the run of
    every cell, and the files written."""

    rows: list[SensitivityRow]
    run_dirs: list[Path]
    csv: Path
    markdown: Path
    svg: Path

    @property
    def paths(self) -> tuple[Path, Path, Path]:
        return self.csv, self.markdown, self.svg

    def frame(self):
        """The sensitivity table as a pandas DataFrame (one column per `SensitivityRow` field)."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows], columns=[f.name for f in fields(SensitivityRow)])


def sensitivity(cells_and_runs: list[tuple[Cell, Path]]) -> list[SensitivityRow]:
    """One row per (model, dataset, prompt language, prompt configuration): accuracy mean and range
    over seeds."""
    groups: dict[tuple, list[tuple[Cell, object]]] = {}
    for cell, run_dir in cells_and_runs:
        key = (cell.model.display, cell.dataset, cell.lang, cell.prompt, cell.shots)
        groups.setdefault(key, []).append((cell, metrics_for(run_dir, "count_as_wrong")))
    rows = []
    for (model, dataset, lang, prompt, shots), items in groups.items():
        cell, first = items[0]
        accs = [m.accuracy for _, m in items]
        rows.append(
            SensitivityRow(
                model,
                dataset,
                lang,
                cell.config,
                prompt,
                shots,
                cell.source,
                first.n,
                len(items),
                statistics.fmean(accs),
                min(accs),
                max(accs),
                first.accuracy_ci_low,
                first.accuracy_ci_high,
                statistics.fmean(m.f1_0 for _, m in items),
                statistics.fmean(m.f1_1 for _, m in items),
                statistics.fmean(m.coverage for _, m in items),
            )
        )
    return rows


COLUMNS = (
    "model",
    "dataset",
    "lang",
    "config",
    "prompt",
    "shots",
    "source",
    "n",
    "seeds",
    "accuracy",
    "accuracy_min",
    "accuracy_max",
    "ci_low",
    "ci_high",
    "f1_0",
    "f1_1",
    "coverage",
)


def write_table(rows: list[SensitivityRow], sweep: Sweep, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "sensitivity.csv", out_dir / "sensitivity.md"
    write_atomic(
        csv_path,
        csv_for_people(
            COLUMNS,
            ([f"{v:.6f}" if isinstance(v, float) else v for v in (getattr(r, c) for c in COLUMNS)] for r in rows),
        ),
    )
    lines = [
        f"# {sweep.name}: prompt sensitivity",
        "",
        sweep.description.strip(),
        "",
        "Accuracy in %, with the Wilson 95% interval; with several seeds, the mean and the range over seeds "
        f"({SEED_MEANING[sweep.shot_pool]}). "
        "F1 per class (0 non-toxic, 1 toxic). Source: `published` replays the release's prediction file; `live` is a run made here.",
        "",
        "| model | dataset | lang | configuration | n | seeds | accuracy | 95% CI | range over seeds | F1 0 | F1 1 | coverage | source |",
        "|---|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for r in rows:
        spread = f"{100 * r.accuracy_min:.1f}–{100 * r.accuracy_max:.1f}" if r.seeds > 1 else "–"
        lines.append(
            f"| {md_cell(r.model)} | {md_cell(r.dataset)} | {md_cell(r.lang)} | {md_cell(r.config)} | {r.n} | {r.seeds} | {100 * r.accuracy:.1f} | {100 * r.ci_low:.1f}–{100 * r.ci_high:.1f} "
            f"| {spread} | {100 * r.f1_0:.1f} | {100 * r.f1_1:.1f} | {100 * r.coverage:.1f} | {r.source} |"
        )
    md_path.write_text("\n".join(lines) + "\n", "utf-8")
    return csv_path, md_path


def plot(rows: list[SensitivityRow], out_path: Path) -> Path:
    """Accuracy per configuration, one line per model, dataset and prompt language, Wilson intervals
    as error bars and the seed range as a band; SVG so it needs nothing at view time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(r.config for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(configs)), 4.0))
    several = {"dataset": len({r.dataset for r in rows}) > 1, "lang": len({r.lang for r in rows}) > 1}
    for key in dict.fromkeys((r.model, r.dataset, r.lang) for r in rows):
        series = [r for r in rows if (r.model, r.dataset, r.lang) == key]
        x = [configs.index(r.config) for r in series]
        y = [100 * r.accuracy for r in series]
        err = [[100 * (r.accuracy - r.ci_low) for r in series], [100 * (r.ci_high - r.accuracy) for r in series]]
        apart = [part for part, shown in ((key[1], several["dataset"]), (key[2], several["lang"])) if shown]
        label = f"{key[0]} ({', '.join(apart)})" if apart else key[0]
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        if any(r.seeds > 1 for r in series):
            ax.fill_between(
                x,
                [100 * r.accuracy_min for r in series],
                [100 * r.accuracy_max for r in series],
                alpha=0.2,
                color=line[0].get_color(),
            )
    ax.set_xticks(range(len(configs)), configs, rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "toxbench"}):  # no random id salt
        fig.savefig(svg, format="svg", metadata={"Date": None})  # no timestamp
    plt.close(fig)
    return write_atomic(out_path, stable_ids(svg.getvalue()))


def stable_ids(svg: str) -> str:
    """matplotlib names clip paths and markers by a hash of their float coordinates, which differ in
    the last bits between machines while the drawing is the same; numbering them in order of first
    appearance makes the same runs give the same bytes everywhere."""
    names: dict[str, str] = {}
    for match in HASHED_ID.finditer(svg):
        names.setdefault(match.group(0), f"{match.group(1)}{len(names)}")
    return HASHED_ID.sub(lambda m: names[m.group(0)], svg)
