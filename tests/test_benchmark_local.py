"""benchmarks/local.py's accelerator section, run on the CPU with the tiny shape.

CI never has a GPU, and that section only runs with --device: without this test its code path (the
synthetic Qwen3 model, the tokenizer loading, the before/after speed-ups) could break unseen until a
session with a device spends its time finding out. Speeds are not asserted, only what is measured.
"""

from __future__ import annotations

import importlib.util
import sys
from argparse import Namespace
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def local():
    spec = importlib.util.spec_from_file_location("bench_local", REPO / "benchmarks" / "local.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_local"] = module
    spec.loader.exec_module(module)
    return module


def test_synthetic_model_keeps_the_shapes_vocabulary(local, tmp_path):
    """A shape with a larger vocabulary than the tokenizer's keeps it (Qwen3-4B's output layer costs
    what the real one does); one without takes the tokenizer's."""
    from transformers import AutoConfig

    tokenizer = local.load_tokenizer("smollm2-135m-instruct")
    assert len(tokenizer) == 49152
    assert local.SHAPES["qwen3-4b"]["vocab_size"] == 151_936
    local.SHAPES["tiny-wide"] = {**local.SHAPES["tiny"], "vocab_size": 60_000}
    try:
        wide = AutoConfig.from_pretrained(local.synthetic_model("tiny-wide", tokenizer, "cpu", tmp_path / "wide"))
    finally:
        del local.SHAPES["tiny-wide"]
    narrow = AutoConfig.from_pretrained(local.synthetic_model("tiny", tokenizer, "cpu", tmp_path / "narrow"))
    assert (wide.vocab_size, narrow.vocab_size) == (60_000, 49152)
    assert (wide.hidden_size, wide.num_hidden_layers) == (64, 2)


@pytest.mark.slow
def test_accelerator_section_measures_scoring_and_every_decode_case(local, data):
    from toxbench.data.datasets import load_dataset
    from toxbench.run.prompts import make_renderer
    from toxbench.types import Request

    renderer = make_renderer("detailed", "fr", "0", 0, data)
    samples = load_dataset("toxifrench", data).samples[:40]
    requests = [Request(s.id, s.text, s.lang, tuple(renderer.messages(s.text)), renderer.labels) for s in samples]
    args = Namespace(device="cpu", shape="tiny", tokenizer="smollm2-135m-instruct", gen_tokens=3, n_gen_samples=8)
    result = local.accelerator_section(args, requests, local.load_tokenizer(args.tokenizer))

    assert result["adapter"].endswith("toxbench/adapters/hf.py") and result["score_all_s"] > 0
    assert result["score_samples_per_s"] == pytest.approx(40 / result["score_all_s"])
    assert [(g["cache"], g["batch"]) for g in result["generate"]] == [
        ("dynamic", 32),
        ("dynamic", 64),
        ("static", 32),
        ("static", 64),
    ]
    for g in result["generate"]:  # random weights may write the end token early, never more than asked
        assert g["samples"] == 8 and 0 < g["new_tokens"] <= 8 * 3
        assert g["decode_tokens_per_s"] == pytest.approx(g["new_tokens"] / g["wall_s"])

    # an older tree (dynamic cache only, slower by a known factor) against this one
    before = {
        "score_all_s": result["score_all_s"] * 4,
        "generate": [
            {**g, "decode_tokens_per_s": g["decode_tokens_per_s"] / 2}
            for g in result["generate"]
            if g["cache"] == "dynamic"
        ],
    }
    ups = local.speedups(result, before)
    assert ups["score"] == pytest.approx(4.0)
    assert ups["decode, cache dynamic, batch 32"] == pytest.approx(2.0)
    assert ups["decode, cache dynamic, batch 64"] == pytest.approx(2.0)
    assert not any("static" in name for name in ups)  # no static figure before: no ratio invented for it
    best_after = max(g["decode_tokens_per_s"] for g in result["generate"])
    best_before = max(g["decode_tokens_per_s"] for g in before["generate"])
    assert ups["decode, best of each"] == pytest.approx(best_after / best_before)
