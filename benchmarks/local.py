"""Local inference speed on this machine's CPU, samples per second.

SmolLM2-135M-Instruct with the detailed French prompt (about 575 tokens a sample, 530 of them the
shared instructions): naive generation one sample at a time, batched generation, and likelihood
scoring with the shared prefix's key/value cache reused. The MiniLM encoder, by default on the whole
ToxiFrench benchmark as a run sees it: one text at a time against batches of 32, in float32 (the
default on the CPU) and bfloat16 (`--model-arg dtype=bfloat16`). Batches come in the engine's order,
sorted by token count: unsorted, scoring runs about a third slower, and the encoder pads 2% over
1388 texts against 14% over 256. Every case runs once per round for --passes rounds; rates are
medians, and each ratio is the median of its per-round ratios. For the encoder it also prints the
GFLOP/s each case reaches (FLOPs counted by torch's FlopCounterMode, padding included) against
this CPU's float32 matrix-multiply peak, which bounds what batching can gain.
Targets: scoring >= 10x naive generation; encoder batching >= 3x one at a time.
"score, as the engine calls it" times what a run does: every prompt's length first (to sort
batches), then the batches; earlier versions rendered and tokenised each prompt again per batch.

With --device cuda (or any other torch device) an accelerator section follows: a model of the
shape --shape (default qwen3-4b: 36 layers, hidden 2560, Qwen3's 151 936-word vocabulary; `tiny`
checks the code path anywhere) with random weights and a real tokenizer (--tokenizer: SmolLM2's by
default, or any tokenizer directory, e.g. Qwen3's; ids past its vocabulary decode to nothing), in
bfloat16, scores all 1388 ToxiFrench samples as the engine calls it (batch 32), and generates
--gen-tokens new tokens for --n-gen-samples samples at batch 32 and 64 with the dynamic and the
static (compiled) key/value cache: decode tokens per second, and the static cache's one-off compile
time. Timings synchronise the device. `--cases none` skips the CPU cases (and loading their models).

Before and after a change, on the same machine: run this script with the older tree first on the
path and `--out` elsewhere, then with this tree and `--baseline` pointing at that file; it prints
each accelerator figure's speed-up (targets: scoring and decode >= 3x). A tree whose `hf` adapter
has no `cache` argument gets the dynamic cache only:

    git worktree add /tmp/before 84b2430
    PYTHONPATH=/tmp/before python benchmarks/local.py --device cuda --cases none --out /tmp/local-before.json
    python benchmarks/local.py --device cuda --cases none --baseline /tmp/local-before.json

Prints tables and writes benchmarks/local.json (or --out).

    python benchmarks/local.py [--data-dir DIR] [--n-generate 8] [--n-score 48] [--n-encoder N] [--passes 3] [--cases score]
    python benchmarks/local.py --device cuda [--shape qwen3-4b] [--tokenizer DIR] [--gen-tokens 128] [--cases none] [--baseline F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path


def gemm_peak_gflops(n: int = 2048, repeat: int = 10) -> float:
    """This CPU's float32 matrix-multiply throughput: the ceiling batched inference approaches."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * n**3 * repeat / (time.perf_counter() - start) / 1e9


SHAPES = {  # Qwen3 configurations: the 4B model, and a tiny one to check the code path on any machine
    "qwen3-4b": dict(
        vocab_size=151_936,
        hidden_size=2560,
        intermediate_size=9728,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        head_dim=128,
        tie_word_embeddings=True,
        rope_theta=1_000_000.0,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
    ),
}


def as_the_engine(adapter, items) -> int:
    """What the engine does with a run's requests: their lengths to sort them, then batches of the
    adapter's size. Returns the new tokens generated (0 when scoring)."""
    ordered = sorted(items, key=adapter.batch_length)
    size = adapter.capabilities.batch_size
    return sum(
        sum(a.tokens_out or 0 for a in adapter.answer_batch(ordered[i : i + size]))
        for i in range(0, len(ordered), size)
    )


