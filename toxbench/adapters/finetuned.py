"""`finetuned:<name>`: a model trained with `toxbench finetune` and registered with
`toxbench models register` (toxbench.model_registry, so this adapter needs nothing of finetune/).

- `causal-cot` cards: the base model with the trained LoRA adapter (merged into the weights unless
  the base is quantized), the training prompt `Message:\\n{text}\\n\\nAnalyse:\\n` around the text,
  greedy generation of the reasoning (with the card's `repetition_penalty`, or
  `--model-arg repetition_penalty=1.1`; recorded in the run's identity when set), and the `cot`
  parser on the last `Conclusion : oui|non`. `stop_at_conclusion=true` ends each row's generation
  at the first conclusion line (what the model was trained to end with; a model that would write
  a second one is read at its first), `cache=static` compiles decoding on CUDA; both are recorded
  in the identity when set.
- `engine=vllm` runs a `causal-cot` card on vLLM's engine instead (the `vllm` adapter): the base
  model with the LoRA adapter applied unmerged by vLLM, the same training prompt, greedy decoding,
  `stop_at_conclusion` as stop strings kept in the text; vLLM's engine arguments (`max_model_len`,
  `gpu_memory_utilization`, `tensor_parallel_size`, `data_parallel_size`, `enforce_eager`, `dtype`)
  pass through. The identity then records the engine, vLLM's version and what it resolved.
- `encoder` cards: the fine-tuned sequence classifier through the `encoder` adapter (class 1 toxic).
The run identity holds the checksum of the trained weights, so a retrained model makes new runs.
"""

from __future__ import annotations

from toxbench.adapters._sdk import require
from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.hf import HFCausalLM
from toxbench.adapters.registry import register
from toxbench.types import Answer, Request

CONCLUSION_LINES = ("Conclusion : oui", "Conclusion : non")  # how the training completions end (finetune.cot_data)


ENGINES = ("hf", "vllm")


def cot_on_vllm(
    base: str,
    adapter_dir: str,
    prompt_template: str,
    max_new_tokens: int,
    batch_size: int,
    dtype: str,
    repetition_penalty: float | None,
    stop_at_conclusion: bool,
    engine_args: dict,
) -> Adapter:
    """The CoT model on vLLM: the base model with the LoRA adapter, prompted the way it was trained."""
    from toxbench.adapters.vllm_engine import VLLMEngine

    class CotOnVLLM(VLLMEngine):
        def prompt_text(self, request: Request) -> str:
            return prompt_template.format(text=request.text)

    return CotOnVLLM(
        base,
        mode="generate",
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        dtype=dtype,
        repetition_penalty=repetition_penalty,
        stop_strings=CONCLUSION_LINES if stop_at_conclusion else (),
        lora=adapter_dir,
        **engine_args,
    )


class CotGenerator(HFCausalLM):
    """A causal LM with a LoRA adapter, prompted the way it was trained (no chat template)."""

    renders_own_prompt = True
    default_parser = "cot"

    def __init__(
        self,
        base: str,
        adapter_dir: str,
        prompt_template: str,
        max_new_tokens: int,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        repetition_penalty: float | None = None,
        cache: str = "dynamic",
        stop_at_conclusion: bool = False,
    ) -> None:
        peft = require("peft", "train", "a fine-tuned CoT model")
        super().__init__(
            base,
            mode="generate",
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            repetition_penalty=repetition_penalty,
            cache=cache,
            stop_strings=CONCLUSION_LINES if stop_at_conclusion else (),
        )
        self.template = prompt_template
        lm = peft.PeftModel.from_pretrained(self.lm, adapter_dir)
        self.lm = lm if getattr(lm, "is_loaded_in_4bit", False) else lm.merge_and_unload()
        self.lm.eval()

    def prompt_text(self, request: Request) -> str:
        return self.template.format(text=request.text)


