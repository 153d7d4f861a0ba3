"""Sweeps: models x prompt configurations x shot configurations x datasets x seeds, each cell an
ordinary run (cached, resumable, on the leaderboard), then a sensitivity table and a plot.

A sweep file (TOML) names the models (with adapter arguments, and optionally `published`: the
release's file prefix for that model), the datasets, languages, and either `prompts` x `shots` or an
explicit list of `configs` (prompt, shots). k-shot cells run once per seed in `seeds` (the order and
choice of examples), so the table shows the spread due to example order alone. With `--source
published` (or `auto` when the model cannot run here) a cell is the replay of the release's
prediction file for it, so the paper's Table 5 regenerates offline; a published file has one
example order, so its seeds collapse to one.
"""

from __future__ import annotations

import csv
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Source = Literal["auto", "live", "published"]
CHARS_PER_TOKEN = 4  # cost estimates only


class SweepModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str  # ADAPTER:MODEL as on the command line
    args: dict = Field(default_factory=dict)
    published: str | None = None  # the release's model name in its file names, e.g. "qwen-3-4b"
    name: str | None = None  # the name in tables; default: the model string

    @property
    def display(self) -> str:
        return self.name or self.model


class PromptConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    shots: str = "0"


class Sweep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    models: list[SweepModel]
    datasets: list[str] = Field(default_factory=lambda: ["toxifrench"])
    langs: list[str] = Field(default_factory=lambda: ["fr"])
    prompts: list[str] = Field(default_factory=lambda: ["detailed"])
    shots: list[str] = Field(default_factory=lambda: ["0"])
    configs: list[PromptConfig] | None = None  # explicit (prompt, shots) pairs instead of prompts x shots
    seeds: list[int] = Field(default_factory=lambda: [0])
    sample: int | None = None
    sample_seed: int = 0

    def prompt_configs(self) -> list[PromptConfig]:
        return self.configs or [PromptConfig(prompt=p, shots=k) for p in self.prompts for k in self.shots]


