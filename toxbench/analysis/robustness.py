"""How a detector's decisions survive disguise: the model's run on a dataset against its runs on
derived datasets (toxbench.data.perturb), sample by sample. Every figure is computed on the pairs
whose text the transform changed (a text it left as it was says nothing about the disguise), and
the table says how many it left.

Per transform: accuracy and F1 (toxic) on the original texts and on their disguised versions, each
accuracy with its Wilson 95% interval; the change, with the exact McNemar test on the paired
decisions; and flips of the decision itself: evasion (toxic -> non-toxic, over the pairs the model
called toxic before), false alarm (non-toxic -> toxic, over those it called non-toxic), and for
counterfactuals (identity terms swapped) the share of pairs whose decision changed at all. A
record without a label (an error, an unparseable answer) counts as wrong in accuracy and is left
out of the flips, and the table counts those pairs."""

from __future__ import annotations

import io
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from toxbench._util import csv_for_people, writable_dir, write_atomic
from toxbench.analysis.markdown_cells import cell as md_cell
from toxbench.analysis.metrics import compute_metrics, wilson_interval
from toxbench.analysis.significance import format_p, mcnemar_exact
from toxbench.errors import ToxbenchError
from toxbench.types import Record


@dataclass
class RobustnessRow:
    transform: str
    kind: str
    dataset: str  # the derived dataset's name
    n: int  # pairs whose text the transform changed, both recorded
    unchanged: int  # samples the transform left as they were (not in n)
    accuracy_original: float
    accuracy_original_low: float
    accuracy_original_high: float
    accuracy_perturbed: float
    accuracy_perturbed_low: float
    accuracy_perturbed_high: float
    delta: float  # perturbed - original, in accuracy
    mcnemar_p: float
    f1_original: float  # F1 of the toxic class
    f1_perturbed: float
    evasion: float  # toxic -> non-toxic flips / pairs called toxic on the original (nan: none)
    false_alarm: float  # non-toxic -> toxic flips / pairs called non-toxic on the original
    changed_decisions: float  # pairs whose decision changed / pairs labelled on both sides
    unlabelled_pairs: int  # pairs without a label on one side or both (left out of the flips)


def compare_pairs(
    transform: str, kind: str, dataset: str, original: list[Record], perturbed: list[Record], unchanged: set[str]
) -> RobustnessRow:
    """One transform's row from the model's records on the original and on the derived dataset."""
    before = {r.sample_id: r for r in original}
    pairs = [(before[r.sample_id], r) for r in perturbed if r.sample_id in before and r.sample_id not in unchanged]
    gold = [a.gold for a, _ in pairs]
    m_before = compute_metrics(gold, [a.pred for a, _ in pairs])
    m_after = compute_metrics(gold, [b.pred for _, b in pairs])
    right_before = [a.pred is not None and a.pred == a.gold for a, _ in pairs]
    right_after = [b.pred is not None and b.pred == b.gold for _, b in pairs]
    only_before = sum(x and not y for x, y in zip(right_before, right_after, strict=True))
    only_after = sum(y and not x for x, y in zip(right_before, right_after, strict=True))
    labelled = [(a.pred, b.pred) for a, b in pairs if a.pred is not None and b.pred is not None]
    called_toxic = [b for a, b in labelled if a == 1]
    called_clean = [b for a, b in labelled if a == 0]
    n = len(pairs)
    acc_before, acc_after = sum(right_before), sum(right_after)
    low_b, high_b = wilson_interval(acc_before, n)
    low_a, high_a = wilson_interval(acc_after, n)
    return RobustnessRow(
        transform=transform,
        kind=kind,
        dataset=dataset,
        n=n,
        unchanged=sum(r.sample_id in unchanged for r in perturbed),  # of this run's samples (a subset has fewer)
        accuracy_original=_share(acc_before, n),
        accuracy_original_low=low_b,
        accuracy_original_high=high_b,
        accuracy_perturbed=_share(acc_after, n),
        accuracy_perturbed_low=low_a,
        accuracy_perturbed_high=high_a,
        delta=_share(acc_after - acc_before, n),
        mcnemar_p=mcnemar_exact(only_before, only_after),
        f1_original=m_before.f1_1,
        f1_perturbed=m_after.f1_1,
        evasion=_share(sum(b == 0 for b in called_toxic), len(called_toxic)),
        false_alarm=_share(sum(b == 1 for b in called_clean), len(called_clean)),
        changed_decisions=_share(sum(a != b for a, b in labelled), len(labelled)),
        unlabelled_pairs=n - len(labelled),
    )


