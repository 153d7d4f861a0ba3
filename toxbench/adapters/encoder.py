"""Sequence classifiers (CamemBERT-style encoders) with transformers.

The label policy declares which output classes count as toxic: `merge:1,2` (the release merged
CamemBERT's "Sensible" and "Toxic"), `index:1`, or by default the classes whose names say toxic
(not "non-toxic"), else class 1. Softmax heads: score = the summed probability of the toxic
classes. Sigmoid (multi-label) heads: score = the highest toxic class probability. label = score at
or above `threshold`. The class probabilities are the cached answer; the label policy and threshold
are applied to them afterwards (`decide`), so changing either re-uses the cache. The engine batches
requests by their token count, so padding stays small.
`encoder:minilm-l6` is the MiniLM encoder shipped by an installed package, with a fresh two-class
head (seeded by `head_seed`) for fine-tuning.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.registry import register
from toxbench.errors import ToxbenchError
from toxbench.types import Answer, Request

TOXIC_NAME = re.compile(r"toxi|hate|offens|insult|abus|sensib", re.IGNORECASE)
NOT_TOXIC_NAME = re.compile(r"non|not|neutral|clean|ok\b", re.IGNORECASE)


def toxic_classes(policy: str | None, id2label: dict[int, str], num_labels: int) -> tuple[int, ...]:
    if policy:
        kind, _, values = policy.partition(":")
        try:
            chosen = tuple(int(v) for v in values.split(",") if v.strip())
        except ValueError:
            chosen = ()
        if kind not in ("merge", "index") or not chosen or any(c < 0 or c >= num_labels for c in chosen):
            raise ToxbenchError(
                f"label_policy {policy!r}: write merge:1,2 or index:1 with class numbers below {num_labels}"
            )
        return chosen
    named = tuple(
        i for i, name in sorted(id2label.items()) if TOXIC_NAME.search(name) and not NOT_TOXIC_NAME.search(name)
    )
    return named or (1,)


@register("encoder")
class EncoderClassifier(Adapter):
    preparing = "loading the model"
    kind = "classifier"
    capabilities = Capabilities(concurrency=1, batching=True, batch_size=32, scores=True)
    description = "local sequence classifier (CamemBERT-style), declared label policy"
    varies = "batch_size"

    def __init__(
        self,
        model: str,
        label_policy: str | None = None,
        threshold: float = 0.5,
        batch_size: int = 32,
        max_length: int = 512,
        device: str = "auto",
        head_seed: int = 0,
        dtype: str = "auto",
    ) -> None:
        """`--model-arg` keys of `encoder:`.

        Args:
            label_policy: Which classes are toxic: `merge:1,2` sums their probabilities, `index:1` takes one
                class; default: classes named toxic (not non-toxic), else class 1.
            threshold: Score at or above which the label is toxic.
            batch_size: Samples per forward pass.
            max_length: Tokens kept per text (longer texts are cut).
            device: `auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`.
            head_seed: Seed of a fresh classification head, for a checkpoint that has none.
            dtype: Weights' precision: `auto` (bfloat16 on CUDA, float32 on CPU), `float32`, `bfloat16`,
                `float16`.
        """
        from toxbench.adapters._local import import_torch, load_tokenizer_and_model

        torch = import_torch()

        self.model, self.threshold, self.max_length, self.head_seed, self.dtype = (
            model,
            float(threshold),
            int(max_length),
            int(head_seed),
            dtype,
        )
        self.capabilities = Capabilities(concurrency=1, batching=True, batch_size=int(batch_size), scores=True)
        torch.manual_seed(self.head_seed)  # a checkpoint without a classification head gets a reproducible fresh one
        extra = {"num_labels": 2} if model == "minilm-l6" else {}
        self.tokenizer, self.net, self.device = load_tokenizer_and_model(model, "sequence", device, dtype, **extra)
        if getattr(self.net, "toxbench_fresh_head", False):
            self.run_notes = (
                f"untrained classification head: {model} holds no trained head, so a fresh one (seed {self.head_seed}) "
                "gives its labels, near chance; fine-tune it (toxbench finetune encoder) before comparing it",
            )
        config = self.net.config
        self.id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        self.sigmoid = config.problem_type == "multi_label_classification"
        self.toxic = toxic_classes(label_policy, self.id2label, config.num_labels)
        self.label_policy = label_policy or f"index:{','.join(map(str, self.toxic))}"

    def identity(self) -> dict:
        return {**self.cache_identity(), "label_policy": self.label_policy, "threshold": self.threshold}

    def cache_identity(self) -> dict:
        from toxbench.adapters._local import precision

        weights = precision(self.net)  # absent for float32, as in every local adapter's identity
        return {
            "model": self.model,
            "max_length": self.max_length,
            "head_seed": self.head_seed if self.model == "minilm-l6" else None,
            **({"precision": weights} if weights else {}),
        }

    def batch_length(self, request: Request) -> int:
        return len(self.tokenizer(request.text, truncation=True, max_length=self.max_length)["input_ids"])

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        import torch

        batch = self.tokenizer(
            [r.text for r in requests], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            logits = self.net(**batch).logits.float()
        probs = torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, dim=-1)
        names = [self.id2label.get(i, str(i)) for i in range(probs.shape[-1])]
        if len(set(names)) < len(names):  # duplicate class names would merge in JSON: key by index
            names = [str(i) for i in range(len(names))]
        return [Answer(raw=json.dumps(dict(zip(names, row)))) for row in probs.tolist()]

    def decide(self, answer: Answer) -> Answer:
        probs = list(json.loads(answer.raw).values())  # class order
        toxic = [probs[i] for i in self.toxic]
        score = max(toxic) if self.sigmoid else sum(toxic)
        return replace(answer, pred=int(score >= self.threshold), score=float(score))
