"""The chain-of-thought annotation pipeline (the ToxiFrench paper's Section 3.2), as the release ran
it: one chat request per step per comment, in order, each step shown the blocks its header names
(`cot_steps.toml`). Each step is an ordinary run through the engine, recorded under OUT/runs/, so
the cache, retries, rate limits, cost, progress and resume are those of any run: a crash loses
only requests in flight, and the same command again goes on where it stopped (asking again what
ended in an error). A comment whose block for a step is missing (an error, a refusal) goes no
further until it is answered. Any chat adapter works.

OUT/annotation.json says what was run (input, columns, model, steps); OUT/annotations.csv is the
table in the release's layout (`agreement_checking.csv`: the raw blocks, then `categorie_list`,
`labels_list`, `note`, `conclusion`), rebuilt from the step runs' records at the end of each
command, with a status per comment that names every block not read (`categorie: off_list`,
`toxicite_score: unparseable`, `conclusion: pending`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from toxbench._util import (
    csv_for_people,
    response_cache_path,
    sha256_file,
    write_atomic,
)
from toxbench.adapters.registry import create
from toxbench.data.tables import Comment, read_comments
from toxbench.errors import ToxbenchError
from toxbench.records import RunSpec, RunWriter, run_label
from toxbench.run.cot_blocks import parse_block
from toxbench.run.cot_steps import Step, load_steps, user_message
from toxbench.run.engine import ExecutionSettings
from toxbench.run.loop import run_coroutine
from toxbench.run.parsing import Parsed, answer_text
from toxbench.types import Record, Request

ANNOTATION_FILE = "annotation.json"
TABLE_FILE = "annotations.csv"
RUNS_DIR = "runs"
# parsed columns, as the release names them: step -> (value column, justification column)
PARSED_COLUMNS = {
    "categorie": ("categorie_list", "categorie_justification"),
    "labels": ("labels_list", "labels_justification"),
    "toxicite_score": ("note", "note_justification"),
    "certitude": ("certitude_level", None),
    "conclusion": ("conclusion", None),
}
RAW_COLUMN = {"conclusion": "conclusion_block"}  # the release's `conclusion` is the parsed 0/1


BATCHES_DIR = "batches"  # OUT/batches/<step>.json: each step's checkpointed batches


@dataclass
class AnnotateOptions:
    input: Path
    model: str
    out: Path
    model_args: dict = field(default_factory=dict)
    text_col: str | None = None
    id_col: str | None = None
    certainty: bool = False  # the release's optional certainty step
    limit: int | None = None  # the first N comments
    use_cache: bool = True
    batch_api: bool = False  # the provider's batch API, one batch per step (toxbench.run.batch)
    poll_s: float = 30.0  # seconds between polls of a batch


@dataclass
class AnnotationResult:
    out: Path
    n: int
    statuses: dict[str, int]  # comment status -> count ("ok" when every block was read)
    blocks: dict[str, dict[str, int]]  # step -> block status -> count
    cost_usd: float | None
    requests_sent: int
    cache_hits: int


def block_parser(key: str):
    """The run parser of a step: a record is `ok` when its block is read (an off-list category
    included), `unparseable` otherwise; the conclusion step's label is the conclusion."""

    def parse(text: str | None) -> Parsed:
        block = parse_block(key, text)
        read = block.status in ("ok", "off_list")
        return Parsed(block.value if key == "conclusion" and read else None, "ok" if read else "unparseable")

    return parse


def step_spec(step: Step, adapter, model_args: dict, input_name: str, input_sha256: str, subset: str | None) -> RunSpec:
    model_id = getattr(adapter, "model", None) or adapter.name
    return RunSpec(
        adapter=adapter.name,
        model=model_id,
        adapter_params=adapter.identity(),
        dataset=input_name,
        dataset_sha256=input_sha256,
        prompt=f"cot-{step.key}",
        lang="fr",
        parser=f"cot-block:{step.key}",
        prompt_sha256=step.identity(),
        subset=subset,
        label=f"annotate {step.key} " + run_label(adapter.name, model_id, model_args),
    )


def _claim(out: Path, pipeline: dict) -> None:
    """Write OUT/annotation.json, or check that OUT holds this very pipeline (resume); another
    input, model or step list in the same directory is refused before any request."""
    path = out / ANNOTATION_FILE
    if path.exists():
        try:
            held = json.loads(path.read_text("utf-8"))
        except ValueError:
            raise ToxbenchError(f"{path}: not readable JSON; remove {out} or choose another --out") from None
        differs = [
            k for k in ("input_sha256", "columns", "model", "adapter", "steps", "n") if held.get(k) != pipeline.get(k)
        ]
        if differs:
            raise ToxbenchError(
                f"{out}: holds another annotation (its {', '.join(differs)} differ); choose another --out, or run its own command again to resume"
            )
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ToxbenchError(f"--out {out}: cannot create it ({exc.strerror}); choose a writable directory") from None
    write_atomic(path, json.dumps(pipeline, indent=2, ensure_ascii=False) + "\n")


