"""ARCL rationale pairs (ToxiTrace): for every post, a chat model argues once that it is toxic and
once that it is not; the `toxitrace` objective then pulls the post's representation towards the
rationale for its gold label and away from the other.

Each stance is one run through the engine (cache, retries, rate limits, cost, progress and resume
as for any run; its records keep the rationale as the raw answer, labelled with the stance it was
asked to argue), so an interrupted job resumes and a repeated one costs nothing. The pairs file
joins the two runs by sample id; a post whose rationale is missing on either side (an error, a
refusal, an empty answer) is left out and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from toxbench._util import write_atomic
from toxbench.data.datasets import load_dataset
from toxbench.run.engine import ExecutionSettings

STANCES = {
    1: (
        "toxic",
        "Argue, in two or three sentences, that the following message is toxic: say which words or ideas make it "
        "insulting, hateful, threatening or harassing.\n\nMessage:\n{text}",
    ),
    0: (
        "non-toxic",
        "Argue, in two or three sentences, that the following message is not toxic: say why its words and ideas "
        "are acceptable in a public discussion.\n\nMessage:\n{text}",
    ),
}


class ArclPairsJob(BaseModel):
    """`toxbench finetune arcl-pairs --config FILE`."""

    model_config = ConfigDict(extra="forbid")

    model: str  # any chat adapter, e.g. openai:gpt-4o-mini
    model_args: dict = Field(default_factory=dict)
    dataset: str  # the posts to write pairs for (the span training set, e.g. toxicspans-en:train)
    output: Path  # the pairs file (JSONL)
    runs_dir: Path = Path("runs")
    max_posts: int | None = Field(None, ge=1)  # the first N posts


def write_pairs(
    job: ArclPairsJob, data, settings: ExecutionSettings = ExecutionSettings(), show_progress: bool = True
) -> dict:
    """Both stances' runs, then the pairs file; returns counts."""
    from toxbench.finetune.llm_runs import chat_run

    dataset = load_dataset(job.dataset, data)
    samples = dataset.samples[: job.max_posts] if job.max_posts else dataset.samples
    rationales: dict[int, dict[str, str]] = {}
    run_dirs = {}
    for stance, (name, template) in STANCES.items():
        rationales[stance], run_dirs[name] = chat_run(
            job.model,
            job.model_args,
            data,
            dataset,
            samples,
            f"arcl-{name}",
            template,
            lambda s, t=template: t.format(text=s.text),
            stance,
            job.runs_dir,
            settings,
            show_progress,
        )
    pairs = [
        {
            "sample_id": s.id,
            "text": s.text,
            "label": s.label,
            "rationale_toxic": rationales[1][s.id],
            "rationale_non_toxic": rationales[0][s.id],
        }
        for s in samples
        if s.id in rationales[1] and s.id in rationales[0]
    ]
    job.output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(job.output, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs))
    return {
        "posts": len(samples),
        "pairs": len(pairs),
        "missing": len(samples) - len(pairs),
        "runs": {k: str(v) for k, v in run_dirs.items()},
    }
