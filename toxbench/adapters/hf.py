"""Local causal language models with transformers: `generate` and `score` modes.

- generate: greedy decoding of a few tokens, batched with left padding; the text is parsed like
  any API answer. `cache=static` gives generate a static key/value cache, which transformers
  compiles with torch.compile on CUDA (the decode step is launch-bound otherwise); it is recorded
  in the run's identity, since compiled kernels may round differently.
- score: P(toxic) from the likelihoods of the prompt's two answer words (a word may span several
  tokens), normalised between the two, in one forward pass per batch. The instruction prefix that
  every prompt shares is run once; its key/value cache is copied and expanded for each batch, so
  each sample only pays for its own tokens (`share_prefix=false` scores each full prompt, which
  tests use to check both paths agree).

The engine runs `answer_batch` in a worker thread, so progress, records, resume and the cache work
as for API runs.
"""

from __future__ import annotations

import json

from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.registry import register
from toxbench.types import Answer, Request

DEFAULT_LABELS = {"fr": ("non-toxique", "toxique"), "en": ("non-toxic", "toxic")}
MAX_TOKENISED = 5_000  # prompts held between their length and their batch (~100 MB at 600 tokens); beyond, the oldest are tokenised again
CACHES = ("dynamic", "static")  # generate's key/value cache: static lets transformers compile the decode step (on CUDA)


def _layer_tensors(cache) -> tuple[list, list]:
    """Keys and values per layer of a DynamicCache (its layout changed across transformers versions)."""
    if hasattr(cache, "layers"):
        return [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers]
    return list(cache.key_cache), list(cache.value_cache)


def _common_prefix(sequences: list[list[int]]) -> int:
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for i in range(n):
        if any(s[i] != first[i] for s in sequences):
            return i
    return n


