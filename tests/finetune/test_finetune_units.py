"""Fine-tuning pieces with known answers: CoT examples, token classes, schedules, the loss, oversampling, pairs."""

import json

import pytest

from toxbench.errors import ToxbenchError
from toxbench.finetune.config import SFTJob, load_job
from toxbench.finetune.cot_data import (
    CONCLUSION,
    PROMPT_TEMPLATE,
    CotDataSettings,
    CotExample,
    build_completion,
    build_splits,
    oversample,
    stratified_split,
)
from toxbench.finetune.dpo import flip_conclusion, inverted_pair, pairs_from_candidates
from toxbench.finetune.dwl import DWLSchedule, block_spans, token_classes
from toxbench.run.parsing import parse_cot

COMPLETION = "<think>\nTon :\nironique\n</think>\n<think>\nScore :\nNote : 6/10\n</think>\nQuestion : ce message est-il toxique ?\nConclusion : oui"


def test_token_classes_on_a_hand_built_token_sequence():
    tokens = [
        "<think>",
        "\n",
        "Ton",
        " :",
        "\n",
        "iron",
        "ique",
        "\n",
        "</think>",
        "\n",  # block 1: tokens 0-8
        "<",
        "think",
        ">",
        "\nScore :\n",
        "Note : 6",
        "/10\n",
        "</",
        "think>",  # block 2 (tags split up): 10-17
        "\n",
        "Question : ce message est-il toxique ?",
        "\n",
        "Conclusion",
        " : oui",
    ]  # the answer
    assert "".join(tokens) == COMPLETION
    ends = [sum(map(len, tokens[: i + 1])) for i in range(len(tokens))]
    offsets = [(end - len(tok), end) for tok, end in zip(tokens, ends)]
    classes = token_classes([*offsets, (0, 0)], COMPLETION)  # + a special token with empty offsets (end of sequence)
    assert classes == [1] * 9 + [0] + [2] * 8 + [0] * 5 + [0]
    # a token that starts with a space before a block's first character belongs to the block it reaches
    assert token_classes([(0, 7)], COMPLETION) == [1] and token_classes(
        [(len(COMPLETION) - 3, len(COMPLETION))], COMPLETION
    ) == [0]


def test_block_spans_cover_each_block_and_an_unclosed_one():
    assert [COMPLETION[a:b] for a, b in block_spans(COMPLETION)] == [
        "<think>\nTon :\nironique\n</think>",
        "<think>\nScore :\nNote : 6/10\n</think>",
    ]
    assert block_spans("x <think> never closed") == [(2, 22)]


def test_token_classes_with_the_real_smollm2_tokenizer():
    from toxbench.adapters._local import load_tokenizer_and_model

    pytest.importorskip("transformers")
    tokenizer = _smollm_tokenizer()
    enc = tokenizer(COMPLETION, add_special_tokens=False, return_offsets_mapping=True)
    classes = token_classes(enc["offset_mapping"], COMPLETION)
    by_class = {
        c: "".join(COMPLETION[a:b] for (a, b), k in zip(enc["offset_mapping"], classes) if k == c) for c in (0, 1, 2)
    }
    assert "ironique" in by_class[1] and "6/10" in by_class[2] and "Conclusion : oui" in by_class[0]
    assert "ironique" not in by_class[0] + by_class[2] and "Conclusion" not in by_class[1] + by_class[2]
    del load_tokenizer_and_model


def _smollm_tokenizer():
    from transformers import AutoTokenizer

    from toxbench.adapters._local import _converted_dir, load_tokenizer_and_model, resolve

    path, gguf = resolve("smollm2-135m-instruct")
    converted = _converted_dir(path, gguf)
    if not (converted / "config.json").is_file():
        load_tokenizer_and_model("smollm2-135m-instruct", "causal", "cpu")
    return AutoTokenizer.from_pretrained(converted)


