"""A static HTML report of every recorded run: `index.html` and, beside it, the sample explorer's
data as one script per dataset (`explorer/N.js`), loaded when that dataset is chosen, so the page
opens fast however many runs there are. Nothing is fetched from the network at view time, and it
works from the file system (file://).

Per dataset: the leaderboard (sortable, with intervals and the McNemar mark), per-class precision
and recall bars, confusion matrices, the Cohen's kappa matrix of the best runs, and the ICL
sensitivity charts found under results/. A per-sample explorer filters by dataset, run,
correct/incorrect, status and disagreement with a second run, and shows text, gold label,
predictions and raw answers.

Texts are toxic user content and may hold HTML or script. The page is rendered by Jinja2 with
autoescaping, and explorer data travels as JSON (a `<script type="application/json">` block, and
the argument of one call in each data script) with `<`, `>`, `&`, U+2028 and U+2029 escaped as
\\u sequences; the page's script writes it with `textContent` only, never as HTML.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

from toxbench._util import write_atomic
from toxbench.analysis.leaderboard import SIGNIFICANCE, collect
from toxbench.analysis.significance import format_p
from toxbench.data.datasets import samples_by_id
from toxbench.errors import ToxbenchError
from toxbench.records import Run, readable_runs, require_runs_dir
from toxbench.run.parsing import answer_text

KAPPA_RUNS = 15  # the kappa matrix shows the best runs of a dataset, so it stays readable
TEXT_CHARS = 400  # an answer's text is cut to this length in the explorer
RAW_CHARS = 2000  # and the provider's JSON, one click away, to this one


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def script_json(value) -> str:
    """JSON that cannot end a <script> element or open a comment: <, > and & as \\u escapes (and the
    two line separators JavaScript source once refused)."""
    return (
        json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


SVG_REFERENCE = re.compile(r'(\bid="|url\(#|href="#)([^")]+)(?=[")])')


def prefix_ids(svg: str, prefix: str) -> str:
    """Every id of an inlined SVG, and every reference to one (`url(#id)`, `href="#id"`), with a
    prefix: two matplotlib charts on one page both name their clip path `p0` and their markers
    `m0`, and the second would draw with the first one's clipping and markers."""
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    return SVG_REFERENCE.sub(lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0), svg)


def _datasets(runs_dir: Path) -> list[str]:
    return sorted({m.spec.dataset for _, m in readable_runs(runs_dir)[0]})


def _explained_spans(run_dir: Path) -> dict[str, list]:
    """Sample id -> the spans of the run's first explainer (the explorer marks them in the text)."""
    from toxbench.errors import ToxbenchError
    from toxbench.explanations import read_explainers, read_explanations

    try:
        first = next(iter(read_explainers(run_dir)), None)
        if first is None:
            return {}
        return {
            sid: line["spans"]
            for sid, line in read_explanations(run_dir, first)[2].items()
            if line.get("status") == "ok" and line["spans"]
        }
    except ToxbenchError:
        return {}


def _sensitivity_svgs(results_dirs) -> list[dict]:
    """The sweep plots found in the results folders (our own matplotlib SVGs), inlined, each with
    ids of its own."""
    dirs = [results_dirs] if isinstance(results_dirs, (str, Path)) else list(results_dirs or ())
    found = sorted({svg.resolve() for d in dirs if Path(d).is_dir() for svg in Path(d).glob("*/sensitivity.svg")})
    out = []
    for i, svg in enumerate(found):
        text = svg.read_text("utf-8")
        start = text.find("<svg")
        out.append({"name": svg.parent.name, "svg": prefix_ids(text[start:], f"chart{i}-") if start >= 0 else ""})
    return out


