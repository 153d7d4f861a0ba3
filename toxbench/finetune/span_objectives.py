"""Training objectives that shape an encoder's saliency with toxic spans (issue: ToxiTrace).

Every auxiliary term reads the gradient of log p(toxic) with respect to the word embeddings,
taken by `toxbench.explain.saliency.input_gradients` (the function explanations use) with a
differentiable graph, and applies only to toxic samples that have at least one span token and
one other content token. Token roles: 0 special or padding, 1 other content, 2 in a span.

- `rrr` (Ross et al. 2017, "right for the right reasons"): λ_rrr × the squared input gradient
  summed over tokens outside the spans, averaged over samples.
- `gcloss` (ToxiTrace's gradient-constrained loss, our reading of its description): saliency
  s = gradient × input, scaled by its largest magnitude within the sample; a margin term
  relu(margin − (mean s over span tokens − mean s over other tokens)) that concentrates the
  evidence for "toxic" on the spans, and percentile bounds: span tokens should reach the
  `percentile_high` quantile of the sample's saliency, and other tokens' magnitude |s| stay under
  the `percentile_low` quantile of the magnitudes (hinged, quantiles held fixed), which suppresses
  activations elsewhere in either direction (the margin alone is met by pushing other tokens
  strongly negative). Total: CE + λ_grad × (margin term + α × percentile terms).
CE alone runs for the first `warmup_epochs` epochs, as the paper warms up with plain CE.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ROLE_PAD, ROLE_OTHER, ROLE_SPAN = 0, 1, 2


class Objective(BaseModel):
    """The [objective] table of an encoder job."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ce", "rrr", "gcloss"] = "ce"
    warmup_epochs: float = Field(0.0, ge=0)
    lambda_grad: float = Field(1.0, ge=0)  # gcloss
    margin: float = Field(0.3, ge=0)
    percentile_high: float = Field(0.8, gt=0, lt=1)
    percentile_low: float = Field(0.5, gt=0, lt=1)
    alpha: float = Field(0.5, ge=0)
    lambda_rrr: float = Field(1000.0, ge=0)  # rrr: squared input gradients are small (about 1e-6 a post on a tiny BERT)

    @property
    def needs_gradients(self) -> bool:
        return self.kind != "ce"


def eligible(roles, labels):
    """Rows the span terms apply to: toxic, with a span token and another content token."""
    return (labels == 1) & (roles == ROLE_SPAN).any(dim=1) & (roles == ROLE_OTHER).any(dim=1)


def gcloss_term(saliency, roles, rows, objective: Objective):
    """The margin and percentile terms, averaged over the eligible rows."""
    import torch

    terms = []
    for i in torch.nonzero(rows).flatten().tolist():
        content = roles[i] > ROLE_PAD
        s = saliency[i][content]
        s = s / (s.abs().max().detach() + 1e-12)
        span = roles[i][content] == ROLE_SPAN
        margin = torch.relu(objective.margin - (s[span].mean() - s[~span].mean()))
        high = torch.quantile(s.detach(), objective.percentile_high)
        low = torch.quantile(s.detach().abs(), objective.percentile_low)
        bounds = torch.relu(high - s[span]).mean() + torch.relu(s[~span].abs() - low).mean()
        terms.append(margin + objective.alpha * bounds)
    return torch.stack(terms).mean()


def rrr_term(grads, roles, rows):
    """Squared input gradients outside the spans, summed per sample, averaged over eligible rows."""
    outside = (roles == ROLE_OTHER).to(grads.dtype)
    per_row = ((grads ** 2).sum(dim=-1) * outside).sum(dim=1)
    return per_row[rows].mean()


def span_loss(model, inputs: dict, objective: Objective, warming_up: bool):
    """(loss, logits) for one batch: CE, plus the objective's span term when it applies."""
    import torch.nn.functional as F

    from toxbench.explain.saliency import input_gradients

    labels, roles = inputs.pop("labels"), inputs.pop("token_roles")
    rows = eligible(roles, labels)
    if not objective.needs_gradients or warming_up or not model.training or not bool(rows.any()):
        logits = model(**inputs).logits
        return F.cross_entropy(logits.float(), labels), logits
    ids, mask = inputs.pop("input_ids"), inputs.pop("attention_mask")
    grads, embeds, logits = input_gradients(model, ids, mask, (1,), create_graph=True, **inputs)
    ce = F.cross_entropy(logits.float(), labels)
    if objective.kind == "rrr":
        return ce + objective.lambda_rrr * rrr_term(grads, roles, rows), logits
    saliency = (grads * embeds).sum(dim=-1) * mask.to(grads.dtype)
    return ce + objective.lambda_grad * gcloss_term(saliency, roles, rows, objective), logits