@register("hf")
class HFCausalLM(Adapter):
    preparing = "loading the model"
    kind = "chat"
    capabilities = Capabilities(concurrency=1, batching=True, batch_size=8, scores=False)
    description = "local Hugging Face causal LM (transformers; GGUF too): generate or score label likelihoods"
    varies = "mode=score gives scores; batch_size"

    def __init__(
        self,
        model: str,
        mode: str = "generate",
        max_new_tokens: int = 8,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        thinking: bool | None = None,
        share_prefix: bool = True,
        load_in_4bit: bool | None = None,
        repetition_penalty: float | None = None,
        cache: str = "dynamic",
        stop_strings: str | tuple[str, ...] = (),
    ) -> None:
        """`--model-arg` keys of `hf:`.

        Args:
            mode: `generate`: read the generated answer; `score`: P(toxic) from the answer words' likelihoods,
                no generation.
            max_new_tokens: Tokens generated per answer.
            batch_size: Samples per forward pass.
            device: `auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`.
            dtype: Weights' precision: `auto` (bfloat16 on CUDA, float32 on CPU), `float32`, `bfloat16`,
                `float16`.
            thinking: For a model with a thinking switch in its chat template (Qwen3): `false` turns thinking
                off; unset keeps the template's default.
            share_prefix: Compute the prompt's shared prefix (the k-shot examples) once and reuse its key/value
                cache.
            load_in_4bit: NF4 weights through bitsandbytes (default: on for CUDA, off on CPU).
            repetition_penalty: Generation's repetition penalty (part of the run's identity when set).
            cache: generate's key/value cache: `dynamic` or `static` (compiled decode on CUDA).
            stop_strings: Generation stops at any of these (a JSON list, or one string).
        """
        from toxbench.adapters._local import load_tokenizer_and_model
        from toxbench.errors import ToxbenchError

        if mode not in ("generate", "score"):
            raise ToxbenchError(f"hf mode must be generate or score, not {mode!r}")
        if cache not in CACHES:
            raise ToxbenchError(f"--model-arg cache={cache}: give one of {', '.join(CACHES)}")
        self.cache = cache  # generate mode, as are the stop strings
        self.stop_strings = stop_strings_arg(stop_strings)
        self.model, self.mode, self.max_new_tokens, self.thinking, self.share_prefix = (
            model,
            mode,
            int(max_new_tokens),
            thinking,
            bool(share_prefix),
        )
        self.repetition_penalty = float(repetition_penalty) if repetition_penalty is not None else None  # generate mode
        self.capabilities = Capabilities(
            concurrency=1, batching=True, batch_size=int(batch_size), scores=mode == "score"
        )
        self.tokenizer, self.lm, self.device = load_tokenizer_and_model(model, "causal", device, dtype, load_in_4bit)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._prefix: tuple[list[int], object] | None = None  # (token ids, key/value cache)
        self._tokenised: dict[
            int, tuple[Request, list[int]]
        ] = {}  # id(request) -> (request, prompt ids): see _prompt_ids
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}

    def identity(self) -> dict:
        from toxbench.adapters._local import precision

        weights = precision(self.lm)  # absent for float32, so the default CPU runs keep their ids
        return {
            "model": self.model,
            "mode": self.mode,
            "max_new_tokens": self.max_new_tokens if self.mode == "generate" else None,
            "thinking": self.thinking,
            **({"precision": weights} if weights else {}),
            **(
                {"repetition_penalty": self.repetition_penalty}
                if self.repetition_penalty is not None and self.mode == "generate"
                else {}
            ),
            **({"cache": self.cache} if self.cache != "dynamic" and self.mode == "generate" else {}),
            **({"stop_strings": list(self.stop_strings)} if self.stop_strings and self.mode == "generate" else {}),
        }

    # -- prompts ------------------------------------------------------------------------------------
    def prompt_text(self, request: Request) -> str:
        extra = {"enable_thinking": self.thinking} if self.thinking is not None else {}
        return self.tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False, **extra
        )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prompt_ids(self, request: Request, keep: bool = True) -> list[int]:
        """The prompt's token ids, rendered and tokenised once per request: the engine asks for the
        length to sort batches, then the batch needs the ids (two chat-template renders and two
        tokenisations of ~600 tokens each, per sample, otherwise). Held until the request is
        answered (keep=False takes them out)."""
        hit = self._tokenised.get(id(request))
        if hit is None or hit[0] is not request:
            hit = (request, self._ids(self.prompt_text(request)))
            if keep:
                self._tokenised[id(request)] = hit
                if (
                    len(self._tokenised) > MAX_TOKENISED
                ):  # requests answered from the response cache are never asked for again
                    del self._tokenised[next(iter(self._tokenised))]
        elif not keep:
            del self._tokenised[id(request)]
        return hit[1]

    def _answer_ids(self, request: Request) -> list[list[int]]:
        """Token ids of the two answer words, tokenised once per label pair."""
        labels = answer_words(request)
        if labels not in self._label_ids:
            self._label_ids[labels] = [self._ids(w) for w in labels]
        return self._label_ids[labels]

    def batch_length(self, request: Request) -> int:
        return len(self._prompt_ids(request))

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        return self._generate(requests) if self.mode == "generate" else self._score(requests)

    # -- generate -------------------------------------------------------------------------------
    def _generate(self, requests: list[Request]) -> list[Answer]:
        import torch

        ids = [self._prompt_ids(r, keep=False) for r in requests]
        batch = self.tokenizer.pad({"input_ids": ids}, return_tensors="pt", padding=True, padding_side="left").to(
            self.device
        )
        with torch.inference_mode():
            extra: dict = {"repetition_penalty": self.repetition_penalty} if self.repetition_penalty is not None else {}
            if self.cache == "static":
                extra["cache_implementation"] = "static"
            if self.stop_strings:  # each row stops once it has written one; the batch when all have
                extra.update(stop_strings=list(self.stop_strings), tokenizer=self.tokenizer)
            out = self.lm.generate(
                **batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                **extra,
            )
        new = out[:, batch["input_ids"].shape[1] :]
        answers = []
        for i, row in enumerate(new):
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            n_out = int((row != self.tokenizer.pad_token_id).sum())
            answers.append(
                Answer(
                    text=text,
                    raw=json.dumps({"generated": text}, ensure_ascii=False),
                    tokens_in=int(batch["attention_mask"][i].sum()),
                    tokens_out=n_out,
                )
            )
        return answers

    # -- score ----------------------------------------------------------------------------------
    def verdict_log_likelihoods(self, requests: list[Request]) -> list[tuple[float, float]]:
        """log P(non-toxic words | prompt), log P(toxic words | prompt) for each request."""
        prompts = [self._prompt_ids(r, keep=False) for r in requests]
        verdicts = [self._answer_ids(r) for r in requests]
        if not self.share_prefix:
            return [self._reference(prompt, pair) for prompt, pair in zip(prompts, verdicts)]
        prefix, cache = self._prefix_for(prompts)
        return self._tree_batch(prompts, verdicts, len(prefix), cache)

    def _reference(self, prompt: list[int], verdicts: list[list[int]]) -> tuple[float, float]:
        """The plain computation: each full prompt followed by each answer, one causal forward each."""
        import torch

        out = []
        with torch.inference_mode():
            for verdict in verdicts:
                ids = torch.tensor([prompt + verdict[:-1]], device=self.device)
                logits = self.lm(input_ids=ids).logits[0, len(prompt) - 1 :]
                lp = torch.log_softmax(logits.float(), dim=-1)
                out.append(sum(float(lp[t, tok]) for t, tok in enumerate(verdict)))
        return out[0], out[1]

    def _tree_batch(
        self, prompts: list[list[int]], verdicts: list[list[list[int]]], p: int, cache
    ) -> list[tuple[float, float]]:
        """One forward for the batch. Each row holds a sample's own tokens and then both answers side by
        side as branches of a tree: a 4D attention mask keeps each branch from seeing the other, and
        both branches take the positions right after the prompt. The shared prefix's key/value tensors
        enter as stride-0 views, so they are not copied per sample up front.
        On an accelerator the host sends each input once (ids, three lengths per row, the read
        positions), the mask and positions are built there from the lengths in a few broadcast
        operations, and the log-probabilities come back in one transfer."""
        import torch
        from transformers import DynamicCache

        n, device, pad = len(prompts), self.device, self.tokenizer.pad_token_id
        rows = [(prompt[p:], first[:-1], second[:-1]) for prompt, (first, second) in zip(prompts, verdicts)]
        width = max(len(a) + len(b) + len(c) for a, b, c in rows)
        ids = torch.tensor(
            [a + b + c + [pad] * (width - len(a) - len(b) - len(c)) for a, b, c in rows], dtype=torch.long
        ).to(device)
        s, l0, l1 = torch.tensor([[len(a), len(b), len(c)] for a, b, c in rows], dtype=torch.long).to(device).unbind(1)
        j = torch.arange(width, device=device)
        query, key = j.view(1, width, 1), j.view(1, 1, width)
        second_starts = (s + l0).view(n, 1, 1)
        own = (
            (key <= query)
            & (query < (s + l0 + l1).view(n, 1, 1))  # causal within the row's own tokens, padding sees none
            & ~((query >= second_starts) & (key >= s.view(n, 1, 1)) & (key < second_starts))
        )  # the second branch skips the first
        allowed = torch.cat([torch.ones((n, width, p), dtype=torch.bool, device=device), own], dim=2).unsqueeze(
            1
        )  # all see the prefix
        # the second branch restarts at the position right after the prompt, as the first does
        positions = p + j.view(1, width) - torch.where(j.view(1, width) >= second_starts.view(n, 1), l0.view(n, 1), 0)
        past = None
        if cache is not None:
            past = DynamicCache()
            for layer, (keys, values) in enumerate(zip(*_layer_tensors(cache))):
                past.update(keys.expand(n, *keys.shape[1:]), values.expand(n, *values.shape[1:]), layer)
        picks = []  # (row, position whose next-token distribution is read, token, answer)
        for i, ((suffix, b0, _), (first, second)) in enumerate(zip(rows, verdicts)):
            at = len(suffix)
            picks += [(i, at - 1, first[0], 0), (i, at - 1, second[0], 1)]
            picks += [(i, at + t, tok, 0) for t, tok in enumerate(first[1:])]
            picks += [(i, at + len(b0) + t, tok, 1) for t, tok in enumerate(second[1:])]
        where = torch.tensor([(i, q, tok) for i, q, tok, _ in picks], dtype=torch.long).to(device)
        with torch.inference_mode():
            hidden = self.lm.base_model(
                input_ids=ids,
                position_ids=positions,
                attention_mask=allowed,
                past_key_values=past,
                use_cache=past is not None,
            ).last_hidden_state
            # the vocabulary projection only where it is read: over every position it costs more than the model
            lp = torch.log_softmax(self.lm.get_output_embeddings()(hidden[where[:, 0], where[:, 1]]).float(), dim=-1)
            read = lp.gather(1, where[:, 2:]).squeeze(1).tolist()
        out = [[0.0, 0.0] for _ in prompts]
        for value, (i, _, _, k) in zip(read, picks):
            out[i][k] += value
        return [tuple(o) for o in out]

    def _prefix_for(self, prompts: list[list[int]]):
        """The instruction prefix every prompt shares and its key/value cache, computed once and
        reused while prompts start with it. At least one token of each prompt stays outside it."""
        import torch
        from transformers import DynamicCache

        if self._prefix is not None:
            ids, cache = self._prefix
            if all(len(q) > len(ids) and q[: len(ids)] == ids for q in prompts):
                return ids, cache
        n = min(_common_prefix(prompts), min(len(q) for q in prompts) - 1)
        if n <= 0:
            return [], None
        ids = prompts[0][:n]
        cache = DynamicCache()
        with torch.inference_mode():
            self.lm.base_model(input_ids=torch.tensor([ids], device=self.device), past_key_values=cache, use_cache=True)
        self._prefix = (ids, cache)
        return ids, cache

    def _score(self, requests: list[Request]) -> list[Answer]:
        return [verdict_answer(lp0, lp1) for lp0, lp1 in self.verdict_log_likelihoods(requests)]


