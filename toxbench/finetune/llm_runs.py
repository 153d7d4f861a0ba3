"""A chat model asked one prompt per post, through the engine, as a recorded run: what ARCL's
rationale pairs and CuSA's span refinement share. The run has the cache, retries, rate limits,
cost, progress and resume of any run; its records keep the model's answers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from toxbench._util import response_cache_path
from toxbench.adapters.registry import create
from toxbench.errors import ToxbenchError
from toxbench.records import RunSpec, RunWriter, run_label
from toxbench.run.engine import ExecutionSettings
from toxbench.run.loop import run_coroutine
from toxbench.run.parsing import Parsed, answer_text
from toxbench.types import Request, Sample


def answered(stance: int | None):
    """The parser of a free-text answer: label `stance` (or None) when the model wrote something,
    unparseable when it wrote nothing."""

    def parse(text: str | None) -> Parsed:
        return Parsed(stance, "ok") if text and text.strip() else Parsed(None, "unparseable")

    return parse


def chat_run(
    model: str,
    model_args: dict,
    data,
    dataset,
    samples: list[Sample],
    name: str,
    template: str,
    prompt: Callable[[Sample], str],
    stance: int | None,
    runs_dir: Path,
    settings: ExecutionSettings,
    show_progress: bool,
) -> tuple[dict[str, str], Path]:
    """(sample id -> the model's text, for the samples it answered; the run directory)."""
    from toxbench.run.cache import ResponseCache
    from toxbench.run.pricing import cost_usd, price_table
    from toxbench.run.runner import drive, settle

    adapter = create(model, model_args, data)
    if adapter.kind != "chat" or adapter.renders_own_prompt:
        raise ToxbenchError(
            f"model {model!r}: this step needs a chat model that takes a prompt (openai:, mistral:, anthropic:, hf:, ...)"
        )
    table = price_table(None)
    model_id = getattr(adapter, "model", None) or adapter.name
    spec = RunSpec(
        adapter=adapter.name,
        model=model_id,
        adapter_params=adapter.identity(),
        dataset=dataset.name,
        dataset_sha256=dataset.sha256,
        prompt=name,
        lang="en",
        parser="free-text",
        prompt_sha256=hashlib.sha256(template.encode("utf-8")).hexdigest(),
        subset=f"first-{len(samples)}" if len(samples) < len(dataset) else None,
        label=f"{name} " + run_label(adapter.name, model_id, model_args),
    )
    cache = ResponseCache(response_cache_path())
    try:
        writer = RunWriter(runs_dir, spec, n_expected=len(samples))
    except BaseException:
        cache.close()
        raise
    try:
        requests = [
            Request(s.id, s.text, s.lang, ({"role": "user", "content": prompt(s)},))
            for s in samples
            if s.id not in writer.recorded
        ]
        run_coroutine(
            drive(
                adapter,
                requests,
                {s.id: s.label for s in samples},
                writer,
                answered(stance),
                settings,
                cache,
                lambda i, o: cost_usd(getattr(adapter, "model", ""), i, o, table),
                len(samples),
                show_progress,
                name,
            )
        )
    except BaseException:
        writer.close()
        raise
    finally:
        cache.close()
    texts = {r.sample_id: answer_text(r.raw) for r in writer.records() if r.status == "ok"}
    return texts, settle(writer, len(samples))