def test_schedule_lookup_takes_the_last_entry_at_or_before_the_epoch():
    s = DWLSchedule(points=[(0, [1, 1, 1]), (1, [2, 0.5, 0.5]), (2.5, [4, 0.25, 0.25])])
    assert s.alphas_at(0) == [1, 1, 1] and s.alphas_at(0.99) == [1, 1, 1]
    assert s.alphas_at(1) == [2, 0.5, 0.5] and s.alphas_at(2.49) == [2, 0.5, 0.5]
    assert s.alphas_at(2.5) == [4, 0.25, 0.25] and s.alphas_at(7) == [4, 0.25, 0.25]
    with pytest.raises(ValueError, match="epoch 0"):
        DWLSchedule(points=[(1, [1, 1])])
    with pytest.raises(ValueError, match="increase"):
        DWLSchedule(points=[(0, [1, 1]), (2, [1, 1]), (1, [1, 1])])


def test_two_class_schedule_is_the_papers_geometric_form():
    s = DWLSchedule.two_class(n_blocks=3, factor=0.5, epochs=3)
    assert s.points == [(0.0, [1.0, 1.0, 1.0, 1.0]), (1.0, [2.0, 0.5, 0.5, 0.5]), (2.0, [4.0, 0.25, 0.25, 0.25])]
    assert DWLSchedule.plain(2).alphas_at(5) == [1.0, 1.0, 1.0]


def test_dwl_loss_weighs_tokens_by_class():
    torch = pytest.importorskip("torch")
    from toxbench.finetune.dwl import dwl_loss

    nll = torch.tensor([[0.5, 1.0, 2.0, 0.0]])  # the last position is ignored (nll 0)
    classes = torch.tensor([[0, 1, 2, 0]])
    assert dwl_loss(nll, classes, [1, 1, 1], 3).item() == pytest.approx(3.5 / 3)
    assert dwl_loss(nll, classes, [4, 0.5, 0.25], 3).item() == pytest.approx((0.5 * 4 + 1.0 * 0.5 + 2.0 * 0.25) / 3)


def test_plain_schedule_gives_exactly_trls_and_transformers_loss(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM

    from toxbench.finetune.config import TrainSettings
    from toxbench.finetune.sft import _trainer_classes, sft_config, tokenize_cot

    tokenizer = _smollm_tokenizer()
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        )
    )
    examples = [
        CotExample(str(i), PROMPT_TEMPLATE.format(text=t), COMPLETION.replace("oui", v), 1, "x")
        for i, (t, v) in enumerate([("tu es nul", "oui"), ("merci beaucoup pour ton aide", "non"), ("ok", "oui")])
    ]
    rows = [tokenize_cot(tokenizer, e, 512) for e in examples]
    assert all(
        r["labels"][: len(tokenizer(e.prompt, add_special_tokens=False)["input_ids"])]
        == [-100] * len(tokenizer(e.prompt, add_special_tokens=False)["input_ids"])
        for r, e in zip(rows, examples)
    )
    collator_cls, trainer_cls = _trainer_classes()
    collator = collator_cls(pad_token_id=tokenizer.pad_token_id or 0)
    args = sft_config(
        TrainSettings(batch_size=3, gradient_accumulation=1, max_length=512), tmp_path, "cpu", has_eval=False
    )
    plain = trainer_cls(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        data_collator=collator,
        schedule=DWLSchedule.plain(2),
    )
    batch = collator(rows)
    assert batch["token_class"].shape == batch["input_ids"].shape
    with torch.no_grad():
        ours = plain.compute_loss(plain.model, dict(batch))
        trl_loss = super(trainer_cls, plain).compute_loss(
            plain.model, {k: v for k, v in batch.items() if k != "token_class"}
        )
        hf_loss = model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]
        ).loss
    assert ours.item() == trl_loss.item()  # bit for bit: the same per-token log-probs, weighted by 1.0
    assert ours.item() == pytest.approx(hf_loss.item(), abs=1e-5)
    # a schedule that weighs the answer 3x: the loss moves by exactly 2x the answer tokens' share
    plain.schedule = DWLSchedule(points=[(0, [3.0, 1.0, 1.0])])
    with torch.no_grad():
        plain.model.eval()
        assert plain.compute_loss(plain.model, dict(batch)).item() == ours.item()  # evaluation reports the plain loss
        plain.model.train()
        weighted = plain.compute_loss(plain.model, dict(batch))
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logp = torch.log_softmax(out.logits[:, :-1].float(), -1)
        labels = batch["labels"][:, 1:]
        mask = labels != -100
        nll = -logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
        answer = (batch["token_class"][:, 1:] == 0) & mask
        expected = (nll.sum() + 2 * nll[answer].sum()) / mask.sum()
    assert weighted.item() == pytest.approx(expected.item(), rel=1e-5)