def stop_strings_arg(value: object) -> tuple[str, ...]:
    """generate mode's stop strings: a JSON list on the command line, or one string."""
    from toxbench.errors import ToxbenchError

    strings = [value] if isinstance(value, str) else value
    if not isinstance(strings, (list, tuple)) or not all(isinstance(x, str) and x for x in strings):
        raise ToxbenchError(
            f"--model-arg stop_strings={value!r}: give a string or a JSON list of strings, e.g. "
            '\'stop_strings=["Conclusion : oui", "Conclusion : non"]\''
        )
    return tuple(strings)


def answer_words(request: Request) -> tuple[str, ...]:
    """The two answer words a scored prompt is read for: the prompt's own labels, else the language's."""
    return tuple(request.labels or DEFAULT_LABELS.get(request.lang, DEFAULT_LABELS["fr"]))


def verdict_answer(lp0: float, lp1: float) -> Answer:
    """score mode's answer from log P(non-toxic words | prompt) and log P(toxic words | prompt):
    P(toxic) normalised between the two words, labelled toxic at 0.5. Every engine (hf, vllm) reads
    its likelihoods through this one definition, so their scores compare."""
    import math

    top = max(lp0, lp1)
    p1 = math.exp(lp1 - top) / (math.exp(lp0 - top) + math.exp(lp1 - top))
    return Answer(
        pred=int(p1 >= 0.5), score=p1, raw=json.dumps({"logp_non_toxic": lp0, "logp_toxic": lp1, "p_toxic": p1})
    )