@register("finetuned")
class Finetuned(Adapter):
    preparing = "loading the model"
    kind = "chat"
    capabilities = Capabilities(concurrency=1, batching=True, batch_size=8, scores=False)
    description = "a model trained by `toxbench finetune` and registered by name (CoT LoRA or encoder)"
    varies = "kind and scores follow the model's card: an encoder card is a classifier with scores"
    renders_own_prompt = True

    def __init__(
        self,
        model: str,
        max_new_tokens: int | None = None,
        batch_size: int | None = None,
        device: str = "auto",
        dtype: str = "auto",
        repetition_penalty: float | None = None,
        cache: str = "dynamic",
        stop_at_conclusion: bool = False,
        engine: str = "hf",
        max_model_len: int | None = None,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int | None = None,
        data_parallel_size: int | None = None,
        enforce_eager: bool | None = None,
    ) -> None:
        """`--model-arg` keys of `finetuned:`.

        Args:
            max_new_tokens: Tokens generated per answer (default: the model card's).
            batch_size: Samples per batch (default: the engine's).
            device: `auto` (CUDA when present, else CPU), `cpu`, `cuda` or `cuda:N`. (hf engine).
            dtype: Weights' precision: `auto` (bfloat16 on CUDA, float32 on CPU), `float32`, `bfloat16`,
                `float16`.
            repetition_penalty: Overrides the card's repetition penalty.
            cache: hf engine's key/value cache: `dynamic` or `static` (compiled decode on CUDA).
            stop_at_conclusion: `true`: stop generating once the CoT's conclusion is written.
            engine: `hf` (transformers) or `vllm` (the LoRA adapter on vLLM).
            max_model_len: vLLM's context length (default: the model's). (vllm engine)
            gpu_memory_utilization: Share of GPU memory vLLM may take, in (0, 1]. (vllm engine)
            tensor_parallel_size: GPUs one model is split over. (vllm engine)
            data_parallel_size: Engine copies, each on its own GPUs, sharing the samples. (vllm engine)
            enforce_eager: `true`: no CUDA graphs (starts faster; needed on vLLM's CPU build). (vllm engine)
        """
        from toxbench.adapters.encoder import EncoderClassifier
        from toxbench.errors import ToxbenchError
        from toxbench.model_registry import lookup

        if not isinstance(stop_at_conclusion, bool):
            raise ToxbenchError(f"--model-arg stop_at_conclusion={stop_at_conclusion}: give true or false")
        if engine not in ENGINES:
            raise ToxbenchError(f"--model-arg engine={engine}: give one of {', '.join(ENGINES)}")
        given = {
            "max_model_len": max_model_len,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
            "data_parallel_size": data_parallel_size,
            "enforce_eager": enforce_eager,
        }
        engine_args = {
            key: value for key, value in given.items() if value is not None
        }  # the vllm adapter's defaults for the rest
        if engine == "hf":
            if engine_args:
                raise ToxbenchError(
                    f"--model-arg {next(iter(engine_args))} is vLLM's: add --model-arg engine=vllm, or leave it out"
                )
        elif cache != "dynamic" or device != "auto":
            raise ToxbenchError(
                f"--model-arg {'cache' if cache != 'dynamic' else 'device'} is the hf engine's; vLLM manages its own "
                "cache and devices (tensor_parallel_size, data_parallel_size)"
            )
        self.model = model
        entry, card = lookup(model)
        self.card_kind = card["kind"]
        self._identity = {
            "name": model,
            "kind": card["kind"],
            "base_model": card.get("base_model"),
            "weights_sha256": entry["weights_sha256"],
        }
        if card["kind"] == "encoder":
            if engine != "hf":
                raise ToxbenchError(
                    f"finetuned:{model} is an encoder; --model-arg engine=vllm runs CoT language models only"
                )
            self.inner: Adapter = EncoderClassifier(
                entry["path"], label_policy="index:1", batch_size=batch_size or 8, device=device, dtype=dtype
            )
            self.kind, self.default_parser = "classifier", None
        else:
            tokens = int(max_new_tokens or card.get("max_new_tokens", 512))
            penalty = repetition_penalty if repetition_penalty is not None else card.get("repetition_penalty")
            if engine == "vllm":
                self.inner = cot_on_vllm(
                    card["base_model"],
                    entry["path"],
                    card["prompt_template"],
                    tokens,
                    batch_size or 256,
                    dtype,
                    penalty,
                    stop_at_conclusion,
                    engine_args,
                )
                self._identity.update(
                    engine="vllm",
                    **{
                        key: value
                        for key, value in self.inner.identity().items()
                        if key in ("vllm", "dtype", "max_model_len", "enforce_eager")
                    },
                )
            else:
                self.inner = CotGenerator(
                    card["base_model"],
                    entry["path"],
                    card["prompt_template"],
                    tokens,
                    batch_size or 8,
                    device,
                    dtype,
                    penalty,
                    cache,
                    stop_at_conclusion,
                )
            self.kind, self.default_parser = "chat", card.get("parser", "cot")
            self._identity["max_new_tokens"] = tokens
        self.capabilities = self.inner.capabilities
        # Settings the inner model records only when they are set (so earlier runs keep their ids):
        # the precision its weights compute in (bfloat16 on CUDA, a 4-bit base; none for float32),
        # and for CoT generation the repetition penalty, the key/value cache and stop strings.
        inner = self.inner.identity()
        self._identity.update(
            {key: inner[key] for key in ("repetition_penalty", "cache", "stop_strings", "precision") if inner.get(key)}
        )

    def identity(self) -> dict:
        return self._identity

    def cache_identity(self) -> dict:
        if self.card_kind == "encoder":  # cached: full-precision class probabilities (toxbench 0.1 cached rounded ones)
            return {**self._identity, "answer": "class-probabilities"}
        return self._identity

    def batch_length(self, request: Request) -> int:
        return self.inner.batch_length(request)

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        return self.inner.answer_batch(requests)

    def decide(self, answer: Answer) -> Answer:
        return self.inner.decide(answer)