def _share(k: int, n: int) -> float:
    return k / n if n else float("nan")


COLUMNS = [f.name for f in fields(RobustnessRow)]


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}"


def write_tables(rows: list[RobustnessRow], model: str, source: str, out_dir: Path) -> tuple[Path, Path]:
    """robustness.csv (every field) and robustness.md (the figures people read)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "robustness.csv", out_dir / "robustness.md"
    write_atomic(
        csv_path,
        csv_for_people(
            COLUMNS, ([f"{v:.6f}" if isinstance(v, float) else v for v in asdict(r).values()] for r in rows)
        ),
    )
    lines = [
        f"# Robustness of {model} on {source}",
        "",
        "Each row compares the model's decisions on the texts a transform changed with its decisions on the same "
        "texts as they were (n pairs; `unchanged`: texts the transform left as they were, not counted). Accuracy "
        "in % with the Wilson 95% interval; Δ in points, with the exact McNemar p-value of the paired decisions. "
        "Evasion: toxic → non-toxic flips among the pairs called toxic on the original; false alarm: non-toxic → "
        "toxic among those called non-toxic; changed: any flip (the figure that matters for counterfactuals). "
        "F1 of the toxic class.",
        "",
        "| transform | n | unchanged | accuracy original | 95% CI | accuracy disguised | 95% CI | Δ | McNemar p "
        "| F1 original | F1 disguised | evasion | false alarm | changed | no label |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {md_cell(r.transform)} | {r.n} | {r.unchanged} | {_pct(r.accuracy_original)} "
            f"| {_pct(r.accuracy_original_low)}–{_pct(r.accuracy_original_high)} | {_pct(r.accuracy_perturbed)} "
            f"| {_pct(r.accuracy_perturbed_low)}–{_pct(r.accuracy_perturbed_high)} | {100 * r.delta:+.1f} "
            f"| {format_p(r.mcnemar_p)} | {_pct(r.f1_original)} | {_pct(r.f1_perturbed)} | {_pct(r.evasion)} "
            f"| {_pct(r.false_alarm)} | {_pct(r.changed_decisions)} | {r.unlabelled_pairs} |"
        )
    write_atomic(md_path, "\n".join(lines) + "\n")
    return csv_path, md_path


def plot(rows: list[RobustnessRow], model: str, out_path: Path) -> Path:
    """Accuracy on the original and on the disguised texts per transform, Wilson intervals as error
    bars; SVG with stable ids, so the same runs give the same bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toxbench.analysis.sensitivity import stable_ids

    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.0))
    x = list(range(len(rows)))
    for offset, (label, key) in zip((-0.18, 0.18), (("original", "original"), ("disguised", "perturbed")), strict=True):
        y = [100 * getattr(r, f"accuracy_{key}") for r in rows]
        err = [
            [100 * (getattr(r, f"accuracy_{key}") - getattr(r, f"accuracy_{key}_low")) for r in rows],
            [100 * (getattr(r, f"accuracy_{key}_high") - getattr(r, f"accuracy_{key}")) for r in rows],
        ]
        ax.errorbar([i + offset for i in x], y, yerr=err, fmt="o", capsize=3, label=label)
    ax.set_xticks(x, [r.transform for r in rows], rotation=25, ha="right")
    ax.set_ylabel("accuracy (%) on the changed texts")
    ax.set_title(model)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    svg = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "toxbench"}):
        fig.savefig(svg, format="svg", metadata={"Date": None})
    plt.close(fig)
    return write_atomic(out_path, stable_ids(svg.getvalue()))