def synthetic_model(shape: str, tokenizer, device: str, out: Path) -> str:
    """A Qwen3 model of `shape` with random weights (seeded) and a real tokenizer, saved to `out`:
    its speed is the real model's, its answers are noise. The shape's vocabulary, when it names one
    larger than the tokenizer's, is kept, so the output layer costs what the real model's does."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    settings = {**SHAPES[shape]}
    settings["vocab_size"] = max(settings.get("vocab_size", 0), len(tokenizer))
    config = Qwen3Config(
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **settings,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return str(out)


def load_tokenizer(name: str):
    """A tokenizer by short name (the SmolLM2 package's, read from its GGUF file or the converted copy
    toxbench keeps), directory or hub id; only the tokenizer, so no CPU model loads."""
    from transformers import AutoTokenizer

    from toxbench.adapters._local import _converted_dir, resolve

    path, gguf = resolve(name)
    if gguf is None:
        return AutoTokenizer.from_pretrained(path)
    converted = _converted_dir(path, gguf)
    return (
        AutoTokenizer.from_pretrained(converted)
        if (converted / "tokenizer_config.json").is_file()
        else AutoTokenizer.from_pretrained(path, gguf_file=gguf)
    )


def accelerator_section(args, requests, tokenizer) -> dict:
    """Scoring every sample and generating on `args.device`, as a run there would."""
    import inspect
    import tempfile

    import torch

    from toxbench.adapters.hf import HFCausalLM

    caches = (
        ("dynamic", "static") if "cache" in inspect.signature(HFCausalLM).parameters else ("dynamic",)
    )  # older trees: dynamic only

    def sync() -> None:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    def engine_timed(adapter, items) -> tuple[float, int]:
        """(seconds, new tokens) of `as_the_engine`, the device synchronised at both ends."""
        sync()
        start = time.perf_counter()
        tokens = as_the_engine(adapter, items)
        sync()
        return time.perf_counter() - start, tokens

    result: dict = {
        "device": args.device,
        "shape": args.shape,
        "tokenizer": args.tokenizer,
        "adapter": inspect.getsourcefile(HFCausalLM),
        "name": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic_model(args.shape, tokenizer, args.device, Path(tmp) / args.shape)
        scorer = HFCausalLM(path, mode="score", batch_size=32, device=args.device, dtype="bfloat16")
        as_the_engine(scorer, requests[:64])  # warm-up: kernels, the shared prefix's cache
        result["score_all_s"] = engine_timed(scorer, requests)[0]
        result["score_samples_per_s"] = len(requests) / result["score_all_s"]
        del scorer
        result["generate"] = []
        items = requests[: args.n_gen_samples]
        for cache in caches:
            for batch in (32, 64):
                gen = HFCausalLM(
                    path,
                    mode="generate",
                    max_new_tokens=args.gen_tokens,
                    batch_size=batch,
                    device=args.device,
                    dtype="bfloat16",
                    **({"cache": cache} if len(caches) > 1 else {}),
                )
                # random weights rarely write the end token, so every row decodes --gen-tokens tokens
                first, _ = engine_timed(gen, items[:batch])  # includes compiling, for the static cache
                wall, tokens = engine_timed(gen, items)
                result["generate"].append(
                    {
                        "cache": cache,
                        "batch": batch,
                        "samples": len(items),
                        "new_tokens": tokens,
                        "wall_s": wall,
                        "decode_tokens_per_s": tokens / wall,
                        "first_batch_s": first,
                    }
                )
                del gen
    print(
        f"\naccelerator: {result['name']}, {args.shape} (random weights, bfloat16, {args.tokenizer}'s tokenizer), {len(requests)} "
        f"ToxiFrench samples; the hf adapter from {result['adapter']}"
    )
    print(
        f"score, as the engine calls it, batches of 32: {result['score_all_s']:.2f} s ({result['score_samples_per_s']:.0f} samples/s)"
    )
    print(f"{'generate':24} {'batch':>5} {'tokens/s':>9} {'wall s':>7} {'first batch s':>13}")
    for g in result["generate"]:
        print(
            f"{'cache ' + g['cache']:24} {g['batch']:>5} {g['decode_tokens_per_s']:9.0f} {g['wall_s']:7.1f} {g['first_batch_s']:13.1f}"
        )
    return result


def engines_section(args, requests, model: str, dtype: str) -> dict:
    """The same model on each engine of --engine (hf, vllm), as a run calls it: generation with 16 and
    with --long-tokens new tokens, and scoring, over `requests`. Wall time after loading (a
    warm-up batch first), new tokens per second, samples per second; vLLM's speed-up over hf."""
    import gc

    def load(engine: str, mode: str, tokens: int):
        if engine == "hf":
            from toxbench.adapters.hf import HFCausalLM

            return HFCausalLM(
                model, mode=mode, max_new_tokens=tokens, dtype=dtype, **({"device": args.device} if args.device else {})
            )
        from toxbench.adapters.vllm_engine import VLLMEngine

        return VLLMEngine(
            model,
            mode=mode,
            max_new_tokens=tokens,
            dtype=dtype,
            max_model_len=args.max_model_len,
            gpu_memory_utilization=args.gpu_memory_utilization,
            enforce_eager=not args.device,
        )

    cases = [
        case
        for case in [("generate", 16), ("generate", args.long_tokens), ("score", 0)]
        if case[0] in args.engine_modes.split(",")
    ]
    result: dict = {"model": model, "dtype": dtype, "samples": len(requests), "cases": []}
    for engine in args.engine.split(","):
        start = time.perf_counter()
        for mode, tokens in cases:
            adapter = load(engine, mode, tokens or 8)
            loaded = time.perf_counter() - start
            if engine == "vllm":  # the engine is shared by the cases: no case reads the prompts an earlier one cached
                adapter.engine.reset_prefix_cache()
            as_the_engine(
                adapter, requests[:8]
            )  # warm-up: kernels, hf's shared prefix; on vLLM these 8 prompts' blocks
            began = time.perf_counter()
            new = as_the_engine(adapter, requests)
            wall = time.perf_counter() - began
            row = {
                "engine": engine,
                "mode": mode,
                "new_tokens_per_sample": tokens,
                "wall_s": wall,
                "samples_per_s": len(requests) / wall,
                "new_tokens": new,
                "tokens_per_s": new / wall if new else None,
                "load_s": loaded,
            }
            result["cases"].append(row)
            print(
                f"{engine:5} {mode:9} {tokens or '-':>5} {wall:8.1f} s {row['samples_per_s']:8.2f} samples/s "
                f"{(row['tokens_per_s'] or 0):9.1f} new tokens/s",
                flush=True,
            )
            del adapter
            gc.collect()
            start = time.perf_counter()
    by = {(r["engine"], r["mode"], r["new_tokens_per_sample"]): r for r in result["cases"]}
    result["vllm_over_hf"] = {
        f"{mode} {tokens}": by[("vllm", mode, tokens)]["samples_per_s"] / by[("hf", mode, tokens)]["samples_per_s"]
        for mode, tokens in cases
        if ("vllm", mode, tokens) in by and ("hf", mode, tokens) in by
    }
    if result["vllm_over_hf"]:
        print(
            "vLLM over hf, samples per second (targets: generation >= 3x, scoring >= 1x): "
            + ", ".join(f"{k}: {v:.2f}x" for k, v in result["vllm_over_hf"].items())
        )
    return result