def annotate(opts: AnnotateOptions, data, settings: ExecutionSettings, show_progress: bool = True) -> AnnotationResult:
    """Run (or resume) every step for every comment, then write the annotated table."""
    from toxbench.run.pricing import cost_usd, price_table
    from toxbench.run.progress import preparing

    path = Path(opts.input)
    if not path.is_file():
        raise ToxbenchError(
            f"{path}: no such file; give a CSV/JSONL of comments (a text column, optionally an id column)"
        )
    if opts.limit is not None and (not isinstance(opts.limit, int) or opts.limit < 1):
        raise ToxbenchError(
            f"--limit {opts.limit}: give a whole number of comments, at least 1 (leave it out for the whole file)"
        )
    if opts.poll_s is None or not opts.poll_s > 0:
        raise ToxbenchError(f"--poll {opts.poll_s}: give a number of seconds above 0")
    comments, id_col = read_comments(path, opts.text_col, opts.id_col)
    subset = None
    if opts.limit is not None and opts.limit < len(comments):
        comments, subset = comments[: opts.limit], f"first-{opts.limit}"
    steps = load_steps(data, opts.certainty)
    table = price_table(None)
    if opts.batch_api:
        from toxbench.adapters.registry import get_adapter, parse_model
        from toxbench.run.batch import has_batch_api, with_batch_api

        name = parse_model(opts.model)[0]
        if not has_batch_api(get_adapter(name)):
            raise ToxbenchError(
                f"--batch-api: {name!r} has no batch API here ({', '.join(with_batch_api())} have); "
                "leave --batch-api out to send requests live"
            )
    with preparing(opts.model, enabled=show_progress):
        adapter = create(opts.model, opts.model_args, data)
    if adapter.kind != "chat" or adapter.renders_own_prompt:
        raise ToxbenchError(
            f"--model {opts.model}: annotation needs a chat model that takes a prompt (openai:, mistral:, anthropic:, gemini:, hf:)"
        )
    input_sha256 = sha256_file(path)
    pipeline = {
        "input": str(path),
        "input_sha256": input_sha256,
        "columns": {"text": opts.text_col, "id": id_col},
        "model": opts.model,
        "adapter": adapter.identity(),
        "steps": [{"key": s.key, "identity": s.identity()} for s in steps],
        "n": len(comments),
    }
    _claim(opts.out, pipeline)
    specs = {s.key: step_spec(s, adapter, opts.model_args, path.name, input_sha256, subset) for s in steps}
    records, stats = run_coroutine(
        _run_steps(
            adapter,
            steps,
            specs,
            comments,
            opts,
            settings,
            lambda i, o, batch=False: cost_usd(getattr(adapter, "model", ""), i, o, table, batch=batch),
            show_progress,
        )
    )
    rows, statuses, blocks = annotated_rows(comments, steps, records)
    write_table(opts.out / TABLE_FILE, rows)
    costs = [r.cost_usd for per_step in records.values() for r in per_step.values() if r.cost_usd is not None]
    return AnnotationResult(
        opts.out,
        len(comments),
        statuses,
        blocks,
        sum(costs) if costs else None,
        sum(s.requests_sent for s in stats),
        sum(s.cache_hits for s in stats),
    )


