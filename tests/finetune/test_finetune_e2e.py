"""End to end with real weights on the CPU, kept small for CI: SmolLM2-135M SFT with the DWL -> DPO ->
register -> `toxbench run`; MiniLM encoder fine-tune -> register -> run."""

import json
import re

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from toxbench.model_registry import read_card, weights_sha256
from toxbench.records import Run, iter_run_dirs

SFT = """
output_dir = "{out}/sft"
max_new_tokens = 64
repetition_penalty = 1.1
[model]
base = "smollm2-135m-instruct"
[data]
blocks = ["score"]
max_examples = 8
seed = 42
[train]
learning_rate = 2e-3
epochs = 3
batch_size = 4
gradient_accumulation = 1
max_length = 256
warmup_steps = 0
logging_steps = 1
save_steps = 4
[dwl]
factor = 0.5
"""

DPO = """
sft_model = "{out}/sft"
output_dir = "{out}/dpo"
[data]
blocks = ["score"]
max_examples = 8
seed = 42
[sampling]
candidates = 2
max_new_tokens = 48
max_prompts = 2
batch_size = 2
inverted_pairs = true
[train]
learning_rate = 1e-4
max_steps = 2
optim = "soap"                  # SOAP's first step only sets up its preconditioner: two steps move the weights
weight_decay = 0.01
batch_size = 2
gradient_accumulation = 1
max_length = 256
logging_steps = 1
"""