def test_oversampling_repeats_the_minority_whole_then_its_first_rows():
    items = [f"M{i}" for i in range(7)] + ["m0", "m1", "m2"]
    labels = [1] * 7 + [0] * 3
    out = oversample(items, labels)
    assert out == [f"M{i}" for i in range(7)] + ["m0", "m1", "m2", "m0", "m1", "m2", "m0"]
    assert oversample(["a", "b"], [0, 1]) == ["a", "b"]
    with pytest.raises(ToxbenchError):
        oversample(["a"], [1])


def test_stratified_split_is_seeded_and_keeps_class_shares():
    items = list(range(100))
    labels = [int(i < 20) for i in items]
    train, val = stratified_split(items, labels, 0.1, seed=3)
    assert (train, val) == stratified_split(items, labels, 0.1, seed=3)
    assert sorted(train + val) == items and sum(labels[i] for i in val) == 2 and len(val) == 10


def test_cot_examples_from_the_data_directory(data):
    train, validation, stats = build_splits(data, CotDataSettings(blocks=["tone", "score"]))
    assert stats["rows"] == 1371 and stats["train"][0] == stats["train"][1]  # oversampled to exactly 1:1
    assert (
        stats["selection"]["removed"]["near_copy"] == 3
        and "opposite balance of the paper's corpus" in stats["balance_note"]
    )
    assert stats["train_before_oversampling"][0] < stats["train_before_oversampling"][1]
    benchmark = {
        s.id for s in __import__("toxbench.data.datasets", fromlist=["x"]).load_dataset("toxifrench", data).samples
    }
    assert not ({e.id for e in train + validation} & benchmark)
    assert not ({e.id for e in train} & {e.id for e in validation})
    example = next(e for e in train if e.label == 0)
    assert example.prompt.startswith("Message:\n") and example.prompt.endswith("\n\nAnalyse:\n")
    assert example.completion.startswith("<think>\nTon :\n") and example.completion.count("<think>") == 2
    assert example.completion.endswith("?\n" + CONCLUSION[0])
    again, _, _ = build_splits(data, CotDataSettings(blocks=["tone", "score"]))
    assert [e.id for e in again] == [e.id for e in train]


def test_build_completion_follows_the_block_order():
    fields = {
        "explication": "sujet",
        "ton": "calme",
        "intention": "informer",
        "categorie": "Catégories : []",
        "toxicite_score": "Note : 0/10",
    }
    text = build_completion(fields, 0, ["explanation", "score"])
    assert (
        text
        == "<think>\nExplication :\nsujet\n</think>\n<think>\nScore :\nNote : 0/10\n</think>\nQuestion : ce message est-il toxique ?\nConclusion : non"
    )
    assert parse_cot(text).pred == 0


def test_pairs_take_a_right_and_a_wrong_candidate():
    example = CotExample("a", "Message:\nx\n\nAnalyse:\n", COMPLETION, 1, "x")
    right, wrong, none = "…\nConclusion : oui", "…\nConclusion : non", "…\nQuestion : ce message est-il"
    pairs = pairs_from_candidates(example, [wrong, right, none, right], max_pairs=2)
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [(right, wrong), (right, none)]
    assert pairs_from_candidates(example, [right, right]) == []  # no wrong candidate: no pair
    assert pairs_from_candidates(example, [wrong, none]) == []
    inverted = inverted_pair(example)
    assert inverted["chosen"] == COMPLETION and inverted["rejected"].endswith("Conclusion : non")
    assert inverted["rejected"][:-3] == COMPLETION[:-3]
    with pytest.raises(ToxbenchError):
        flip_conclusion(COMPLETION, 0)


