"""One live run end to end: resolve the adapter, render requests, skip what is recorded, run the
engine with a progress bar, and finish the records. `toxbench run` is a thin wrapper over this."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from toxbench.adapters.base import MissingKey, Request, get_adapter
from toxbench.errors import ToxbenchError
from toxbench.harness.datadir import DataDir
from toxbench.harness.datasets import load_dataset
from toxbench.harness.engine import EngineStats, ExecutionSettings, run_requests
from toxbench.harness.records import RunSpec, RunWriter
from toxbench.harness.tables import Columns

CACHE_ENV = "TOXBENCH_CACHE"


@dataclass
class RunOptions:
    model: str = "baseline"
    dataset: str = "toxifrench"
    prompt: str = "detailed"
    lang: str | None = None  # default: the dataset's language when the prompt has it, else French
    shots: str = "0"
    seed: int = 0
    parser: str = "one-word"
    model_args: dict = field(default_factory=dict)
    limit: int | None = None
    sample: int | None = None  # a seeded class-balanced sample of this size (seed: sample_seed)
    sample_seed: int = 0
    runs_dir: Path = Path("runs")
    use_cache: bool = True
    cache_path: Path | None = None
    prices: str | None = None
    columns: Columns = Columns()


@dataclass
class RunResult:
    run_dir: Path
    n: int
    statuses: dict
    cost_usd: float
    requests_sent: int
    cache_hits: int
    metrics: dict

    def as_json(self) -> str:
        return json.dumps({"run_dir": str(self.run_dir), "n": self.n, "status": self.statuses, "metrics": self.metrics,
                           "cost_usd": round(self.cost_usd, 6), "requests_sent": self.requests_sent, "cache_hits": self.cache_hits}, indent=2)


def balanced_sample(samples: list, n: int, seed: int) -> list:
    """n samples, half of each class (as far as the classes allow), drawn with `seed`, in dataset order."""
    import random

    rng = random.Random(seed)
    chosen: set[str] = set()
    for label in (0, 1):
        pool = [s.id for s in samples if s.label == label]
        chosen |= set(rng.sample(pool, min(len(pool), n // 2 + (n % 2 if label == 1 else 0))))
    return [s for s in samples if s.id in chosen]


def parse_model(model: str) -> tuple[str, str | None]:
    """`openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini"); `perspective` -> ("perspective", None)."""
    name, _, model_id = model.partition(":")
    return name, model_id or None


def parse_model_args(pairs: list[str]) -> dict:
    """`key=value` pairs; values read as JSON when they can be (numbers, true/false, null)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ToxbenchError(f"--model-arg {pair!r} is not key=value (e.g. --model-arg base_url=http://127.0.0.1:8000/v1)")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def default_cache_path() -> Path:
    import platformdirs

    return Path(os.environ.get(CACHE_ENV) or Path(platformdirs.user_cache_dir("toxbench")) / "responses.sqlite")


def make_adapter(model: str, model_args: dict, data: DataDir | None = None):
    import inspect

    name, model_id = parse_model(model)
    cls = get_adapter(name)
    kwargs = dict(model_args)
    if model_id:
        kwargs["model"] = model_id
    if data is not None and "data" in inspect.signature(cls.__init__).parameters:
        kwargs["data"] = data  # adapters that read the data directory (the baseline's training files)
    try:
        return cls(**kwargs)
    except MissingKey as exc:
        raise ToxbenchError(str(exc)) from None
    except TypeError as exc:
        raise ToxbenchError(f"adapter {name!r} does not take these arguments ({exc}); see `toxbench adapters`") from None


def execute(opts: RunOptions, data: DataDir, settings: ExecutionSettings, show_progress: bool = True) -> RunResult:
    from toxbench.harness.metrics_cache import metrics_for
    from toxbench.harness.parsing import get_parser
    from toxbench.harness.pricing import cost_usd, price_table

    adapter = make_adapter(opts.model, opts.model_args, data)  # a missing key stops here, before any work
    dataset = load_dataset(opts.dataset, data, opts.columns)
    samples = dataset.samples
    if opts.sample:
        samples = balanced_sample(samples, opts.sample, opts.sample_seed)
    if opts.limit:
        samples = samples[: opts.limit]
    chat = adapter.kind == "chat" and not adapter.renders_own_prompt
    renderer = None
    lang = opts.lang or Counter(s.lang for s in samples).most_common(1)[0][0]
    if chat:
        from toxbench.harness.prompts import load_prompt_set, make_renderer

        if opts.lang is None and lang not in load_prompt_set(opts.prompt, data).languages:
            lang = "fr"
        renderer = make_renderer(opts.prompt, lang, opts.shots, opts.seed, data)
    parser_name = adapter.default_parser or (opts.parser if chat else None)
    parser = get_parser(parser_name) if parser_name else None
    spec = RunSpec(
        adapter=adapter.name,
        model=getattr(adapter, "model", None) or adapter.name,
        adapter_params=adapter.identity(),
        dataset=dataset.name,
        dataset_sha256=dataset.sha256,
        prompt=opts.prompt if chat else None,
        lang=lang if chat else None,
        shots=opts.shots if chat else None,
        shots_seed=opts.seed if chat and opts.shots != "0" else None,
        parser=parser_name,
        prompt_sha256=renderer.identity()["prompt_sha256"] if renderer else None,
        subset=f"balanced-{opts.sample}-seed{opts.sample_seed}" if opts.sample else None,
        label=" ".join([f"{adapter.name}:{getattr(adapter, 'model', None) or adapter.name}",
                        *(f"{k}={v}" for k, v in sorted(opts.model_args.items()))]),
    )
    writer = RunWriter(opts.runs_dir, spec, n_expected=len(samples))
    requests = [
        Request(s.id, s.text, s.lang, tuple(renderer.messages(s.text)) if renderer else (), renderer.labels if renderer else ())
        for s in samples if s.id not in writer.recorded
    ]
    golds = {s.id: s.label for s in samples}
    table = price_table(opts.prices)
    model_id = getattr(adapter, "model", "")
    cache = None
    if opts.use_cache:
        from toxbench.harness.cache import ResponseCache

        cache = ResponseCache(opts.cache_path or default_cache_path())
    try:
        stats = asyncio.run(_run(adapter, requests, golds, writer, parser, settings, cache,
                                 lambda i, o: cost_usd(model_id, i, o, table), len(samples), show_progress))
    except BaseException:
        writer.close()  # Ctrl-C, a stopping error: what was recorded stays for the next run to resume
        raise
    finally:
        if cache:
            cache.close()
    if len(writer.recorded) >= len(samples):
        run_dir = writer.finish()
    else:
        writer.close()
        run_dir = writer.dir
    metrics = metrics_for(run_dir, "count_as_wrong").as_dict()
    return RunResult(run_dir, len(writer.recorded), {k: v for k, v in writer.manifest.counts.items() if v}, writer.manifest.cost_usd,
                     stats.requests_sent, stats.cache_hits, {k: metrics[k] for k in ("accuracy", "coverage", "f1_0", "f1_1", "balanced_accuracy")})


async def _run(adapter, requests, golds, writer, parser, settings, cache, cost, total, show_progress) -> EngineStats:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    done_before = total - len(requests)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task(adapter.name, total=total, completed=done_before, rate="", info="")
        start = asyncio.get_running_loop().time()
        finished = 0

        def on_record(record, stats: EngineStats) -> None:
            nonlocal finished
            finished += 1
            elapsed = max(asyncio.get_running_loop().time() - start, 1e-6)
            problems = {**{k: v for k, v in stats.statuses.items() if k != "ok"}, **{f"retry:{k}": v for k, v in stats.retries.items()}}
            info = " ".join(f"{k} {v}" for k, v in problems.items()) + f"  ${stats.cost_usd:.4f}  cache {stats.cache_hits}"
            progress.update(task, advance=1, rate=f"{finished / elapsed:.1f}/s", info=info.strip())

        try:
            return await run_requests(adapter, requests, golds, writer, parser=parser, settings=settings, cache=cache,
                                      cost=cost, secrets=getattr(adapter, "secrets", ()), on_record=on_record)
        finally:
            await adapter.aclose()