ENCODER = """
output_dir = "{out}/encoder"
[model]
base = "minilm-l6"
[data]
max_examples = 96
validation_fraction = 0.15
[train]
learning_rate = 1e-4
epochs = 2
batch_size = 16
gradient_accumulation = 1
max_length = 96
logging_steps = 2
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.setenv("TOXBENCH_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    return tmp_path


def _config(workdir, name: str, text: str):
    path = workdir / f"{name}.toml"
    path.write_text(text.format(out=workdir.as_posix()))
    return path


@pytest.mark.slow
def test_cot_sft_with_dwl_then_dpo_then_register_and_run(workdir, cli, data_root):
    code, _out, err = cli("finetune", "sft", "--config", _config(workdir, "sft", SFT), "--data-dir", data_root)
    assert code == 0, err
    sft_dir = workdir / "sft"
    card = read_card(sft_dir)
    assert card["kind"] == "causal-cot" and card["parser"] == "cot" and card["training"]["stage"] == "sft"
    assert card["training"]["data"]["train"]["0"] == card["training"]["data"]["train"]["1"]  # oversampled 1:1
    before = card["training"]["data"]["train_before_oversampling"]
    assert (
        f"{before['1']} toxic, {before['0']} non-toxic" in card["training"]["data"]["balance_note"]
    )  # the card says the balance
    log = [e for e in json.loads((sft_dir / "training_log.json").read_text()) if "loss" in e]
    assert log[-1]["loss"] < log[0]["loss"] / 2  # it learned the training examples
    before, after = card["training"]["eval_before"]["eval_loss"], card["training"]["final_eval"]["eval_loss"]
    assert after < 0.75 * before  # and the held-out ones (validation loss is the plain SFT loss)
    alphas = {round(e["epoch"] + 0.4999): e["dwl_alpha_answer"] for e in log}
    assert (
        log[0]["dwl_alpha_answer"] == 1.0 and log[-1]["dwl_alpha_answer"] == 4.0 and 2.0 in alphas.values()
    )  # the schedule moved
    assert sorted(p.name for p in (sft_dir / "checkpoints").iterdir())  # checkpoints were written
    steps = card["training"]["steps"]
    # a second run resumes from the last checkpoint: no step is trained again
    code, _, err = cli("finetune", "sft", "--config", workdir / "sft.toml", "--data-dir", data_root)
    assert code == 0, err
    assert read_card(sft_dir)["training"]["steps"] == steps

    code, _, err = cli("finetune", "dpo", "--config", _config(workdir, "dpo", DPO), "--data-dir", data_root)
    assert code == 0, err
    dpo_dir = workdir / "dpo"
    pairs = [json.loads(line) for line in (dpo_dir / "pairs.jsonl").read_text().splitlines()]
    inverted = [p for p in pairs if p["kind"] == "inverted"]
    assert len(inverted) == 2 and all(p["chosen"][-3:] != p["rejected"][-3:] for p in inverted)
    dpo_card = read_card(dpo_dir)
    assert dpo_card["training"]["stage"] == "dpo" and "SFT model" in dpo_card["training"]["reference"]
    assert weights_sha256(dpo_dir) != weights_sha256(sft_dir)

    code, _out, err = cli("models", "register", dpo_dir, "--name", "ci-dpo")
    assert code == 0, err
    code, _out, err = cli(
        "run",
        "--model",
        "finetuned:ci-dpo",
        "--sample",
        "4",
        "--runs",
        workdir / "runs",
        "--data-dir",
        data_root,
        "--json",
    )
    assert code == 0, err
    run = Run.load(next(iter_run_dirs(workdir / "runs")))
    assert (
        run.spec.adapter == "finetuned"
        and run.spec.parser == "cot"
        and run.spec.adapter_params["weights_sha256"] == weights_sha256(dpo_dir)
    )
    assert run.spec.adapter_params["repetition_penalty"] == 1.1  # the SFT card's generation setting, carried by DPO
    assert dpo_card["training"]["job"]["train"]["optim"] == "soap"  # real SOAP steps moved the weights (checked above)
    generated = [json.loads(r.raw)["generated"] for r in run.records]
    assert len(run.records) == 4 and all(g.strip() for g in generated)
    # a few CPU steps teach the start of the format; the label comes only from a `Conclusion : oui|non`
    assert sum(g.lstrip().startswith("<") for g in generated) >= 2
    assert all(
        (r.status == "ok") == bool(re.search(r"Conclusion\s*:\s*\**\s*(oui|non|yes|no|1|0|toxique)\b", g, re.I))
        for r, g in zip(run.records, generated)
    )


@pytest.mark.slow
def test_encoder_finetune_then_register_and_run(workdir, cli, data_root):
    code, _, err = cli("finetune", "encoder", "--config", _config(workdir, "encoder", ENCODER), "--data-dir", data_root)
    assert code == 0, err
    card = read_card(workdir / "encoder")
    assert (
        card["kind"] == "encoder"
        and card["training"]["best_checkpoint"]
        and "eval_macro_f1" in card["training"]["best_validation"]
    )
    data = card["training"]["data"]
    assert (
        data["selection"]["removed"]["near_copy"] == 3
        and f"{data['train_before_oversampling']['1']} toxic" in data["balance_note"]
    )
    code, _, err = cli("models", "register", workdir / "encoder", "--name", "ci-encoder")
    assert code == 0, err
    code, out, err = cli(
        "run", "--model", "finetuned:ci-encoder", "--sample", "20", "--runs", workdir / "runs", "--data-dir", data_root
    )
    assert code == 0, err
    run = Run.load(next(iter_run_dirs(workdir / "runs")))
    assert len(run.records) == 20 and all(
        r.status == "ok" and 0 <= r.score <= 1 and r.pred == int(r.score >= 0.5) for r in run.records
    )
    code, out, _ = cli("models", "list")
    assert "ci-encoder" in out
    from toxbench.adapters.finetuned import Finetuned

    float32 = Finetuned("ci-encoder").identity()
    assert "precision" not in float32 and Finetuned("ci-encoder", dtype="bfloat16").identity() == {
        **float32,
        "precision": "bfloat16",
    }


@pytest.mark.slow
def test_qlora_gradients_survive_an_evaluation_on_the_cpu(models_dir):
    """bitsandbytes repacks 4-bit weights for a CPU kernel without a backward on an eval-mode forward;
    without the guard in load_for_training, layer 0's LoRA weights get no gradient afterwards."""
    pytest.importorskip("bitsandbytes")
    import torch
    from peft import LoraConfig, get_peft_model

    from toxbench.finetune.config import ModelSettings
    from toxbench.finetune.training import load_for_training

    tokenizer, model, device, quantized = load_for_training(
        ModelSettings(base="smollm2-135m-instruct", load_in_4bit=True, device="cpu")
    )
    assert quantized and device == "cpu"
    model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "up_proj"], init_lora_weights=False)
    )
    ids = torch.tensor([tokenizer("Ferme-la, espèce d'idiot. Conclusion : oui")["input_ids"]])

    def first_layer_gradients():
        model.train()
        model.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        grads = [p.grad for name, p in model.named_parameters() if p.requires_grad and ".layers.0." in name]
        assert len(grads) == 4 and all(g is not None for g in grads)
        return torch.cat([g.flatten() for g in grads])

    before = first_layer_gradients()
    model.eval()
    with torch.no_grad():
        model(input_ids=ids)  # what an evaluation step does
    assert torch.equal(first_layer_gradients(), before) and before.norm() > 0