async def _run_steps(
    adapter,
    steps: list[Step],
    specs: dict[str, RunSpec],
    comments: list[Comment],
    opts: AnnotateOptions,
    settings: ExecutionSettings,
    cost,
    show_progress: bool,
) -> tuple[dict[str, dict[str, Record]], list]:
    """Each step in order in one event loop (an SDK client belongs to the loop it first ran in):
    (step -> sample id -> record, the engine's counts per step)."""
    from toxbench.run.runner import drive, settle

    cache = None
    if opts.use_cache:
        from toxbench.run.cache import ResponseCache

        cache = ResponseCache(response_cache_path())
    names = {s.key: s.name for s in steps}
    blocks: dict[str, dict[str, str]] = {c.id: {} for c in comments}
    records: dict[str, dict[str, Record]] = {}
    engine_stats = []
    try:
        for number, step in enumerate(steps, 1):
            writer = RunWriter(opts.out / RUNS_DIR, specs[step.key], n_expected=len(comments))
            try:
                ready = [
                    c
                    for c in comments
                    if c.id not in writer.recorded and all(k == "message" or k in blocks[c.id] for k in step.sees)
                ]
                requests = [
                    Request(
                        c.id,
                        c.text,
                        "fr",
                        (
                            {"role": "system", "content": step.system},
                            {"role": "user", "content": user_message(step, c.text, blocks[c.id], names)},
                        ),
                    )
                    for c in ready
                ]
                if opts.batch_api:
                    from toxbench.run.batch import run_batched

                    def say(line: str, step: str = step.key) -> None:
                        if show_progress:
                            print(f"{step}: {line}", file=sys.stderr, flush=True)

                    counts = await run_batched(
                        adapter,
                        adapter.batch_backend(),
                        requests,
                        writer,
                        block_parser(step.key),
                        dict.fromkeys(blocks),
                        cache,
                        lambda i, o: cost(i, o, batch=True),
                        opts.poll_s,
                        say,
                        max_poll_failures=settings.max_retries,
                        checkpoint=opts.out / BATCHES_DIR / f"{step.key}.json",
                        option=f"--batch-api, step {step.key}",
                        close_adapter=False,
                    )
                    engine_stats.append(
                        SimpleNamespace(requests_sent=counts["submitted"], cache_hits=counts["cache_hits"])
                    )
                else:
                    total = len(writer.recorded & blocks.keys()) + len(requests)
                    engine_stats.append(
                        await drive(
                            adapter,
                            requests,
                            dict.fromkeys(blocks),
                            writer,
                            block_parser(step.key),
                            settings,
                            cache,
                            cost,
                            total,
                            show_progress,
                            f"{number}/{len(steps)} {step.key}",
                            close=False,
                        )
                    )
            except BaseException:
                writer.close()
                raise
            records[step.key] = {r.sample_id: r for r in writer.records()}
            for sid, record in records[step.key].items():
                if (
                    record.status in ("ok", "unparseable") and sid in blocks
                ):  # a block exists, read or not: later steps see it as written
                    blocks[sid][step.key] = answer_text(record.raw)
            if writer.records():
                settle(writer, len(comments))
            else:
                writer.close()
    finally:
        if cache:
            cache.close()
        await adapter.aclose()
    return records, engine_stats


SEVERITY = ("error", "refused", "pending", "unparseable", "off_list", "ok")  # a comment's state is its worst block's


def annotated_rows(
    comments: list[Comment], steps: list[Step], records: dict[str, dict[str, Record]]
) -> tuple[list[dict], dict, dict]:
    """(table rows, comment state -> count, step -> block status -> count). A block's status is
    pending (not asked yet: an earlier block is missing), error, refused, or its parse status.
    Input columns the pipeline writes itself (the release's own file as input) are replaced."""
    produced = {"msg_id", "content", "status", "problems"} | {RAW_COLUMN.get(s.key, s.key) for s in steps}
    produced |= {c for s in steps for c in PARSED_COLUMNS.get(s.key, ()) if c}
    states: dict[str, int] = {}
    counts: dict[str, dict[str, int]] = {s.key: {} for s in steps}
    rows = []
    for comment in comments:
        row = {
            "msg_id": comment.id,
            "content": comment.text,
            **{k: v for k, v in comment.row.items() if k not in produced},
        }
        flags, problems = [], []
        for step in steps:
            record = records.get(step.key, {}).get(comment.id)
            answered = record is not None and record.status in ("ok", "unparseable")
            text = answer_text(record.raw) if answered else ""
            parsed = parse_block(step.key, text) if answered else None
            status = parsed.status if parsed else "pending" if record is None else record.status
            counts[step.key][status] = counts[step.key].get(status, 0) + 1
            row[RAW_COLUMN.get(step.key, step.key)] = text
            value_col, justification_col = PARSED_COLUMNS.get(step.key, (None, None))
            value = parsed.value if parsed is not None and parsed.status in ("ok", "off_list") else None
            if value_col:
                row[value_col] = (
                    ""
                    if value is None
                    else json.dumps(list(value), ensure_ascii=False)
                    if isinstance(value, (list, tuple))
                    else value
                )
            if justification_col:
                row[justification_col] = (parsed.justification if parsed is not None else None) or ""
            if status != "ok":
                flags.append((step.key, status))
                why = parsed.problem if parsed is not None else (record.raw or "")[:200] if record is not None else None
                if why:
                    problems.append(f"{step.key}: {why}")
        row["status"] = "; ".join(f"{k}: {v}" for k, v in flags) or "ok"
        row["problems"] = " | ".join(problems)
        state = min((v for _, v in flags), key=SEVERITY.index, default="ok")
        states[state] = states.get(state, 0) + 1
        rows.append(row)
    return rows, states, counts


def write_table(path: Path, rows: list[dict]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    write_atomic(path, csv_for_people(columns, ([row.get(c, "") for c in columns] for row in rows)))
