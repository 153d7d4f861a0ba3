"""One live run end to end: resolve the adapter, load and subset the dataset, render requests,
skip what is recorded, run the engine with a progress bar, and finish the records. Metrics are not
computed here: they are a function of the records (toxbench.analysis)."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

from toxbench._util import response_cache_path
from toxbench.adapters.registry import create
from toxbench.data.datadir import DataDir
from toxbench.data.datasets import load_dataset
from toxbench.data.sampling import select
from toxbench.data.tables import Columns
from toxbench.errors import ToxbenchError
from toxbench.records import RunSpec, RunWriter, run_label
from toxbench.run.engine import EngineStats, ExecutionSettings, run_requests
from toxbench.run.loop import run_coroutine
from toxbench.types import Request


@dataclass
class RunOptions:
    """What a run is about (its identity) and where it goes; `ExecutionSettings` say how to send."""

    model: str = "baseline"
    dataset: str = "toxifrench"
    prompt: str = "detailed"
    lang: str | None = None  # default: the dataset's language when the prompt has it, else French
    shots: str = "0"
    seed: int = 0
    shot_pool: str = "first"  # first: the release's few-shot examples; random: drawn with `seed`
    parser: str = "one-word"
    model_args: dict = field(default_factory=dict)
    limit: int | None = None
    sample: int | None = None  # a seeded class-balanced sample of this size (seed: sample_seed)
    sample_seed: int = 0
    runs_dir: Path = Path("runs")
    use_cache: bool = True
    cache_path: Path | None = None
    prices: str | None = None
    columns: Columns = field(default_factory=Columns)
    retry_errors: bool = True  # ask again for samples recorded as `error` by an earlier attempt

    def __post_init__(self) -> None:
        from toxbench.run.prompts import SHOT_POOLS, SHOTS, check_prompt

        check_prompt(self.prompt)  # these checks run before a model loads
        if self.shots not in SHOTS:
            raise ToxbenchError(f"--shots {self.shots!r}: use one of {', '.join(SHOTS)}")
        if self.shot_pool not in SHOT_POOLS:
            raise ToxbenchError(
                f"--shot-pool {self.shot_pool!r}: use first (the release's examples) or random (drawn with --seed)"
            )
        for option, value in (("--limit", self.limit), ("--sample", self.sample)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ToxbenchError(
                    f"{option} {value}: give a whole number of samples, at least 1 (leave it out for the whole dataset)"
                )


@dataclass
class RunResult:
    """What a run did: its directory, how its samples ended, and what it cost."""

    run_dir: Path
    n: int
    statuses: dict
    cost_usd: float | None  # None: the model has no price
    requests_sent: int
    cache_hits: int
    retried_errors: int = 0  # error records of an earlier attempt asked again
    notes: list[str] = field(default_factory=list)  # options that did not apply, said once the run is done

    def as_dict(self) -> dict:
        return {
            "run_dir": str(self.run_dir),
            "n": self.n,
            "status": self.statuses,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
            "requests_sent": self.requests_sent,
            "cache_hits": self.cache_hits,
            "retried_errors": self.retried_errors,
        }


def execute(
    opts: RunOptions, data: DataDir, settings: ExecutionSettings, show_progress: bool = True, adapter=None
) -> RunResult:
    """Run (or resume) `opts`; `adapter` is one already made from opts.model and opts.model_args
    (explanations reuse the loaded model)."""
    from toxbench.run.parsing import get_parser
    from toxbench.run.pricing import cost_usd, price_table
    from toxbench.run.progress import preparing

    table = price_table(opts.prices)  # a bad price file, dataset or subset is found before a model loads
    dataset = load_dataset(opts.dataset, data, opts.columns)
    samples, subset = select(dataset.samples, opts.sample, opts.sample_seed, opts.limit)
    if adapter is None:
        with preparing(opts.model, enabled=show_progress, doing=_preparing_note(opts.model)):
            adapter = create(opts.model, opts.model_args, data)  # a missing key stops here, before any work
    if adapter.run_notes:  # said before any work, to a script's stderr as well
        from rich.console import Console

        for note in adapter.run_notes:
            Console(stderr=True, highlight=False, soft_wrap=True).print(f"[yellow]warning[/] {opts.model}: {note}")
    chat = adapter.kind == "chat" and not adapter.renders_own_prompt
    notes = [
        f"{option} {value}: {dataset.name} has {len(dataset.samples)} samples, so this is the whole-dataset run"
        for option, value in (("--sample", opts.sample), ("--limit", opts.limit))
        if value and subset is None
    ]
    if not chat and (opts.prompt, opts.lang, opts.shots) != ("detailed", None, "0"):
        notes.append(
            f"{adapter.name} reads no prompt: --prompt, --lang and --shots do not apply to it, and the run records none of them"
        )
    renderer = None
    lang = None
    if chat:
        from toxbench.run.prompts import make_renderer, run_language

        lang = run_language(opts.prompt, opts.lang, [s.lang for s in samples], data)
        renderer = make_renderer(opts.prompt, lang, opts.shots, opts.seed, data, opts.shot_pool)
    parser_name = adapter.default_parser or (opts.parser if chat else None)
    parser = get_parser(parser_name) if parser_name else None
    model_id = getattr(adapter, "model", None) or adapter.name
    spec = RunSpec(
        adapter=adapter.name,
        model=model_id,
        adapter_params=adapter.identity(),
        dataset=dataset.name,
        dataset_sha256=dataset.sha256,
        prompt=opts.prompt if chat else None,
        lang=lang if chat else None,
        shots=opts.shots if chat else None,
        shots_seed=opts.seed if chat and opts.shots != "0" else None,
        shot_pool=opts.shot_pool if chat and opts.shots != "0" else None,
        parser=parser_name,
        prompt_sha256=renderer.identity()["prompt_sha256"] if renderer else None,
        subset=subset,
        label=run_label(adapter.name, model_id, opts.model_args),
    )
    priced_as = getattr(adapter, "model", "")
    batched = _batched(adapter, settings, Path(opts.runs_dir) / spec.run_id())
    cache = None  # everything that can fail on input fails before the run directory is touched
    if opts.use_cache:
        from toxbench.run.cache import ResponseCache

        cache = ResponseCache(opts.cache_path or response_cache_path())
    try:
        writer = RunWriter(opts.runs_dir, spec, n_expected=len(samples), retry_errors=opts.retry_errors)
    except BaseException:
        if cache:
            cache.close()
        raise
    requests = [
        Request(
            s.id,
            s.text,
            s.lang,
            tuple(renderer.messages(s.text)) if renderer else (),
            renderer.labels if renderer else (),
        )
        for s in samples
        if s.id not in writer.recorded
    ]
    golds = {s.id: s.label for s in samples}
    try:
        if batched:
            from rich.console import Console

            from toxbench.run.batch import run_batched

            console = Console(stderr=True, highlight=False, soft_wrap=True)
            # markup off: a batch id or status comes from the server, and "[/x]" in it would be a rich error
            say = (lambda line: console.print(line, markup=False)) if show_progress else (lambda _: None)
            counts = run_coroutine(
                run_batched(
                    adapter,
                    adapter.batch_backend(),
                    requests,
                    writer,
                    parser,
                    golds,
                    cache,
                    lambda i, o: cost_usd(priced_as, i, o, table, batch=True),
                    settings.poll_s,
                    say,
                    cancel=settings.cancel,
                    submit_only=settings.submit_only,
                )
            )
            stats = SimpleNamespace(requests_sent=counts["submitted"], cache_hits=counts["cache_hits"])
        else:
            stats = run_coroutine(
                drive(
                    adapter,
                    requests,
                    golds,
                    writer,
                    parser,
                    settings,
                    cache,
                    lambda i, o: cost_usd(priced_as, i, o, table),
                    len(samples),
                    show_progress,
                )
            )
    except BaseException:
        writer.close()  # Ctrl-C, a stopping error: what was recorded stays for the next run to resume
        raise
    finally:
        if cache:
            notes.extend(cache.notes)
            cache.close()
    run_dir = settle(writer, len(samples), list(adapter.run_notes) or None)
    counts = {k: v for k, v in writer.manifest.counts.items() if v}
    priced = priced_as in table
    return RunResult(
        run_dir,
        len(writer.recorded),
        counts,
        (writer.manifest.cost_usd or 0.0) if priced else None,
        stats.requests_sent,
        stats.cache_hits,
        len(writer.retrying),
        notes,
    )


def _preparing_note(model: str) -> str:
    from toxbench.adapters.registry import get_adapter, parse_model

    try:
        return get_adapter(parse_model(model)[0]).preparing
    except (ToxbenchError, ImportError):
        return "starting"


def settle(writer: RunWriter, n_samples: int, notes: list[str] | None = None) -> Path:
    """End a run after the engine: complete when every sample is recorded, else closed for resume;
    a run in which no sample got an answer is never complete (a one-line error says so)."""
    records = writer.records()
    if records and all(r.status == "error" for r in records):  # no answer at all: never a complete run
        writer.close()
        raise ToxbenchError(
            f"{writer.dir}: no sample got an answer ({len(records)} errors; the first: {records[0].raw}); "
            "fix the cause and run the same command again (error samples are asked again)"
        )
    if len(writer.recorded) >= n_samples:
        return writer.finish(notes)
    writer.close()
    return writer.dir


async def drive(
    adapter,
    requests,
    golds,
    writer,
    parser,
    settings,
    cache,
    cost,
    total,
    show_progress,
    description: str | None = None,
    close: bool = True,
) -> EngineStats:
    """The engine under a progress bar and Ctrl-C handling: shared by runs, explanations and the
    annotation steps. `close`: close the adapter's client after (not between the steps of one
    event loop)."""
    from toxbench.run.progress import sample_progress

    stop = threading.Event()
    main = asyncio.current_task()
    batches = adapter.capabilities.batching and adapter.implements_batches()

    def on_ctrl_c() -> None:
        """First Ctrl-C: say so at once; a local model finishes the batch it is on (its answers are
        recorded), an API run stops now (in-flight requests are dropped). A second: stop now."""
        if stop.is_set() or not batches:
            main.cancel()
        if not stop.is_set():
            stop.set()
            what = "after the current batch (Ctrl-C again to stop now)" if batches else "now"
            print(f"\nstopping {what}; what was recorded is kept", file=sys.stderr, flush=True)

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, on_ctrl_c)
        handling = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        handling = False
    try:
        with sample_progress(
            description or adapter.name, total, total - len(requests), enabled=show_progress
        ) as advance:
            stats = await run_requests(
                adapter,
                requests,
                golds,
                writer,
                parser=parser,
                settings=settings,
                cache=cache,
                cost=cost,
                secrets=getattr(adapter, "secrets", ()),
                on_record=lambda _record, stats: advance(stats),
                stop=stop,
            )
    except asyncio.CancelledError:
        if stop.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        if handling:
            loop.remove_signal_handler(signal.SIGINT)
        if close:
            await adapter.aclose()
    if stop.is_set():
        raise KeyboardInterrupt
    return stats


def _batched(adapter, settings: ExecutionSettings, run_dir: Path) -> bool:
    """Whether this run goes through the adapter's batch API, after checking what --batch and
    --cancel need, before anything is written."""
    from toxbench.run.batch import CHECKPOINT, has_batch_api, read_checkpoint, with_batch_api

    if settings.cancel and not settings.batch:
        raise ToxbenchError("--cancel goes with --batch: it cancels the batches a batched run checkpointed")
    if settings.cancel and not read_checkpoint(run_dir)["batches"]:
        raise ToxbenchError(
            f"--cancel: no batch of this run is checkpointed ({run_dir / CHECKPOINT}): nothing to cancel"
        )
    if not settings.batch:
        return False
    if has_batch_api(type(adapter)):
        return True
    if settings.batch_where_available:
        return False
    raise ToxbenchError(
        f"--batch: {adapter.name!r} has no batch API here ({', '.join(with_batch_api())} have); "
        "leave --batch out to send requests live"
    )
