"""Explanations of an encoder run: per sample the tokens' character offsets, their saliency
towards "toxic", the spans read from it, and faithfulness probabilities, written to
`explanations.jsonl` beside the run's records (toxbench.explanations).

The explanation of a sample goes through the engine's batched path like any answer (batches of
similar length in a worker thread, a progress bar, Ctrl-C after the batch, a failed batch recorded
sample by sample), so it resumes and never loses finished work. The label it explains is the run's
recorded one: spans are read for samples the run called toxic (or for all with `spans_for="all"`).
`tune_on` chooses the span rule's constants on another (validation) dataset first, and the chosen
constants, with where they came from, are part of the explainer's settings.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from toxbench.adapters.base import Adapter, Capabilities
from toxbench.data.datadir import DataDir
from toxbench.data.datasets import load_dataset
from toxbench.errors import ToxbenchError
from toxbench.explain.extraction import Extraction, extract, tune
from toxbench.explain.faithfulness import AOPC_FRACTIONS, measures, variants
from toxbench.explanations import ExplanationWriter, read_explanations
from toxbench.records import Run, RunSpec
from toxbench.run.engine import ExecutionSettings
from toxbench.run.loop import run_coroutine
from toxbench.types import Answer, Record, Request

IG_CHUNK = 64  # rows (post x integration step) per forward pass of integrated gradients


class ExplainSettings(BaseModel):
    """What determines an explanation (its explainer id is a hash of these)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["gradxinput", "ig"] = "gradxinput"
    ig_steps: int = Field(50, ge=2)
    ig_baseline: Literal["pad", "mask", "unk"] = "pad"  # the token that replaces each word in IG's reference input
    extraction: Extraction = Field(default_factory=Extraction)
    spans_for: Literal["predicted", "all"] = "predicted"  # predicted: spans only where the run said toxic
    faithfulness: bool = True
    aopc_fractions: tuple[float, ...] = AOPC_FRACTIONS
    tuned_on: dict | None = None  # set by tuning: the validation dataset, its run and explainer, and the F1 reached


def encoder_of(adapter: Adapter):
    """The sequence classifier inside an `encoder` or encoder `finetuned` adapter, or a one-line error."""
    from toxbench.adapters.encoder import EncoderClassifier

    inner = getattr(adapter, "inner", adapter)
    if not isinstance(inner, EncoderClassifier):
        raise ToxbenchError(
            f"{adapter.name}: explanations need an encoder classifier's token saliency (--model encoder:PATH or a "
            "finetuned encoder); this model has none"
        )
    return inner


