"""Sweeps: models x prompt configurations x shot configurations x datasets x seeds, each cell an
ordinary run (cached, resumable, on the leaderboard). This module reads sweep files, expands them
into cells and runs a cell; the sensitivity table and plot are toxbench.analysis.sensitivity.

A sweep file (TOML) names the models (with adapter arguments, and optionally `published`: the
release's file prefix for that model), the datasets, languages, and either `prompts` x `shots` or an
explicit list of `configs` (prompt, shots). k-shot cells run once per seed in `seeds`: with the
release's examples (`shot_pool = "first"`, the default) a seed is their order, so a one-example cell
runs once; with `shot_pool = "random"` a seed also draws which examples. With `--source
published` (or `auto` when the model cannot run here) a cell is the replay of the release's
prediction file for it, so the paper's Table 5 regenerates offline; a published file has one
example order, so its seeds collapse to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from toxbench._util import load_toml_model
from toxbench.errors import ToxbenchError

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


class DatasetColumns(BaseModel):
    """Which columns of a dataset file hold what (as --text-col, --label-col, ... on `run`)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    label: str | None = None
    id: str | None = None
    lang: str | None = None
    delimiter: str | None = None  # a .csv/.tsv file's separator (default: read from its header)

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        from toxbench.data.tables import delimiter_arg
        from toxbench.errors import ToxbenchError

        try:
            return None if value is None else delimiter_arg(value)
        except ToxbenchError as exc:  # pydantic names the file and the key
            raise ValueError(str(exc).removeprefix("--delimiter ")) from None


class PromptConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    shots: str = "0"


class Sweep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # the folder results/<name>: never a path
    description: str = ""
    models: list[SweepModel]
    datasets: list[str] = Field(default_factory=lambda: ["toxifrench"])
    langs: list[str] = Field(default_factory=lambda: ["fr"])
    prompts: list[str] = Field(default_factory=lambda: ["detailed"])
    shots: list[str] = Field(default_factory=lambda: ["0"])
    configs: list[PromptConfig] | None = None  # explicit (prompt, shots) pairs instead of prompts x shots
    seeds: list[int] = Field(default_factory=lambda: [0])
    shot_pool: Literal["first", "random"] = "first"  # random: each seed also draws which examples
    sample: int | None = None
    sample_seed: int = 0
    columns: DatasetColumns = Field(default_factory=lambda: DatasetColumns())

    def prompt_configs(self) -> list[PromptConfig]:
        return self.configs or [PromptConfig(prompt=p, shots=k) for p in self.prompts for k in self.shots]


def load_sweep(path: Path) -> Sweep:
    return load_toml_model(path, Sweep, "sweep file (see experiments/)")


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
    from toxbench.run.replay import published_files, published_name

    index = {}
    for rel in published_files(data):
        name = published_name(rel)
        if name.dataset and name.prompt:
            index.setdefault((name.model, name.dataset, name.prompt, name.shots or "0"), rel)
    return index


MAX_CELLS = 10_000  # a grid larger than this is a typo (a seeds range), not a study


def grid_size(sweep: Sweep) -> int:
    """The most cells the sweep can expand to (published cells collapse), computed without expanding it."""
    configs = sweep.prompt_configs()
    per_model = len(sweep.datasets) * len(sweep.langs) * sum(max(1, len(_seeds(sweep, pc.shots))) for pc in configs)
    return len(sweep.models) * per_model


