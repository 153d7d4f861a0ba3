"""A toxbench CoT model on vLLM, for real on the CPU build: a tiny LoRA adapter trained by the
shipped small SFT config (cut to a few steps), run by `finetuned:NAME` on both engines; then the
vLLM how-to's server block (docs/how-to/vllm.md), command by command, against `python -m vllm.entrypoints.openai.api_server`
on 127.0.0.1 serving SmolLM2 and that adapter. The page's model and adapter names are swapped for
the local ones; each `toxbench run` gets a small sample and temporary directories."""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tomllib

pytest.importorskip("vllm")
pytest.importorskip("peft")
pytest.importorskip("trl")

from fakes.ports import free_port

from toxbench.records import Run, iter_run_dirs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def engines_released():
    """The engines this module loaded are shut down after it, so later tests get their memory."""
    yield
    if "vllm" in sys.modules and sys.modules["vllm"] is not None:
        from toxbench.adapters.vllm_engine import release_engines

        release_engines()


MARKER = "<!-- tests/adapters/test_vllm_server.py runs this block's commands -->"
CPU = [
    "--dtype",
    "float32",
    "--enforce-eager",
    "--max-model-len",
    "2048",
    "--gpu-memory-utilization",
    "0.15",
]  # this machine's additions


def docs_block() -> list[str]:
    """The vLLM how-to's server block: one command per line, continuations joined."""
    text = (ROOT / "docs" / "how-to" / "vllm.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text[text.index(MARKER) :], re.S).group(1)
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def sft(tmp_path_factory, data_root):
    """The shipped small SFT config (LoRA r 8 on SmolLM2), cut to 8 examples and one epoch, registered as ci-vllm."""
    from toxbench.cli import main

    work = tmp_path_factory.mktemp("vllm-sft")
    config = tomllib.loads((ROOT / "examples/finetune/sft-smollm2-cpu.toml").read_text())
    config["output_dir"] = str(work / "sft")
    config["max_new_tokens"] = 48
    config["data"].update(max_examples=8)
    config["train"].update(epochs=1, max_length=256, save_steps=100, logging_steps=1)
    lines = []
    for key, value in config.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {json.dumps(value)}")
    for section, values in config.items():
        if isinstance(values, dict):
            lines.append(f"[{section}]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    (work / "sft.toml").write_text("\n".join(lines) + "\n")
    old = {name: os.environ.get(name) for name in ("TOXBENCH_REGISTRY", "TOXBENCH_CACHE")}
    os.environ.update(TOXBENCH_REGISTRY=str(work / "registry"), TOXBENCH_CACHE=str(work / "cache.sqlite"))
    argv = sys.argv
    for args in (
        ["finetune", "sft", "--config", str(work / "sft.toml"), "--data-dir", str(data_root)],
        ["models", "register", str(work / "sft"), "--name", "ci-vllm"],
    ):
        sys.argv = ["toxbench", *args]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, args
        finally:
            sys.argv = argv
    yield work
    for name, value in old.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@pytest.mark.slow
def test_finetuned_cot_on_vllm_reads_as_on_hf(sft, cli, data_root):
    common = [
        "run",
        "--model",
        "finetuned:ci-vllm",
        "--model-arg",
        "stop_at_conclusion=true",
        "--model-arg",
        "dtype=float32",
        "--sample",
        "4",
        "--runs",
        sft / "runs-ft",
        "--data-dir",
        data_root,
    ]
    code, _, err = cli(*common)
    assert code == 0, err
    code, _, err = cli(
        *common,
        "--model-arg",
        "engine=vllm",
        "--model-arg",
        "enforce_eager=true",
        "--model-arg",
        "gpu_memory_utilization=0.15",
        "--model-arg",
        "max_model_len=2048",
    )
    assert code == 0, err
    runs = {Run.load(d).spec.adapter_params.get("engine", "hf"): Run.load(d) for d in iter_run_dirs(sft / "runs-ft")}
    on_hf, on_vllm = runs["hf"], runs["vllm"]
    assert (
        on_vllm.spec.parser == "cot"
        and on_vllm.spec.adapter_params["weights_sha256"] == on_hf.spec.adapter_params["weights_sha256"]
    )
    assert (
        on_vllm.spec.adapter_params["stop_strings"] == ["Conclusion : oui", "Conclusion : non"]
        and on_vllm.spec.adapter_params["vllm"]
    )
    hf_texts = {r.sample_id: json.loads(r.raw)["generated"] for r in on_hf.records}
    vllm_texts = {r.sample_id: json.loads(r.raw)["generated"] for r in on_vllm.records}
    assert len(vllm_texts) == 4 and all(t.strip() for t in vllm_texts.values())
    # the LoRA adapter applied unmerged by vLLM, merged into the weights by hf: the same greedy text
    assert sum(vllm_texts[i] == hf_texts[i] for i in hf_texts) >= 3, (vllm_texts, hf_texts)
    assert [r.status for r in sorted(on_vllm.records, key=lambda r: r.sample_id)] == [
        r.status for r in sorted(on_hf.records, key=lambda r: r.sample_id)
    ]
    # a conclusion, when written, is the end of the text (the stop strings are kept, as on hf)
    for text in vllm_texts.values():
        found = re.search(r"Conclusion : (oui|non)", text)
        assert found is None or text.endswith(found.group(0))


@pytest.mark.slow
def test_the_readme_server_commands_run_against_a_real_vllm_server(sft, data_root, models_dir):
    from toxbench.adapters._local import model_path

    lines = docs_block()
    assert lines[0].startswith("python -m vllm.entrypoints.openai.api_server") and len(lines) == 4
    model, port = model_path("smollm2-135m-instruct"), free_port()

    def local(line: str) -> str:
        return (
            line.replace("Qwen/Qwen3-4B", model)
            .replace("work/sft-qwen3-4b", str(sft / "sft"))
            .replace("8000", str(port))
        )

    env = {**os.environ, "TOXBENCH_CACHE": str(sft / "server-cache.sqlite"), "VLLM_LOGGING_LEVEL": "WARNING"}
    server = subprocess.Popen(
        [sys.executable if word == "python" else word for word in shlex.split(local(lines[0]))] + CPU,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(sft / "server.log", "w"),
    )
    try:
        deadline = time.monotonic() + 400
        while True:
            assert server.poll() is None, (sft / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the vLLM server did not start in 400 s"
            time.sleep(2)
        served = {m["id"] for m in httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"]}
        assert {model, "my-sft"} <= served
        runs = sft / "runs-server"
        for line in lines[1:]:
            # this machine's additions: 4 samples, answers cut at 48 tokens (SmolLM2 rambles to the context's end), a CPU's timeout
            extra = f"--sample 4 --model-arg max_tokens=48 --timeout 300 --runs {runs} --data-dir {data_root} --json"
            done = subprocess.run(
                ["bash", "-c", f"{local(line)} {extra}"], env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, done.stderr[-2000:]
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
    found = [Run.load(d) for d in iter_run_dirs(runs)]
    by_kind = {
        ("lora" if "prompt_template" in r.spec.adapter_params else r.spec.adapter_params.get("mode", "generate")): r
        for r in found
    }
    assert set(by_kind) == {"generate", "score", "lora"}
    assert all(r.status in ("ok", "unparseable") and json.loads(r.raw) for r in by_kind["generate"].records)
    assert len(by_kind["generate"].records) == 4
    assert all(r.score is not None and 0 <= r.score <= 1 for r in by_kind["score"].records)  # the server's top_logprobs
    lora = by_kind["lora"]
    assert lora.spec.parser == "cot" and len(lora.records) == 4 and all(r.status != "error" for r in lora.records)
