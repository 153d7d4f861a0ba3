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
Prints a table and writes benchmarks/local.json.

    python benchmarks/local.py [--data-dir DIR] [--n-generate 8] [--n-score 48] [--n-encoder N] [--passes 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    parser.add_argument("--n-generate", type=int, default=8)
    parser.add_argument("--n-score", type=int, default=48)
    parser.add_argument("--n-encoder", type=int, default=None, help="encoder texts (default: the whole benchmark)")
    parser.add_argument("--passes", type=int, default=3, help="rounds of every case; medians are reported")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from toxbench.types import Request
    from toxbench.adapters.encoder import EncoderClassifier
    from toxbench.adapters.hf import HFCausalLM
    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset
    from toxbench.data.sampling import balanced_sample
    from toxbench.run.prompts import make_renderer

    data = DataDir(args.data_dir)
    renderer = make_renderer("detailed", "fr", "0", 0, data)
    benchmark = load_dataset("toxifrench", data).samples

    def requests_for(samples) -> list[Request]:
        return [Request(s.id, s.text, s.lang, tuple(renderer.messages(s.text)), renderer.labels) for s in samples]

    requests = requests_for(balanced_sample(benchmark, max(args.n_score, 256), 0))  # the same draw as earlier versions

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
        "score, shared prefix reused, batches of 8": (score.answer_batch, sorted(requests[: args.n_score], key=score.batch_length), 8),
    }
    texts = requests_for(balanced_sample(benchmark, args.n_encoder, 0) if args.n_encoder else benchmark)
    for dtype in ("float32", "bfloat16"):
        enc = EncoderClassifier("minilm-l6", dtype=dtype)
        by_length = sorted(texts, key=enc.batch_length)
        cases[f"encoder {dtype}, one text at a time"] = (enc.answer_batch, texts, 1)
        cases[f"encoder {dtype}, batches of 32 by length"] = (enc.answer_batch, by_length, 32)
    targets = {  # ratio name: (numerator case, denominator case, target)
        "score / naive generate": ("score, shared prefix reused, batches of 8", "generate, one sample at a time", 10.0),
        **{f"encoder {d} batched / one at a time": (f"encoder {d}, batches of 32 by length", f"encoder {d}, one text at a time", 3.0)
           for d in ("float32", "bfloat16")},
    }

    for fn, items, batch in cases.values():  # warm-up
        fn(items[:batch])
    # Every case once per round, rounds repeated: this shared machine's speed drifts by tens of
    # percent over minutes, and a ratio taken within one round cancels most of that drift.
    per_round: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.passes):
        for name, (fn, items, batch) in cases.items():
            per_round[name].append(timed_rate(fn, items, batch))
    rows = {name: statistics.median(values) for name, values in per_round.items()}
    ratios = {name: (statistics.median([a / b for a, b in zip(per_round[num], per_round[den])]), target)
              for name, (num, den, target) in targets.items()}
    gflops = {"float32 matrix multiply peak (2048x2048)": gemm_peak_gflops()}
    for name, (fn, items, batch) in cases.items():
        if name.startswith("encoder"):
            gflops[name] = gflop(fn, items, batch) * rows[name] / len(items)

    print(f"local inference on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{'case':44} {'samples/s':>10}")
    for name, value in rows.items():
        print(f"{name:44} {value:10.2f}")
    for name, (value, target) in ratios.items():
        print(f"{name:44} {value:9.1f}x  target >= {target:g}x  {'ok' if value >= target else 'below'}")
    print(f"{'':44} {'GFLOP/s':>10}")
    for name, value in gflops.items():
        print(f"{name:44} {value:10.1f}")
    out = {"machine": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__, "rounds": args.passes,
           "samples_per_second": rows, "samples_per_second_by_round": per_round, "gflops_per_second": gflops, "ratios": {k: {"value": v, "target": t} for k, (v, t) in ratios.items()}}
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