class Explainer(Adapter):
    """Explains requests with an encoder; what the engine records is the explanation as JSON."""

    name = "explain"
    kind = "classifier"

    def __init__(
        self, adapter: Adapter, settings: ExplainSettings, preds: dict[str, int], batch_size: int | None = None
    ) -> None:
        self.encoder = encoder_of(adapter)
        self.settings, self.preds = settings, preds
        size = batch_size or min(self.encoder.capabilities.batch_size, 8 if settings.method == "ig" else 32)
        self.capabilities = Capabilities(concurrency=1, batching=True, batch_size=size, scores=True)
        self.baseline_id = (
            self._baseline_id() if settings.method == "ig" else None
        )  # a missing token stops here, before any work

    def batch_length(self, request: Request) -> int:
        return self.encoder.batch_length(request)

    def _baseline_id(self) -> int:
        tok = self.encoder.tokenizer
        token_id = {"pad": tok.pad_token_id, "mask": tok.mask_token_id, "unk": tok.unk_token_id}[
            self.settings.ig_baseline
        ]
        if token_id is None:
            raise ToxbenchError(
                f"ig_baseline={self.settings.ig_baseline}: the tokenizer has no such token; choose pad, mask or unk"
            )
        return token_id

    def saliency(self, texts: list[str]) -> tuple[list[list[tuple[int, int]]], list[list[float]], list[float | None]]:
        """(content tokens' character ranges, their saliency, IG's convergence delta) per text."""
        from toxbench.explain.saliency import gradient_x_input, integrated_gradients

        enc = self.encoder
        batch = enc.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=enc.max_length,
            return_tensors="pt",
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        offsets = batch.pop("offset_mapping").tolist()
        special = batch.pop("special_tokens_mask").to(enc.device)
        batch = batch.to(enc.device)
        ids, mask = batch.pop("input_ids"), batch.pop("attention_mask")
        if self.settings.method == "ig":
            # the steps of a batch go through the model IG_CHUNK rows at a time: all of them at once
            # (8 posts x 50 steps x 512 tokens) took 7.6 GB on a CPU
            values, delta = integrated_gradients(
                enc.net,
                ids,
                mask,
                special,
                enc.toxic,
                enc.sigmoid,
                self.settings.ig_steps,
                self.baseline_id,
                internal_batch_size=IG_CHUNK,
                **dict(batch),
            )
            deltas = [float(d) for d in delta.float().cpu().tolist()]
        else:
            values, _ = gradient_x_input(enc.net, ids, mask, enc.toxic, enc.sigmoid, **dict(batch))
            deltas = [None] * len(texts)
        values = values.detach().float().cpu().tolist()
        keep = mask.cpu().tolist()
        tokens, saliency = [], []
        for row_offsets, row_values, row_mask in zip(offsets, values, keep):
            content = [j for j, ((s, e), m) in enumerate(zip(row_offsets, row_mask)) if m and e > s]
            tokens.append([tuple(row_offsets[j]) for j in content])
            saliency.append([row_values[j] for j in content])
        return tokens, saliency, deltas

    def toxic_probabilities(self, texts: list[str]) -> list[float]:
        """p(toxic) of each text, by the encoder's own label policy, in batches of similar length."""
        enc = self.encoder
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[float] = [0.0] * len(texts)
        size = enc.capabilities.batch_size
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            answers = enc.answer_batch([Request("", texts[i], "") for i in chunk])
            for i, answer in zip(chunk, answers):
                out[i] = enc.decide(answer).score
        return out

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        texts = [r.text for r in requests]
        tokens, saliency, deltas = self.saliency(texts)
        settings = self.settings
        lines, wanted = [], []
        for request, toks, sal, delta in zip(requests, tokens, saliency, deltas):
            pred = self.preds[request.sample_id]
            spans = (
                extract(request.text, toks, sal, settings.extraction)
                if pred == 1 or settings.spans_for == "all"
                else ()
            )
            line = {
                "pred": pred,
                "tokens": toks,
                "saliency": [round(v, 7) for v in sal],
                "spans": [list(s) for s in spans],
            }
            if delta is not None:
                line["ig_delta"] = delta
            lines.append(line)
            wanted.append(
                variants(request.text, spans, toks, sal, settings.aopc_fractions) if settings.faithfulness else {}
            )
        flat = [(i, name, text) for i, texts_of in enumerate(wanted) for name, text in texts_of.items()]
        probs = self.toxic_probabilities([text for _, _, text in flat]) if flat else []
        by_sample: list[dict[str, float]] = [{} for _ in requests]
        for (i, name, _), p in zip(flat, probs):
            by_sample[i][name] = p
        answers = []
        for line, p in zip(lines, by_sample):
            if p:
                line["faithfulness"] = {"probabilities": p, **measures(p)}
            answers.append(Answer(raw=json.dumps(line), pred=line["pred"]))
        return answers


class _LineWriter:
    """What the engine appends to: a record becomes an explanation line (its raw holds the
    explanation; an error record keeps its message)."""

    def __init__(self, writer: ExplanationWriter, gold_spans: dict[str, list | None]) -> None:
        self.writer, self.gold_spans = writer, gold_spans

    def append(self, record: Record) -> None:
        if record.status == "error":
            line = {"sample_id": record.sample_id, "status": "error", "error": record.raw}
        else:
            line = {
                "sample_id": record.sample_id,
                "status": "ok",
                **json.loads(record.raw),
                "gold_spans": self.gold_spans[record.sample_id],
            }
        self.writer.append(line)


def rebuild_adapter(run_dir: Path, spec: RunSpec, data: DataDir) -> tuple[str, dict, Adapter]:
    """(model option, model args, adapter) that recreate a recorded encoder run's model; refused
    when the rebuilt model's identity differs from the recorded one (other weights, threshold...)."""
    from toxbench.adapters.registry import create

    params = dict(spec.adapter_params)
    if spec.adapter == "encoder":
        model = f"encoder:{params['model']}"
        recorded = {
            "label_policy": params["label_policy"],
            "threshold": params["threshold"],
            "max_length": params["max_length"],
            **({"head_seed": params["head_seed"]} if params.get("head_seed") is not None else {}),
        }
        # the arguments a user would have given: those that differ from the defaults (the run label shows them)
        defaults = {"threshold": 0.5, "max_length": 512, "head_seed": 0}
        given = {k: v for k, v in recorded.items() if k in defaults and defaults[k] != v}
        tries = [given, recorded] if given != recorded else [recorded]
    elif spec.adapter == "finetuned" and params.get("kind") == "encoder":
        model, tries = f"finetuned:{params['name']}", [{}]
    else:
        raise ToxbenchError(
            f"{run_dir}: a {spec.adapter} run ({spec.model}); explanations need an encoder run "
            "(--model encoder:PATH or a finetuned encoder)"
        )
    for args in tries:
        adapter = create(model, args, data)
        if adapter.identity() == params:
            break
    else:
        changed = sorted(k for k in {*params, *adapter.identity()} if params.get(k) != adapter.identity().get(k))
        raise ToxbenchError(
            f"{run_dir}: its model cannot be rebuilt as recorded ({', '.join(changed)} differ: other weights or settings); "
            "explain a new run of the model instead (toxbench explain --model ...)"
        )
    return model, args, adapter


