"""Token saliency of a sequence classifier towards "toxic": gradient × input, and integrated
gradients (captum). `gradient_x_input` is the one function both explanations and the GCLoss / RRR
training objectives call, so what training shapes is what `toxbench explain` shows.

The explained quantity is log p(toxic): the log of the summed probability of the toxic classes
for a softmax head, the log-sigmoid of the highest toxic class for a multi-label head. Saliency is
taken at the word-embedding layer's output (positions and token types are not attributed) and
summed over the hidden dimension; padding gets 0.
"""

from __future__ import annotations

from collections.abc import Sequence


def log_toxic(logits, toxic: Sequence[int], sigmoid: bool = False):
    """log p(toxic) per row of `logits` (batch × classes)."""
    import torch
    import torch.nn.functional as F

    index = list(toxic)
    if sigmoid:
        return F.logsigmoid(logits[:, index]).max(dim=-1).values
    return torch.logsumexp(logits.float().log_softmax(dim=-1)[:, index], dim=-1)


def input_gradients(
    model,
    input_ids,
    attention_mask,
    toxic: Sequence[int],
    sigmoid: bool = False,
    create_graph: bool = False,
    **model_inputs,
):
    """(∂ log p(toxic) / ∂ word embeddings, the embeddings, the model's output), one forward. With
    `create_graph` the gradients are differentiable, so a training loss can push on them (the
    model then needs eager attention for the second backward)."""
    import torch

    embeds = model.get_input_embeddings()(input_ids)
    if not create_graph:
        embeds = embeds.detach().requires_grad_(True)
    with torch.enable_grad():
        outputs = model(inputs_embeds=embeds, attention_mask=attention_mask, **model_inputs)
        target = log_toxic(outputs.logits, toxic, sigmoid)
        (grads,) = torch.autograd.grad(target.sum(), embeds, create_graph=create_graph)
    return grads, embeds, outputs


def gradient_x_input(
    model,
    input_ids,
    attention_mask,
    toxic: Sequence[int],
    sigmoid: bool = False,
    create_graph: bool = False,
    **model_inputs,
):
    """(saliency batch × tokens, logits): gradient × input summed over the hidden dimension."""
    grads, embeds, outputs = input_gradients(
        model, input_ids, attention_mask, toxic, sigmoid, create_graph, **model_inputs
    )
    saliency = (grads * embeds).sum(dim=-1) * attention_mask.to(grads.dtype)
    return saliency, outputs.logits


def baseline_ids(input_ids, special_tokens_mask, baseline_id: int):
    """IG's reference input: every ordinary token replaced by `baseline_id` (the tokenizer's pad
    token by default), the special tokens and padding kept, so only the words are attributed."""
    import torch

    return torch.where(special_tokens_mask.bool(), input_ids, torch.full_like(input_ids, baseline_id))


def integrated_gradients(
    model,
    input_ids,
    attention_mask,
    special_tokens_mask,
    toxic: Sequence[int],
    sigmoid: bool = False,
    steps: int = 50,
    baseline_id: int = 0,
    internal_batch_size: int | None = None,
    **model_inputs,
):
    """(saliency batch × tokens, convergence delta per row) from captum's LayerIntegratedGradients
    on the word embeddings. The delta is f(x) − f(baseline) − Σ attributions: near 0 when the
    path integral converged (completeness)."""
    try:
        from captum.attr import LayerIntegratedGradients
    except ImportError:
        from toxbench.errors import ToxbenchError

        raise ToxbenchError("--method ig needs captum: pip install 'toxbench[explain]'") from None

    extra = tuple(model_inputs.values())
    names = tuple(model_inputs)

    def forward(ids, mask, *rest):
        return log_toxic(model(input_ids=ids, attention_mask=mask, **dict(zip(names, rest))).logits, toxic, sigmoid)

    explainer = LayerIntegratedGradients(forward, model.get_input_embeddings())
    attributions, delta = explainer.attribute(
        input_ids,
        baselines=baseline_ids(input_ids, special_tokens_mask, baseline_id),
        additional_forward_args=(attention_mask, *extra),
        n_steps=steps,
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    saliency = attributions.sum(dim=-1) * attention_mask.to(attributions.dtype)
    return saliency.detach(), delta.detach()