def test_cot_parser_reads_the_last_conclusion():
    assert parse_cot(COMPLETION).pred == 1
    assert parse_cot("<think>Conclusion : oui ?</think>\nConclusion : non").pred == 0
    assert parse_cot("Conclusion : **non**").pred == 0 and parse_cot("Conclusion: 1").pred == 1
    assert parse_cot("<think>\nScore :\nNote : 6/10").status == "unparseable"


def test_job_files_are_validated_with_the_file_and_key_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('output_dir = "x"\n[model]\nbase = "m"\n[train]\nlearning_rat = 1\n')
    with pytest.raises(ToxbenchError, match=r"bad.toml: train.learning_rat: unknown key; known: .*\blearning_rate\b"):
        load_job(bad, SFTJob)
    with pytest.raises(ToxbenchError, match="no such config"):
        load_job(tmp_path / "missing.toml", SFTJob)


def test_shipped_example_configs_load():
    from pathlib import Path

    from toxbench.finetune.config import DPOJob, EncoderJob

    root = Path(__file__).parents[2] / "examples" / "finetune"
    kinds = {"sft": SFTJob, "dpo": DPOJob, "encoder": EncoderJob, "gcloss": EncoderJob}
    files = sorted(root.glob("*.toml"))
    assert len(files) >= 5
    for path in files:
        job = load_job(path, kinds[path.stem.split("-")[0]])
        assert job.output_dir
    paper = load_job(root / "sft-qwen3-4b-dwl.toml", SFTJob)
    assert (paper.lora.r, paper.lora.alpha, paper.lora.dropout, paper.train.learning_rate) == (8, 16, 0.05, 2e-4)
    assert (paper.train.batch_size, paper.train.gradient_accumulation, paper.train.max_length, paper.train.seed) == (
        4,
        32,
        1024,
        42,
    )
    dpo = load_job(root / "dpo-qwen3-4b.toml", DPOJob)
    assert (dpo.beta, dpo.train.learning_rate, dpo.train.epochs) == (0.4, 1e-6, 1)
    assert (
        DPOJob(sft_model="x", output_dir="y", train={"max_steps": 1}).train.warmup_steps == 0
    )  # a [train] table keeps DPO's defaults
    assert json.loads((root / "deepspeed-zero2.json").read_text())["zero_optimization"]["stage"] == 2
    # the ToxiTrace pair: the same data, budget and checkpoint rule, only the objective differs
    gc, ce = (
        load_job(root / "gcloss-minilm-cpu.toml", EncoderJob),
        load_job(root / "encoder-toxicspans-minilm-cpu.toml", EncoderJob),
    )
    assert (gc.objective.kind, ce.objective.kind) == ("gcloss", "ce")
    assert gc.spans == ce.spans and gc.train == ce.train and gc.checkpoint == ce.checkpoint == "last"


def test_registry_names_and_missing_models(tmp_path, monkeypatch):
    from toxbench.model_registry import lookup, register, write_card

    monkeypatch.setenv("TOXBENCH_REGISTRY", str(tmp_path / "registry"))
    with pytest.raises(ToxbenchError, match="no toxbench-model.json"):
        register(tmp_path, "x")
    write_card(tmp_path / "m", {"kind": "encoder"})
    with pytest.raises(ToxbenchError, match="no weights"):
        register(tmp_path / "m", "x")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(ToxbenchError, match="model name"):
        register(tmp_path / "m", "bad name/..")
    register(tmp_path / "m", "mine")
    entry, card = lookup("mine")
    assert entry["kind"] == "encoder" and card == {"kind": "encoder"} and len(entry["weights_sha256"]) == 64
    with pytest.raises(ToxbenchError, match=r"registered: mine"):
        lookup("other")