def load_sweep(path: Path) -> Sweep:
    try:
        return Sweep.model_validate(tomllib.loads(Path(path).read_text("utf-8")))
    except FileNotFoundError:
        raise ToxbenchError(f"{path}: no such sweep file (see experiments/)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ToxbenchError(f"{path}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        raise ToxbenchError(f"{path}: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


@dataclass(frozen=True)
class Cell:
    model: SweepModel
    dataset: str
    lang: str
    prompt: str
    shots: str
    seed: int | None  # None: zero-shot, or a published file (one example order)
    source: Literal["live", "published"]
    published_file: str | None = None

    @property
    def config(self) -> str:
        return f"{self.prompt} {self.shots}-shot" if self.shots != "0" else f"{self.prompt} 0-shot"


def published_index(data) -> dict[tuple[str, str, str, str], str]:
    """(model, dataset, prompt, shots) -> the release file that holds those predictions."""
    from toxbench.harness.published import _name_of, published_files

    index = {}
    for rel in published_files(data):
        name = _name_of(rel)
        if name.dataset and name.prompt:
            index.setdefault((name.model, name.dataset, name.prompt, name.shots or "0"), rel)
    return index


def expand(sweep: Sweep, data, source: Source = "auto") -> list[Cell]:
    """Every cell of the sweep, in table order."""
    index = published_index(data) if source != "live" else {}
    cells = []
    for model in sweep.models:
        for dataset in sweep.datasets:
            for lang in sweep.langs:
                for pc in sweep.prompt_configs():
                    rel = index.get((model.published, dataset, pc.prompt, pc.shots)) if model.published else None
                    use_published = source == "published" or (source == "auto" and rel is not None and not _runnable(model))
                    if use_published:
                        if rel is None:
                            raise ToxbenchError(f"no published file for {model.published or model.model} on {dataset}, {pc.prompt} {pc.shots}-shot; "
                                                "give the model's `published` name or use --source live")
                        cells.append(Cell(model, dataset, lang, pc.prompt, pc.shots, None, "published", rel))
                        continue
                    for seed in (sweep.seeds if pc.shots != "0" else [None]):
                        cells.append(Cell(model, dataset, lang, pc.prompt, pc.shots, seed, "live"))
    return cells


def _runnable(model: SweepModel) -> bool:
    """Whether the model can run here without asking: its key is set, or it is a local model whose weights exist."""
    import os

    from toxbench.adapters.base import get_adapter
    from toxbench.harness.live import parse_model

    name, model_id = parse_model(model.model)
    try:
        cls = get_adapter(name)
    except Exception:
        return False
    if cls.required_env:
        return any(os.environ.get(v) for v in cls.required_env) or bool(model.args.get("api_key_env") and os.environ.get(model.args["api_key_env"]))
    if name in ("hf", "encoder", "llamaguard", "shieldgemma") and model_id:
        from toxbench.harness.local_models import resolve

        try:
            path, _ = resolve(model_id)
        except Exception:
            return False
        return Path(path).exists()
    return True


def estimate_cost(cell: Cell, sweep: Sweep, data) -> float | None:
    """Dollars for a live cell from the price table and the rendered prompt length; None when unpriced."""
    from toxbench.harness.datasets import load_dataset
    from toxbench.harness.live import balanced_sample, parse_model
    from toxbench.harness.pricing import cost_usd, price_table
    from toxbench.harness.prompts import make_renderer

    if cell.source == "published":
        return 0.0
    _, model_id = parse_model(cell.model.model)
    table = price_table()
    if not model_id or model_id not in table:
        return None
    samples = load_dataset(cell.dataset, data).samples
    if sweep.sample:
        samples = balanced_sample(samples, sweep.sample, sweep.sample_seed)
    renderer = make_renderer(cell.prompt, cell.lang, cell.shots, cell.seed or 0, data)
    chars = sum(len(m["content"]) for s in samples for m in renderer.messages(s.text))
    return cost_usd(model_id, chars // CHARS_PER_TOKEN, 5 * len(samples), table)


def run_cell(cell: Cell, sweep: Sweep, data, runs_dir: Path, settings, show_progress: bool = True) -> Path:
    """The cell's run directory, running (or resuming, or finding) it first."""
    if cell.source == "published":
        from toxbench.harness.published import import_published

        imported = import_published(data, runs_dir, rels=[cell.published_file], only_dataset=cell.dataset)
        if not imported or imported[0].run_dir is None:
            raise ToxbenchError(f"{cell.published_file}: could not be replayed on {cell.dataset}")
        return imported[0].run_dir
    from toxbench.harness.live import RunOptions, execute

    opts = RunOptions(model=cell.model.model, dataset=cell.dataset, prompt=cell.prompt, lang=cell.lang, shots=cell.shots,
                      seed=cell.seed or 0, model_args=dict(cell.model.args), sample=sweep.sample, sample_seed=sweep.sample_seed,
                      runs_dir=runs_dir)
    return execute(opts, data, settings, show_progress=show_progress).run_dir


@dataclass
class SensitivityRow:
    model: str
    dataset: str
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


def sensitivity(cells_and_runs: list[tuple[Cell, Path]]) -> list[SensitivityRow]:
    """One row per (model, dataset, prompt configuration): accuracy mean and range over seeds."""
    from toxbench.harness.metrics_cache import metrics_for

    groups: dict[tuple, list[tuple[Cell, object]]] = {}
    for cell, run_dir in cells_and_runs:
        groups.setdefault((cell.model.display, cell.dataset, cell.prompt, cell.shots), []).append((cell, metrics_for(run_dir, "count_as_wrong")))
    rows = []
    for (model, dataset, prompt, shots), items in groups.items():
        cell, first = items[0]
        accs = [m.accuracy for _, m in items]
        rows.append(SensitivityRow(model, dataset, cell.config, prompt, shots, cell.source, first.n, len(items), statistics.fmean(accs),
                                   min(accs), max(accs), first.accuracy_ci_low, first.accuracy_ci_high,
                                   statistics.fmean(m.f1_0 for _, m in items), statistics.fmean(m.f1_1 for _, m in items),
                                   statistics.fmean(m.coverage for _, m in items)))
    return rows


COLUMNS = ("model", "dataset", "config", "prompt", "shots", "source", "n", "seeds", "accuracy", "accuracy_min", "accuracy_max",
           "ci_low", "ci_high", "f1_0", "f1_1", "coverage")


def write_table(rows: list[SensitivityRow], sweep: Sweep, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "sensitivity.csv", out_dir / "sensitivity.md"
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in rows:
            writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in (getattr(r, c) for c in COLUMNS)])
    lines = [f"# {sweep.name}: prompt sensitivity", "", sweep.description.strip(), "",
             "Accuracy in %, with the Wilson 95% interval; with several seeds, the mean and the range over example orders. "
             "F1 per class (0 non-toxic, 1 toxic). Source: `published` replays the release's prediction file; `live` is a run made here.", "",
             "| model | dataset | configuration | n | seeds | accuracy | 95% CI | range over seeds | F1 0 | F1 1 | coverage | source |",
             "|---|---|---|---:|---:|---:|---|---|---:|---:|---:|---|"]
    for r in rows:
        spread = f"{100 * r.accuracy_min:.1f}–{100 * r.accuracy_max:.1f}" if r.seeds > 1 else "–"
        lines.append(f"| {r.model} | {r.dataset} | {r.config} | {r.n} | {r.seeds} | {100 * r.accuracy:.1f} | {100 * r.ci_low:.1f}–{100 * r.ci_high:.1f} "
                     f"| {spread} | {100 * r.f1_0:.1f} | {100 * r.f1_1:.1f} | {100 * r.coverage:.1f} | {r.source} |")
    md_path.write_text("\n".join(lines) + "\n", "utf-8")
    return csv_path, md_path


def plot(rows: list[SensitivityRow], out_path: Path) -> Path:
    """Accuracy per configuration, one line per model and dataset, Wilson intervals as error bars and
    the seed range as a band; SVG so it needs nothing at view time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(r.config for r in rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(configs)), 4.0))
    for key in dict.fromkeys((r.model, r.dataset) for r in rows):
        series = [r for r in rows if (r.model, r.dataset) == key]
        x = [configs.index(r.config) for r in series]
        y = [100 * r.accuracy for r in series]
        err = [[100 * (r.accuracy - r.ci_low) for r in series], [100 * (r.ci_high - r.accuracy) for r in series]]
        label = key[0] if len({r.dataset for r in rows}) == 1 else f"{key[0]} ({key[1]})"
        line = ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=label)
        if any(r.seeds > 1 for r in series):
            ax.fill_between(x, [100 * r.accuracy_min for r in series], [100 * r.accuracy_max for r in series], alpha=0.2,
                            color=line[0].get_color())
    ax.set_xticks(range(len(configs)), configs, rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # no timestamp and a fixed id salt (else SVG element ids are random per save): same runs, same bytes
    with matplotlib.rc_context({"svg.hashsalt": "toxbench"}):
        fig.savefig(out_path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return out_path