def build_report(
    runs_dir: Path,
    data,
    out_dir: Path,
    results_dir=None,  # a folder, or several, whose */sensitivity.svg charts are inlined
    policy: str = "count_as_wrong",
    on_warning=None,
) -> Path:
    """Write OUT/index.html from the runs directory; returns its path. Damaged runs are left out,
    each with a warning (on_warning)."""
    import jinja2

    from toxbench._util import writable_dir
    from toxbench.analysis.compare import kappa_matrix

    if Path(out_dir).suffix.lower() in (".html", ".htm"):
        raise ToxbenchError(
            f"--out {out_dir}: give a folder (the report writes index.html and its explorer data in it), e.g. results/report"
        )
    warnings = list(readable_runs(require_runs_dir(runs_dir))[1])
    writable_dir(out_dir, "--out")

    datasets, explorer = [], {"datasets": {}}
    for name in _datasets(runs_dir):
        board = collect(runs_dir, name, policy)  # type: ignore[arg-type]
        warnings += [w for w in board.damaged if w not in warnings]
        if not board.rows and not board.subset_rows and not board.fitted_rows:
            continue

        def row_dict(rank: int, row) -> dict:
            m = row.metrics
            return {
                "rank": rank,
                "run": row.name,
                "model": row.model,
                "prompt": row.prompt or "–",
                "shots": row.shots or "–",
                "n": m.n,
                "coverage": _num(m.coverage),
                "accuracy": _num(m.accuracy),
                "ci_low": _num(m.accuracy_ci_low),
                "ci_high": _num(m.accuracy_ci_high),
                "p0": _num(m.precision_0),
                "r0": _num(m.recall_0),
                "f1_0": _num(m.f1_0),
                "p1": _num(m.precision_1),
                "r1": _num(m.recall_1),
                "f1_1": _num(m.f1_1),
                "auc": _num(m.roc_auc),
                "p_next": row.p_vs_next,
                "close": row.p_vs_next is not None and row.p_vs_next >= SIGNIFICANCE,
                "confusion": m.confusion,
                "notes": row.notes,
            }

        rows = [row_dict(rank, row) for rank, row in enumerate(board.rows, 1)]
        subset_rows = [row_dict(rank, row) for rank, row in enumerate(board.subset_rows, 1)]
        fitted_rows = [row_dict(rank, row) for rank, row in enumerate(board.fitted_rows, 1)]
        every = board.rows + board.subset_rows + board.fitted_rows
        loaded = [Run.load(row.run_dir) for row in every]
        top = loaded[: min(KAPPA_RUNS, len(board.rows))] if board.rows else loaded[:KAPPA_RUNS]
        kappa = kappa_matrix(top).round(3).tolist() if len(top) > 1 else []
        datasets.append(
            {
                "name": name,
                "rows": rows,
                "subset_rows": subset_rows,
                "fitted_rows": fitted_rows,
                "kappa_runs": [r.name for r in every[: len(top)]],
                "kappa": kappa,
            }
        )
        known = samples_by_id(name, data)  # texts and gold spans, one load
        samples: dict[str, dict] = {}
        runs, names = {}, {}
        for row, run in zip(every, loaded):  # keyed by run id: labels can repeat, ids cannot
            preds = {}
            found = _explained_spans(row.run_dir)
            for rec in run.records:
                source = known.get(rec.sample_id)
                sample = samples.setdefault(rec.sample_id, {"text": source.text if source else "", "gold": rec.gold})
                if source is not None and source.spans:
                    sample["spans"] = [list(r) for r in source.spans]
                text = answer_text(rec.raw)
                raw = (rec.raw or "")[:RAW_CHARS] if rec.raw != text else ""
                preds[rec.sample_id] = [rec.pred, rec.status, text[:TEXT_CHARS], raw] + (
                    [found[rec.sample_id]] if rec.sample_id in found else []
                )
            runs[row.run_dir.name] = preds
            names[row.run_dir.name] = row.name
        explorer["datasets"][name] = {"samples": samples, "runs": runs, "names": names}
    files = _write_explorer_data(Path(out_dir), explorer["datasets"])
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    )
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.1f}"
    env.filters["num"] = lambda x: "" if x is None else f"{x:.6f}"
    env.filters["pvalue"] = format_p
    html = env.get_template("report.html.j2").render(
        datasets=datasets,
        policy=policy,
        significance=SIGNIFICANCE,
        sensitivity=_sensitivity_svgs(results_dir),
        explorer_json=script_json({"datasets": files}),
    )
    for warning in warnings:
        if on_warning:
            on_warning(warning)
    return write_atomic(Path(out_dir) / "index.html", html)


EXPLORER_DIR = "explorer"


def _write_explorer_data(out_dir: Path, datasets: dict[str, dict]) -> dict[str, str]:
    """One script per dataset, `explorer/N.js`, that hands its samples and runs to the page
    (`toxbenchExplorer({...})`); the page loads one when its dataset is chosen. Scripts left by an
    earlier report with more datasets are removed. Returns dataset -> the script's relative path."""
    folder = out_dir / EXPLORER_DIR
    files = {}
    for i, (name, payload) in enumerate(datasets.items()):
        rel = f"{EXPLORER_DIR}/{i}.js"
        write_atomic(out_dir / rel, f"toxbenchExplorer({script_json({'name': name, 'data': payload})});\n")
        files[name] = rel
    for stale in folder.glob("*.js") if folder.is_dir() else ():
        if re.fullmatch(r"\d+\.js", stale.name) and f"{EXPLORER_DIR}/{stale.name}" not in files.values():
            stale.unlink()
    return files


def report_size(index: Path) -> str:
    """What `toxbench report` says it wrote: the page's size and its explorer data's."""
    scripts = list((index.parent / EXPLORER_DIR).glob("*.js"))
    data = sum(p.stat().st_size for p in scripts)
    return (
        f"{index.stat().st_size / 1e6:.1f} MB, and {data / 1e6:.1f} MB of explorer data in {len(scripts)} "
        f"file{'s' if len(scripts) != 1 else ''} under {index.parent / EXPLORER_DIR}, loaded one dataset at a time"
    )


def _template(name: str) -> str:
    return resources.files("toxbench.templates").joinpath(name).read_text("utf-8")
