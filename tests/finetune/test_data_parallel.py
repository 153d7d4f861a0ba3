"""Data-parallel training is real: `accelerate launch --multi_gpu --num_processes 2` on a machine
without GPUs (accelerate's torchrun launcher; the ranks train on the CPU over gloo) runs the SFT job
on two processes that step on disjoint shards of the examples, end with one adapter, and save the
adapter a single process then loads. (`--cpu --num_processes 2` starts a single process unless
MPI is set up: accelerate hands CPU ranks to mpirun.)"""

import json
import math
import os
import subprocess
import sys

import pytest
from fakes.ports import free_port

pytest.importorskip("trl")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

SFT = """
output_dir = "{out}"
max_new_tokens = 32
[model]
base = "smollm2-135m-instruct"
[data]
blocks = ["score"]
max_examples = 8
seed = 42
[train]
learning_rate = 2e-3
epochs = 1
batch_size = 2
gradient_accumulation = 1
max_length = 256
warmup_steps = 0
logging_steps = 1
save_steps = 100
"""


@pytest.mark.slow
def test_two_cpu_processes_train_disjoint_shards_into_one_adapter(tmp_path, data_root, models_dir):
    from peft import PeftModel

    from toxbench.adapters._local import load_tokenizer_and_model
    from toxbench.finetune.sft import lora_checksum
    from toxbench.model_registry import read_card

    load_tokenizer_and_model(
        "smollm2-135m-instruct", "causal", "cpu"
    )  # convert the GGUF here, not in two processes at once
    out = tmp_path / "sft"
    config = tmp_path / "sft.toml"
    config.write_text(SFT.format(out=out.as_posix()), "utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOXBENCH_DATA_DIR": str(data_root)}
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        "-m",
        "toxbench",
        "finetune",
        "sft",
        "--config",
        str(config),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [json.loads((out / "ranks" / f"rank-{r}.json").read_text("utf-8")) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert ranks[0]["adapter_sha256"] == ranks[1]["adapter_sha256"]  # gradients were averaged: one model on both
    card = read_card(out)["training"]
    n, steps = card["train_examples"], ranks[0]["steps"]
    assert (
        card["processes"] == 2 and card["eval_before"] == {} and card["final_eval"]
    )  # validation after training only (see run_sft)
    rows = [set(r["rows"]) for r in ranks]
    # each process gets ceil(n / 2) rows, its last batch filled up with rows again (accelerate's even batches)
    assert (
        steps == ranks[1]["steps"] == math.ceil(math.ceil(n / 2) / 2)
        and [len(r["rows"]) for r in ranks] == [2 * steps] * 2
    )
    assert (
        rows[0] | rows[1] == set(range(n)) and len(rows[0] & rows[1]) <= 4 * steps - n
    )  # shards: only the fill-up repeats

    _tokenizer, base, _ = load_tokenizer_and_model("smollm2-135m-instruct", "causal", "cpu")
    loaded = PeftModel.from_pretrained(base, str(out))
    assert lora_checksum(loaded) == ranks[0]["adapter_sha256"]  # what was saved is what both processes held
    trained = [p for name, p in loaded.named_parameters() if "lora_B" in name]
    assert trained and any(float(p.abs().max()) > 0 for p in trained)  # LoRA's B starts at zero: training moved it
    assert not (out / "ranks" / "rank-2.json").exists() and (out / "toxbench-model.json").is_file()
