"""CuSA (ToxiTrace): weak toxic spans without span annotation. A warmed-up encoder explains each
toxic post (saliency, then the span rule), and a chat model refines the candidates' boundaries:
it is shown the post and the candidate spans and asked for the exact toxic substrings.

Both steps go through the engine as recorded runs (the encoder's run and its explanations; the
chat model's run with cache, retries and cost). The model's substrings become spans only where the
post holds them; anything else is dropped and counted (a post whose answer yields no span keeps
its saliency candidates, marked so). With `--no-llm` the saliency spans are the weak spans. The
output is a dataset file (`id, text, label, spans, source`) that `[spans] dataset = "..."` trains on.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from toxbench._util import write_atomic
from toxbench.data.datasets import load_dataset
from toxbench.data.spans import SpanDrops, substring_spans
from toxbench.explain.extraction import Extraction
from toxbench.run.engine import ExecutionSettings

REFINE = (
    "Here is a message and candidate toxic spans found by a classifier. Return the exact toxic substrings of the message, "
    "copied character for character, one per line, correcting the candidates' boundaries (drop a candidate that is not toxic, "
    "add a toxic part the candidates missed). Answer NONE when nothing in the message is toxic.\n\n"
    "Message:\n{text}\n\nCandidates:\n{candidates}"
)


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str  # a chat adapter, e.g. openai:gpt-4o-mini
    model_args: dict = Field(default_factory=dict)


class CusaJob(BaseModel):
    """`toxbench finetune cusa --config FILE`."""

    model_config = ConfigDict(extra="forbid")

    encoder: str  # a warmed-up encoder: encoder:PATH or finetuned:NAME
    dataset: str  # its toxic posts get weak spans (gold spans, if any, are not read)
    output: Path
    runs_dir: Path = Path("runs")
    method: str = "gradxinput"
    extraction: Extraction = Field(default_factory=Extraction)
    max_posts: int | None = Field(None, ge=1)
    llm: LLMSettings | None = None  # absent (or --no-llm): the saliency spans are the weak spans


def candidates_text(text: str, spans) -> str:
    return "\n".join(f"- {text[s:e]}" for s, e in spans) or "(none)"


def weak_spans(
    job: CusaJob,
    data,
    use_llm: bool = True,
    settings: ExecutionSettings = ExecutionSettings(),
    show_progress: bool = True,
) -> dict:
    from toxbench.adapters.registry import create
    from toxbench.explanations import read_explanations
    from toxbench.finetune.llm_runs import chat_run
    from toxbench.run.explain import ExplainSettings, encoder_of, explain_run
    from toxbench.run.runner import RunOptions, execute

    adapter = create(job.encoder, {}, data)
    encoder_of(adapter)
    dataset = load_dataset(job.dataset, data)
    run = execute(
        RunOptions(model=job.encoder, dataset=job.dataset, limit=job.max_posts, runs_dir=job.runs_dir),
        data,
        settings,
        show_progress,
        adapter=adapter,
    )
    explainer, _ = explain_run(
        run.run_dir,
        ExplainSettings(method=job.method, extraction=job.extraction, spans_for="all", faithfulness=False),
        data,
        settings,
        show_progress,
        adapter,
    )
    _, _, lines = read_explanations(run.run_dir, explainer)
    toxic = [s for s in dataset.samples if s.label == 1 and lines.get(s.id, {}).get("status") == "ok"]
    candidates = {s.id: tuple(tuple(x) for x in lines[s.id]["spans"]) for s in toxic}
    answers, llm_run = {}, None
    if use_llm and job.llm is not None and toxic:
        answers, llm_run = chat_run(
            job.llm.model,
            job.llm.model_args,
            data,
            dataset,
            toxic,
            "cusa-refine",
            REFINE,
            lambda s: REFINE.format(text=s.text, candidates=candidates_text(s.text, candidates[s.id])),
            None,
            job.runs_dir,
            settings,
            show_progress,
        )
    drops = SpanDrops()
    rows, sources = [], {"llm": 0, "llm-none": 0, "saliency": 0}
    for sample in toxic:
        answer = answers.get(sample.id)
        if answer is not None and answer.strip().upper() == "NONE":
            spans, source = (), "llm-none"
        elif answer is not None:
            pieces = [line.strip().lstrip("-•* ").strip() for line in answer.splitlines() if line.strip()]
            spans = substring_spans(sample.text, pieces, f"{sample.id}", drops)
            spans, source = (spans, "llm") if spans else (candidates[sample.id], "saliency")
        else:
            spans, source = candidates[sample.id], "saliency"
        sources[source] += 1
        rows.append(
            {"id": sample.id, "text": sample.text, "label": 1, "spans": [list(s) for s in spans], "source": source}
        )
    job.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(job.output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {
        "posts": len(toxic),
        "sources": sources,
        "dropped_substrings": drops.not_found,
        "encoder_run": str(run.run_dir),
        "llm_run": str(llm_run) if llm_run else None,
    }
