"""The Dynamic Weighted Loss (the paper's Eq. 2): token classes, weight schedules, the loss.

Each target token gets a class: k when it lies inside the k-th `<think>`...`</think>` block of the
completion (tags included), 0 for the answer (everything outside blocks: the final question, the
conclusion, the end-of-sequence token). Classes come from character offsets, so they do not depend
on how a tokenizer splits the tags. Loss = sum over target tokens of alpha[class] x token loss,
divided by the number of target tokens; with every alpha 1 it is exactly the standard SFT loss.
A schedule is a list of (epoch, alphas); at fractional epoch e the last entry with epoch <= e holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, model_validator

from toxbench.errors import ToxbenchError
from toxbench.finetune.cot_data import THINK_CLOSE, THINK_OPEN

_BLOCK = re.compile(re.escape(THINK_OPEN) + r".*?(?:" + re.escape(THINK_CLOSE) + r"|$)", re.DOTALL)


def block_spans(completion: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the `<think>` blocks, in order (an unclosed block runs to the end)."""
    return [m.span() for m in _BLOCK.finditer(completion)]


def token_classes(offsets: Sequence[tuple[int, int]], completion: str) -> list[int]:
    """Class of each completion token from its character offsets: the 1-based index of the block
    holding its first non-space character (or its first character when it is all space), else 0.
    Tokens with empty offsets (specials) are 0."""
    spans = block_spans(completion)
    classes = []
    for start, end in offsets:
        first = start
        while first < end and completion[first].isspace():
            first += 1
        start = first if first < end else start
        cls = 0
        if start < end:
            for k, (s, e) in enumerate(spans, 1):
                if s <= start < e:
                    cls = k
                    break
        classes.append(cls)
    return classes


class DWLSchedule(BaseModel):
    """(epoch, alphas) entries; alphas[0] weighs the answer, alphas[k] the k-th reasoning block."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    points: list[tuple[float, list[float]]]

    @model_validator(mode="after")
    def _check(self) -> DWLSchedule:
        if not self.points or self.points[0][0] != 0:
            raise ValueError("a DWL schedule starts with an entry at epoch 0")
        epochs = [e for e, _ in self.points]
        if epochs != sorted(epochs) or len(set(epochs)) != len(epochs):
            raise ValueError(f"DWL schedule epochs must increase: {epochs}")
        widths = {len(a) for _, a in self.points}
        if len(widths) != 1 or any(x < 0 for _, a in self.points for x in a):
            raise ValueError("every DWL schedule entry needs the same number of non-negative alphas")
        return self

    @property
    def n_classes(self) -> int:
        return len(self.points[0][1])

    def alphas_at(self, epoch: float) -> list[float]:
        current = self.points[0][1]
        for start, alphas in self.points:
            if start <= epoch:
                current = alphas
            else:
                break
        return list(current)

    @classmethod
    def plain(cls, n_blocks: int) -> DWLSchedule:
        """Standard SFT: every token weighs 1."""
        return cls(points=[(0.0, [1.0] * (n_blocks + 1))])

    @classmethod
    def two_class(cls, n_blocks: int, factor: float, epochs: int, start: float = 1.0) -> DWLSchedule:
        """The paper's form: at each whole epoch the reasoning weight is multiplied by `factor` and the
        answer weight divided by it (factor 0.5: 1, 0.5, 0.25 for reasoning; 1, 2, 4 for the answer)."""
        if factor <= 0:
            raise ToxbenchError(f"DWL factor must be positive, not {factor}")
        return cls(
            points=[
                (float(e), [start / factor**e] + [start * factor**e] * n_blocks) for e in range(max(1, int(epochs)))
            ]
        )


def dwl_loss(per_token_nll, token_class, alphas: Sequence[float], n_target_tokens):
    """sum(alpha[class] x nll) / n_target_tokens; `per_token_nll` is 0 where the label is ignored."""
    import torch

    weights = torch.as_tensor(alphas, dtype=per_token_nll.dtype, device=per_token_nll.device)[token_class]
    return (per_token_nll * weights).sum() / torch.as_tensor(n_target_tokens, device=per_token_nll.device).clamp(min=1)