def explain_run(
    run_dir: Path,
    settings: ExplainSettings,
    data: DataDir,
    execution: ExecutionSettings = ExecutionSettings(),
    show_progress: bool = True,
    adapter: Adapter | None = None,
) -> tuple[str, dict]:
    """Explain every sample of a recorded run that has a label; returns (explainer id, counts)."""
    from toxbench.run.runner import drive

    run = Run.load(run_dir)
    if adapter is None:
        _, _, adapter = rebuild_adapter(run.dir, run.spec, data)
    dataset = load_dataset(run.spec.dataset, data)
    if dataset.sha256 != run.spec.dataset_sha256:
        raise ToxbenchError(
            f"{run_dir}: its dataset {run.spec.dataset} has changed since the run (other checksum); explain a new run"
        )
    preds = {r.sample_id: r.pred for r in run.records if r.status == "ok"}
    samples = [s for s in dataset.samples if s.id in preds]
    explainer = Explainer(adapter, settings, preds, execution.batch_size)
    writer = ExplanationWriter(run.dir, settings.model_dump(mode="json"))
    try:
        requests = [Request(s.id, s.text, s.lang) for s in samples if s.id not in writer.recorded]
        lines = _LineWriter(
            writer, {s.id: [list(x) for x in s.spans] if s.spans is not None else None for s in samples}
        )
        run_coroutine(
            drive(
                explainer,
                requests,
                {s.id: s.label for s in samples},
                lines,
                None,
                replace(execution, batch_size=None),
                None,
                lambda i, o: None,
                len(samples),
                show_progress,
                "explain",
            )
        )
    finally:
        writer.close()
    return writer.id, {**writer.counts, "samples": len(samples), "unlabelled": len(run.records) - len(preds)}


def tune_extraction(
    model: str,
    model_args: dict,
    tune_on: str,
    settings: ExplainSettings,
    data: DataDir,
    runs_dir: Path,
    execution: ExecutionSettings,
    show_progress: bool,
    adapter: Adapter,
) -> ExplainSettings:
    """Run and explain the model on the validation dataset `tune_on`, pick the span rule's
    constants with the best SemEval F1 there, and return the settings with them."""
    from toxbench.run.runner import RunOptions, execute

    validation = load_dataset(tune_on, data)
    if not validation.has_spans:
        raise ToxbenchError(
            f"--tune-on {tune_on}: it has no gold spans to tune on; give a split with spans, e.g. toxicspans-en:trial"
        )
    result = execute(
        RunOptions(model=model, dataset=tune_on, model_args=model_args, runs_dir=runs_dir),
        data,
        execution,
        show_progress,
        adapter=adapter,
    )
    plain = settings.model_copy(
        update={"faithfulness": False, "extraction": Extraction(rule=settings.extraction.rule), "tuned_on": None}
    )
    explainer, _ = explain_run(result.run_dir, plain, data, execution, show_progress, adapter)
    _, _, lines = read_explanations(result.run_dir, explainer)
    examples = []
    for sample in validation.samples:
        line = lines.get(sample.id)
        if line is None or line.get("status") != "ok":
            continue
        chosen = line["pred"] == 1 or settings.spans_for == "all"
        examples.append((sample.text, line["tokens"], line["saliency"] if chosen else None, sample.spans))
    if not examples:
        raise ToxbenchError(f"--tune-on {tune_on}: no sample was explained; see {result.run_dir}")
    best, f1 = tune(settings.extraction.rule, examples, settings.extraction)
    where = {
        "dataset": validation.name,
        "run": result.run_dir.name,
        "explainer": explainer,
        "semeval_f1": round(f1, 6),
        "posts": len(examples),
    }
    return settings.model_copy(update={"extraction": best, "tuned_on": where})
