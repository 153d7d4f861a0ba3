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
- `toxitrace`: gcloss plus ARCL, λ_sem × an InfoNCE term over each post's rationale pair
  (`toxbench finetune arcl-pairs`): the cosine similarities of the post's [CLS] representation to
  the [CLS] representations (same encoder, same step) of the rationale for its gold label and of
  the other rationale, divided by `temperature`, with the gold one as the positive. Rows without a
  pair (synthetic negatives) have no ARCL term.
CE alone runs for the first `warmup_epochs` epochs, as the paper warms up with plain CE.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ROLE_PAD, ROLE_OTHER, ROLE_SPAN = 0, 1, 2


class Objective(BaseModel):
    """The [objective] table of an encoder job."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ce", "rrr", "gcloss", "toxitrace"] = "ce"
    warmup_epochs: float = Field(0.0, ge=0)
    lambda_grad: float = Field(1.0, ge=0)  # gcloss
    margin: float = Field(0.3, ge=0)
    percentile_high: float = Field(0.8, gt=0, lt=1)
    percentile_low: float = Field(0.5, gt=0, lt=1)
    alpha: float = Field(0.5, ge=0)
    lambda_rrr: float = Field(1000.0, ge=0)  # rrr: squared input gradients are small (about 1e-6 a post on a tiny BERT)
    lambda_sem: float = Field(0.1, ge=0)  # toxitrace: weight of the ARCL InfoNCE term
    temperature: float = Field(0.07, gt=0)

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
    per_row = ((grads**2).sum(dim=-1) * outside).sum(dim=1)
    return per_row[rows].mean()


def arcl_term(cls_rows, rationales: list, labels, encode, temperature: float):
    """InfoNCE over each row's (toxic, non-toxic) rationale pair; rows without a pair are skipped.
    `encode(texts)` gives the rationales' [CLS] vectors from the same encoder."""
    import torch
    import torch.nn.functional as F

    rows = [i for i, pair in enumerate(rationales) if pair]
    if not rows:
        return None
    gold = [rationales[i][0] if int(labels[i]) == 1 else rationales[i][1] for i in rows]
    other = [rationales[i][1] if int(labels[i]) == 1 else rationales[i][0] for i in rows]
    h = F.normalize(cls_rows[rows].float(), dim=-1)
    r = F.normalize(encode(gold + other).float(), dim=-1)
    positive, negative = (h * r[: len(rows)]).sum(-1), (h * r[len(rows) :]).sum(-1)
    logits = torch.stack([positive, negative], dim=-1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(rows), dtype=torch.long, device=logits.device))


def span_loss(model, inputs: dict, objective: Objective, warming_up: bool, encode=None):
    """(loss, logits) for one batch: CE, plus the objective's terms when they apply (after the
    warm-up, in training, on rows that have spans or rationale pairs)."""
    import torch.nn.functional as F

    from toxbench.explain.saliency import input_gradients

    labels, roles = inputs.pop("labels"), inputs.pop("token_roles")
    rationales = inputs.pop("rationales", None) or []
    active = objective.needs_gradients and not warming_up and model.training
    rows = eligible(roles, labels)
    use_grad = active and bool(rows.any())
    use_sem = active and objective.kind == "toxitrace" and any(rationales) and encode is not None
    hidden = {"output_hidden_states": True} if use_sem else {}
    if use_grad:
        ids, mask = inputs.pop("input_ids"), inputs.pop("attention_mask")
        grads, embeds, outputs = input_gradients(model, ids, mask, (1,), create_graph=True, **inputs, **hidden)
    else:
        outputs = model(**inputs, **hidden)
    logits = outputs.logits
    loss = F.cross_entropy(logits.float(), labels)
    if use_grad and objective.kind == "rrr":
        loss = loss + objective.lambda_rrr * rrr_term(grads, roles, rows)
    elif use_grad:
        saliency = (grads * embeds).sum(dim=-1) * mask.to(grads.dtype)
        loss = loss + objective.lambda_grad * gcloss_term(saliency, roles, rows, objective)
    if use_sem:
        term = arcl_term(outputs.hidden_states[-1][:, 0], rationales, labels, encode, objective.temperature)
        if term is not None:
            loss = loss + objective.lambda_sem * term
    return loss, logits