def expand(sweep: Sweep, data, source: Source = "auto") -> list[Cell]:
    """Every cell of the sweep, in table order. A published cell's language is the one its replay
    records (the dataset's), whatever `langs` says, and it comes once: one file is one run. A grid
    beyond MAX_CELLS is refused before anything is expanded."""
    from toxbench.data.datasets import REGISTRY

    if (size := grid_size(sweep)) > MAX_CELLS:
        raise ToxbenchError(
            f"sweep {sweep.name!r}: {size:,} cells, more than the {MAX_CELLS:,} a sweep may hold; split it into several "
            "files or give fewer seeds, prompts or models"
        )
    index = published_index(data) if source != "live" else {}
    runnable = {id(model): _runnable(model) for model in sweep.models}  # asked once per model, not once per cell
    cells: list[Cell] = []
    published_seen: set[tuple] = set()
    for model in sweep.models:
        for dataset in sweep.datasets:
            for lang in sweep.langs:
                for pc in sweep.prompt_configs():
                    rel = index.get((model.published, dataset, pc.prompt, pc.shots)) if model.published else None
                    use_published = source == "published" or (
                        source == "auto" and rel is not None and not runnable[id(model)]
                    )
                    if use_published:
                        if rel is None:
                            raise ToxbenchError(
                                f"no published file for {model.published or model.model} on {dataset}, {pc.prompt} {pc.shots}-shot; "
                                "give the model's `published` name or use --source live"
                            )
                        cell = Cell(model, dataset, REGISTRY[dataset].lang, pc.prompt, pc.shots, None, "published", rel)
                        if (key := (id(model), dataset, pc.prompt, pc.shots)) not in published_seen:
                            published_seen.add(key)
                            cells.append(cell)
                        continue
                    for seed in _seeds(sweep, pc.shots):
                        cells.append(Cell(model, dataset, lang, pc.prompt, pc.shots, seed, "live"))
    return cells


def _seeds(sweep: Sweep, shots: str) -> list[int | None]:
    """The seeds a k-shot cell runs with: none for zero-shot; one where the seed changes nothing
    (a single example from the release's pool); every seed otherwise."""
    from toxbench.run.prompts import SHOTS

    if shots == "0":
        return [None]
    if sweep.shot_pool == "first" and sum(SHOTS.get(shots, (0, 0))) == 1:
        return sweep.seeds[:1]
    return list(sweep.seeds)


def _runnable(model: SweepModel) -> bool:
    """Whether the model can run here without asking: its key is set, or it is a local model whose weights exist."""
    import os

    from toxbench.adapters.registry import get_adapter, parse_model

    name, model_id = parse_model(model.model)
    try:
        cls = get_adapter(name)
    except Exception:
        return False
    if cls.required_env:
        return any(os.environ.get(v) for v in cls.required_env) or bool(
            model.args.get("api_key_env") and os.environ.get(model.args["api_key_env"])
        )
    if name in ("hf", "vllm", "encoder", "llamaguard", "shieldgemma") and model_id:
        from toxbench.adapters._local import resolve

        try:
            path, _ = resolve(model_id)
        except Exception:
            return False
        return Path(path).exists()
    return True