@dataclass
class RobustnessResult:
    """What a robustness study made: one row per transform, the runs it read (the original first),
    the derived datasets, and the files written."""

    rows: list[RobustnessRow]
    run_dirs: list[Path]
    datasets: list[Path]
    csv: Path
    markdown: Path
    svg: Path

    def frame(self):
        """The table as a pandas DataFrame (one column per `RobustnessRow` field)."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows], columns=COLUMNS)


def run_robustness(
    model: str,
    dataset: str,
    chains: list[str],
    data,
    runs_dir: Path,
    out_dir: Path,
    settings,
    *,
    model_args: dict | None = None,
    seed: int = 0,
    prompt: str = "detailed",
    lang: str = "fr",
    shots: str = "0",
    sample: int | None = None,
    sample_seed: int = 0,
    recorded_only: bool = False,
    datasets_dir: Path | None = None,
    on_run=None,
) -> RobustnessResult:
    """Derive each chain's dataset (into datasets_dir, default OUT/datasets), run the model on the original and on each
    (ordinary runs: cached, resumable, in RUNS; with recorded_only, found there without loading the
    model), then write robustness.csv, .md and .svg into OUT. The runs are the cells of a sweep over
    the datasets, so `--batch` and `--recorded` work as they do for sweeps."""
    from toxbench.analysis.metrics_cache import remember_metrics
    from toxbench.analysis.sensitivity import submit_batches
    from toxbench.data.datasets import load_dataset
    from toxbench.data.perturb.derive import derive
    from toxbench.data.perturb.transforms import chain_name, parse_chain
    from toxbench.records import Run
    from toxbench.run.sweep import Sweep, SweepModel, expand, run_cell

    steps = [parse_chain(chain) for chain in chains]  # every input checked before anything is written
    source = load_dataset(dataset, data)
    if not recorded_only:
        _check_model(model, model_args or {})
    out_dir = writable_dir(Path(out_dir), "--out")
    derived = [derive(source, chain, seed, Path(datasets_dir or out_dir / "datasets")) for chain in steps]
    study = Sweep(
        name="robustness",
        models=[SweepModel(model=model, args=model_args or {})],
        datasets=[dataset, *(str(d.path) for d in derived)],
        langs=[lang],
        prompts=[prompt],
        shots=[shots],
        sample=sample,
        sample_seed=sample_seed,
    )
    cells = expand(study, data, "live")
    if getattr(settings, "batch", False) and not recorded_only:
        submit_batches(cells, study, data, runs_dir, settings)
    run_dirs = []
    for i, cell in enumerate(cells, 1):
        if on_run:
            on_run(i, len(cells), cell.dataset)
        run_dirs.append(
            run_cell(cell, study, data, runs_dir, settings, on_records=remember_metrics, recorded_only=recorded_only)
        )
    original = Run.load(run_dirs[0]).records
    rows = [
        compare_pairs(
            chain_name(chain),
            "+".join(dict.fromkeys(s.transform.kind for s in chain)),
            d.name,
            original,
            Run.load(run_dir).records,
            set(d.record["unchanged_ids"]),
        )
        for chain, d, run_dir in zip(steps, derived, run_dirs[1:], strict=True)
    ]
    label = model if not model_args else f"{model} ({', '.join(f'{k}={v}' for k, v in sorted(model_args.items()))})"
    csv_path, md_path = write_tables(rows, label, source.name, out_dir)
    svg = plot(rows, label, out_dir / "robustness.svg")
    return RobustnessResult(rows, run_dirs, [d.path for d in derived], csv_path, md_path, svg)


def _check_model(model: str, model_args: dict) -> None:
    """An unknown adapter or a missing key, said before a derived dataset or a directory is written
    (the runs would find them only after)."""
    from toxbench.adapters.base import MissingKey
    from toxbench.adapters.registry import get_adapter, parse_model

    cls = get_adapter(parse_model(model)[0])
    if cls.required_env:
        try:
            cls.key_from_env(model_args.get("api_key_env"))
        except MissingKey as exc:
            raise ToxbenchError(str(exc)) from None


# -- the leaderboard's robustness section ---------------------------------------------------------

DERIVED_NAME = re.compile(r"^(?P<source>.+)~(?P<chain>[^~]+)~s(?P<seed>\d+)$")
BOARD_COLUMNS = [
    "run",
    "samples",
    "transforms",
    "worst",
    "worst_delta",
    "worst_p",
    "mean_delta",
    "max_evasion",
    "max_evasion_transform",
]


def board_rows(ranked: list, dataset: str, readable: list, data) -> tuple[list[dict], list[str]]:
    """For each ranked run (leaderboard rows with a run_dir) that has complete runs of the same
    model and prompt on disguised versions of `dataset` among `readable` ((run_dir, manifest)
    pairs): the worst change in accuracy over its transforms (with its McNemar p), the mean change
    and the highest evasion rate. Each derived dataset is rebuilt in memory from its name to know
    which texts it changed; one whose rebuild is not the recorded one (other rule tables) is left
    out with a note."""
    from toxbench.data.datasets import identity_sha256, load_dataset
    from toxbench.data.perturb.derive import build
    from toxbench.data.perturb.transforms import parse_chain
    from toxbench.records import Run, read_manifest

    derived_runs = [(d, m) for d, m in readable if m.status == "complete" and _derived_of(m.spec.dataset, dataset)]
    if not derived_runs:
        return [], []
    manifests = {Path(d): m for d, m in readable}
    source, unchanged, notes = None, {}, []
    out = []
    same = ("label", "prompt", "lang", "shots", "shots_seed", "shot_pool", "subset")
    for row in ranked:
        if row.run_dir is None:
            continue
        spec = manifests[Path(row.run_dir)].spec if Path(row.run_dir) in manifests else read_manifest(row.run_dir).spec
        mine = [(d, m) for d, m in derived_runs if all(getattr(m.spec, k) == getattr(spec, k) for k in same)]
        if not mine:
            continue
        original = Run.load(row.run_dir).records
        results = []
        for run_dir, manifest in sorted(mine, key=lambda dm: dm[1].spec.dataset):
            name = manifest.spec.dataset
            if name not in unchanged:
                match = DERIVED_NAME.match(name)
                try:  # a name that reads as derived but cannot be rebuilt here is left out, not the board
                    source = source or load_dataset(dataset, data)
                    _, record = build(source, parse_chain(match["chain"].replace("+", ",")), int(match["seed"]))
                except ToxbenchError as exc:
                    unchanged[name] = None
                    notes.append(f"{name}: cannot be rebuilt here ({exc}); left out of the robustness section")
                    continue
                ok = (
                    identity_sha256({"derived": name, "derived_sha256": record["derived_sha256"]})
                    == manifest.spec.dataset_sha256
                )
                unchanged[name] = set(record["unchanged_ids"]) if ok else None
                if not ok:
                    notes.append(
                        f"{name}: rebuilt here it is not the dataset its runs were recorded on (other rule tables); left out"
                    )
            if unchanged[name] is None:
                continue
            chain = DERIVED_NAME.match(name)["chain"]
            results.append(compare_pairs(chain, "", name, original, Run.load(run_dir).records, unchanged[name]))
        if not results:
            continue
        worst = min(results, key=lambda r: r.delta if r.delta == r.delta else math.inf)
        evasive = max(results, key=lambda r: r.evasion if r.evasion == r.evasion else -1.0)
        deltas = [r.delta for r in results if r.delta == r.delta]
        out.append(
            {
                "run": row.name or row.run,
                "samples": row.metrics.n_total,
                "transforms": len(results),
                "worst": worst.transform,
                "worst_delta": worst.delta,
                "worst_p": worst.mcnemar_p,
                "mean_delta": sum(deltas) / len(deltas) if deltas else float("nan"),
                "max_evasion": evasive.evasion,
                "max_evasion_transform": evasive.transform,
            }
        )
    return out, notes


def _derived_of(name: str, dataset: str) -> bool:
    match = DERIVED_NAME.match(name)
    return bool(match) and match["source"] == dataset


def board_section(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "## Robustness to disguise",
        "",
        "Runs that also ran on disguised versions of this dataset (`toxbench robustness`, docs/robustness.md), compared pair by "
        "pair on the texts each transform changed: the transform with the largest drop in accuracy (points, exact McNemar p), "
        "the mean change over the transforms, and the highest evasion rate (toxic decisions that became non-toxic).",
        "",
        "| run | samples | transforms | worst | Δ worst | p | mean Δ | highest evasion |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {md_cell(r['run'])} | {r['samples']} | {r['transforms']} | {md_cell(r['worst'])} | {100 * r['worst_delta']:+.1f} "
            f"| {format_p(r['worst_p'])} | {100 * r['mean_delta']:+.1f} | {_pct(r['max_evasion'])} ({md_cell(r['max_evasion_transform'])}) |"
        )
    return lines


def board_csv(rows: list[dict]) -> str:
    return csv_for_people(
        BOARD_COLUMNS, ([f"{r[c]:.6f}" if isinstance(r[c], float) else r[c] for c in BOARD_COLUMNS] for r in rows)
    )