def speedups(after: dict, before: dict) -> dict[str, float]:
    """Each accelerator figure of `after` over the same figure of `before` (two runs of this script),
    and the best decode of each over the other's best: what a user gets from upgrading."""
    out = {"score": before["score_all_s"] / after["score_all_s"]}
    best = {}
    for name, section in (("after", after), ("before", before)):
        best[name] = max(g["decode_tokens_per_s"] for g in section["generate"])
    for g in after["generate"]:
        match = [b for b in before["generate"] if b["cache"] == g["cache"] and b["batch"] == g["batch"]]
        if match:
            out[f"decode, cache {g['cache']}, batch {g['batch']}"] = (
                g["decode_tokens_per_s"] / match[0]["decode_tokens_per_s"]
            )
    out["decode, best of each"] = best["after"] / best["before"]
    return out


def cpu_section(args, requests, texts) -> dict:
    """The CPU cases: SmolLM2 generating and scoring, the MiniLM encoder one at a time and batched."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from toxbench.adapters.encoder import EncoderClassifier
    from toxbench.adapters.hf import HFCausalLM

    def answer_all(fn, items, batch: int) -> None:
        for i in range(0, len(items), batch):
            fn(items[i : i + batch])

    def timed_rate(fn, items, batch: int) -> float:
        start = time.perf_counter()
        answer_all(fn, items, batch)
        return len(items) / (time.perf_counter() - start)

    def gflop(fn, items, batch: int) -> float:
        with FlopCounterMode(display=False) as counter:
            answer_all(fn, items, batch)
        return counter.get_total_flops() / 1e9

    gen = HFCausalLM("smollm2-135m-instruct", mode="generate", max_new_tokens=8)
    score = HFCausalLM("smollm2-135m-instruct", mode="score")
    cases = {  # name: (answer_batch, requests, batch size); batches in the engine's order, by token count
        "generate, one sample at a time": (gen.answer_batch, requests[: args.n_generate], 1),
        "generate, batches of 8": (gen.answer_batch, sorted(requests[: 2 * args.n_generate], key=gen.batch_length), 8),
        "score, shared prefix reused, batches of 8": (
            score.answer_batch,
            sorted(requests[: args.n_score], key=score.batch_length),
            8,
        ),
        "score, as the engine calls it, batches of 8": (
            lambda items: as_the_engine(score, items),
            requests[: args.n_score],
            args.n_score,
        ),
    }
    for dtype in ("float32", "bfloat16"):
        enc = EncoderClassifier("minilm-l6", dtype=dtype)
        by_length = sorted(texts, key=enc.batch_length)
        cases[f"encoder {dtype}, one text at a time"] = (enc.answer_batch, texts, 1)
        cases[f"encoder {dtype}, batches of 32 by length"] = (enc.answer_batch, by_length, 32)
    targets = {  # ratio name: (numerator case, denominator case, target)
        "score / naive generate": ("score, shared prefix reused, batches of 8", "generate, one sample at a time", 10.0),
        **{
            f"encoder {d} batched / one at a time": (
                f"encoder {d}, batches of 32 by length",
                f"encoder {d}, one text at a time",
                3.0,
            )
            for d in ("float32", "bfloat16")
        },
    }

    if args.cases:
        cases = {name: case for name, case in cases.items() if args.cases in name}
        targets = {name: t for name, t in targets.items() if t[0] in cases and t[1] in cases}
    for fn, items, batch in cases.values():  # warm-up
        fn(items[:batch])
    # Every case once per round, rounds repeated: this shared machine's speed drifts by tens of
    # percent over minutes, and a ratio taken within one round cancels most of that drift.
    per_round: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.passes):
        for name, (fn, items, batch) in cases.items():
            per_round[name].append(timed_rate(fn, items, batch))
    rows = {name: statistics.median(values) for name, values in per_round.items()}
    ratios = {
        name: (statistics.median([a / b for a, b in zip(per_round[num], per_round[den])]), target)
        for name, (num, den, target) in targets.items()
    }
    gflops = {"float32 matrix multiply peak (2048x2048)": gemm_peak_gflops()} if cases else {}
    for name, (fn, items, batch) in cases.items():
        if name.startswith("encoder"):
            gflops[name] = gflop(fn, items, batch) * rows[name] / len(items)

    print(
        f"local inference on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)"
    )
    print(f"{'case':44} {'samples/s':>10}")
    for name, value in rows.items():
        print(f"{name:44} {value:10.2f}")
    for name, (value, target) in ratios.items():
        print(f"{name:44} {value:9.1f}x  target >= {target:g}x  {'ok' if value >= target else 'below'}")
    print(f"{'':44} {'GFLOP/s':>10}")
    for name, value in gflops.items():
        print(f"{name:44} {value:10.1f}")
    return {
        "rounds": args.passes,
        "samples_per_second": rows,
        "samples_per_second_by_round": per_round,
        "gflops_per_second": gflops,
        "ratios": {k: {"value": v, "target": t} for k, (v, t) in ratios.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    parser.add_argument("--n-generate", type=int, default=8)
    parser.add_argument("--n-score", type=int, default=48)
    parser.add_argument("--n-encoder", type=int, default=None, help="encoder texts (default: the whole benchmark)")
    parser.add_argument("--passes", type=int, default=3, help="rounds of every case; medians are reported")
    parser.add_argument(
        "--cases", default="", help="run only the CPU cases whose name holds this text ('none': no CPU case)"
    )
    parser.add_argument("--device", default=None, help="also run the accelerator section on this torch device (cuda)")
    parser.add_argument(
        "--shape", choices=sorted(SHAPES), default="qwen3-4b", help="the accelerator section's model shape"
    )
    parser.add_argument(
        "--tokenizer",
        default="smollm2-135m-instruct",
        help="the accelerator model's tokenizer: short name, directory or hub id",
    )
    parser.add_argument(
        "--gen-tokens", type=int, default=128, help="new tokens per sample in the accelerator's generate cases"
    )
    parser.add_argument("--n-gen-samples", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".json"), help="where the JSON goes")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier --out of this script (--device): print speed-ups against it",
    )
    parser.add_argument(
        "--engine", default=None, help="hf,vllm: the engines section, each engine on the same model and samples"
    )
    parser.add_argument(
        "--n-engine", type=int, default=None, help="the engines section's samples (default: the whole benchmark)"
    )
    parser.add_argument(
        "--engine-modes", default="generate,score", help="the engines section's cases: generate, score or both"
    )
    parser.add_argument(
        "--long-tokens", type=int, default=256, help="the engines section's long generation (600 for a CoT evaluation)"
    )
    parser.add_argument("--max-model-len", type=int, default=2048, help="vLLM's context in the engines section")
    parser.add_argument(
        "--gpu-memory-utilization", type=float, default=0.3, help="vLLM's share of device memory (of RAM on a CPU)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.out.is_dir() or not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: give a file path in an existing directory")
    try:  # fail before the work, not after it
        baseline = json.loads(args.baseline.read_text())["accelerator"] if args.baseline else None
    except (OSError, ValueError, KeyError) as exc:
        parser.error(f"--baseline {args.baseline}: not an earlier --out of this script with --device ({exc})")

    import torch

    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset
    from toxbench.data.sampling import balanced_sample
    from toxbench.run.prompts import make_renderer
    from toxbench.types import Request

    data = DataDir(args.data_dir)
    renderer = make_renderer("detailed", "fr", "0", 0, data)
    benchmark = load_dataset("toxifrench", data).samples

    def requests_for(samples) -> list[Request]:
        return [Request(s.id, s.text, s.lang, tuple(renderer.messages(s.text)), renderer.labels) for s in samples]

    out: dict = {"machine": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if args.cases != "none":
        requests = requests_for(
            balanced_sample(benchmark, max(args.n_score, 256), 0)
        )  # the same draw as earlier versions
        out.update(
            cpu_section(
                args,
                requests,
                requests_for(balanced_sample(benchmark, args.n_encoder, 0) if args.n_encoder else benchmark),
            )
        )
    if args.engine:
        if any(e not in ("hf", "vllm") for e in args.engine.split(",")):
            parser.error(f"--engine {args.engine}: give hf, vllm or hf,vllm")
        chosen = requests_for(balanced_sample(benchmark, args.n_engine, 0) if args.n_engine else benchmark)
        print(f"\nengines: {len(chosen)} ToxiFrench samples, detailed French prompt", flush=True)
        if args.device:  # the --shape model (random weights, bfloat16) on the accelerator
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = synthetic_model(args.shape, load_tokenizer(args.tokenizer), "cpu", Path(tmp) / args.shape)
                out["engines"] = engines_section(args, chosen, path, "bfloat16")
        else:  # SmolLM2-135M-Instruct in float32, as hf runs it on a CPU
            out["engines"] = engines_section(args, chosen, "smollm2-135m-instruct", "float32")
    if args.device and not args.engine:
        out["accelerator"] = accelerator_section(args, requests_for(benchmark), load_tokenizer(args.tokenizer))
        if baseline:
            out["speedups"] = speedups(out["accelerator"], baseline)
            print(
                f"\nagainst {args.baseline} ({baseline.get('adapter', 'an earlier tree')}); targets: score and decode >= 3x"
            )
            for name, value in out["speedups"].items():
                print(f"{name:44} {value:6.2f}x")
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