class CostEstimator:
    """Dollars for live cells from the price table and the rendered prompts' length. A dataset is
    loaded once, and a prompt frame rendered once, for the whole sweep: a sample's messages are the
    frame plus its text, so a cell's characters are n x frame + the texts' characters."""

    def __init__(self, sweep: Sweep, data) -> None:
        self.sweep, self.data = sweep, data
        self._texts: dict[str, tuple[int, int]] = {}  # dataset -> (samples, characters of their texts)
        self._frames: dict[tuple, int] = {}

    def texts(self, dataset: str) -> tuple[int, int]:
        if dataset not in self._texts:
            from toxbench.data.datasets import load_dataset
            from toxbench.data.sampling import balanced_sample
            from toxbench.data.tables import Columns

            samples = load_dataset(dataset, self.data, Columns(**self.sweep.columns.model_dump())).samples
            if self.sweep.sample:
                samples = balanced_sample(samples, self.sweep.sample, self.sweep.sample_seed)
            self._texts[dataset] = (len(samples), sum(len(s.text) for s in samples))
        return self._texts[dataset]

    def frame(self, cell: Cell) -> int:
        """Characters of a sample's messages besides its text."""
        key = (cell.prompt, cell.lang, cell.shots, cell.seed or 0)
        if key not in self._frames:
            from toxbench.run.prompts import make_renderer

            renderer = make_renderer(
                cell.prompt, cell.lang, cell.shots, cell.seed or 0, self.data, self.sweep.shot_pool
            )
            self._frames[key] = sum(len(m["content"]) for m in renderer.messages(""))
        return self._frames[key]

    def __call__(self, cell: Cell) -> float | None:
        """None when the model has no price."""
        from toxbench.adapters.registry import parse_model
        from toxbench.run.pricing import cost_usd, price_table

        if cell.source == "published":
            return 0.0
        _, model_id = parse_model(cell.model.model)
        table = price_table()
        if not model_id or model_id not in table:
            return None
        n, text_chars = self.texts(cell.dataset)
        chars = n * self.frame(cell) + text_chars
        return cost_usd(model_id, chars // CHARS_PER_TOKEN, 5 * n, table)


def find_recorded(cell: Cell, sweep: Sweep, runs_dir: Path, data) -> Path:
    """The complete recorded run of a live cell, found by what identifies it, without loading the
    model; an error naming the cell when there is none, or several."""
    from toxbench.adapters.registry import parse_model
    from toxbench.data.datasets import load_dataset
    from toxbench.data.sampling import select
    from toxbench.data.tables import Columns
    from toxbench.records import readable_runs, run_label

    name, model_id = parse_model(cell.model.model)
    k_shot = cell.shots != "0"
    # the subset as a run names it: a sample as large as the dataset is the whole dataset
    dataset = load_dataset(cell.dataset, data, Columns(**sweep.columns.model_dump()))
    wanted = {"dataset": dataset.name, "subset": select(dataset.samples, sweep.sample, sweep.sample_seed, None)[1]}
    prompted = {
        "prompt": cell.prompt,
        "lang": cell.lang,
        "shots": cell.shots,
        "shots_seed": (cell.seed or 0) if k_shot else None,
        "shot_pool": sweep.shot_pool if k_shot else None,
    }

    def matches(spec) -> bool:
        # a bare adapter name (`baseline`) was recorded under the adapter's own model id
        label = run_label(name, model_id or spec.model, cell.model.args)
        if spec.label != label or any(getattr(spec, k) != v for k, v in wanted.items()):
            return False
        # a model that reads no prompt recorded none: its one run stands for every prompt cell, as when run live
        return spec.prompt is None or all(getattr(spec, k) == v for k, v in prompted.items())

    found = [d for d, m in readable_runs(runs_dir)[0] if m.status == "complete" and matches(m.spec)]
    what = f"{cell.model.display} on {cell.dataset}, {cell.config}" + (
        f" seed {cell.seed}" if cell.seed is not None else ""
    )
    if not found:
        raise ToxbenchError(
            f"{runs_dir}: no complete recorded run of {what}; run the sweep without --recorded to make it"
        )
    if len(found) > 1:
        raise ToxbenchError(
            f"{runs_dir}: {len(found)} recorded runs of {what} ({', '.join(d.name for d in found)}); keep one"
        )
    return found[0]


def run_cell(
    cell: Cell,
    sweep: Sweep,
    data,
    runs_dir: Path,
    settings,
    show_progress: bool = True,
    on_records=None,
    recorded_only: bool = False,
) -> Path:
    """The cell's run directory, running (or resuming, or finding) it first."""
    if recorded_only and cell.source == "live":
        return find_recorded(cell, sweep, runs_dir, data)
    if cell.source == "published":
        from toxbench.run.replay import import_published

        imported = import_published(
            data, runs_dir, rels=[cell.published_file], only_dataset=cell.dataset, on_records=on_records
        )
        if not imported or imported[0].run_dir is None:
            raise ToxbenchError(f"{cell.published_file}: could not be replayed on {cell.dataset}")
        return imported[0].run_dir
    from toxbench.data.tables import Columns
    from toxbench.run.runner import RunOptions, execute

    opts = RunOptions(
        model=cell.model.model,
        dataset=cell.dataset,
        prompt=cell.prompt,
        lang=cell.lang,
        shots=cell.shots,
        seed=cell.seed or 0,
        shot_pool=sweep.shot_pool,
        model_args=dict(cell.model.args),
        sample=sweep.sample,
        sample_seed=sweep.sample_seed,
        runs_dir=runs_dir,
        columns=Columns(**sweep.columns.model_dump()),
    )
    return execute(opts, data, settings, show_progress=show_progress).run_dir
