"""Issue 28, untrusted files and names: every name that becomes a path stays in its folder, wrong
types in config files, FIFOs and devices are one line (exit 2), never a traceback or a hang."""

import os
import threading

import pytest
from hostile_helpers import one_line_refusal

KEY = "sk-files-canary-0123456789abcdefghijkl"


def prompt_file(folder, **overrides) -> str:
    fields = {
        "system": '"data:toxifrench/prompts/system_prompt_french.txt"',
        "template": '"data:toxifrench/prompts/detailed_toxicity_french.txt"',
        "question": '"Ce message est-il toxique ?"',
        "message_label": '"Message :"',
        "labels": '["non-toxique", "toxique"]',
        **overrides,
    }
    path = folder / "shared-prompt.toml"
    path.write_text("[fr]\n" + "".join(f"{k} = {v}\n" for k, v in fields.items()), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("where", ["absolute", "dotdot", "link"])
def test_a_prompt_toml_cannot_send_a_file_outside_its_folder(
    tmp_path, fake, dataset, cli, data_root, monkeypatch, where
):
    secret = tmp_path / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY MATERIAL", encoding="utf-8")
    shared = tmp_path / "shared"
    shared.mkdir()
    if where == "link":
        (shared / "innocent.txt").symlink_to(secret)
    ref = {"absolute": str(secret), "dotdot": "../home/.ssh/id_ed25519", "link": "innocent.txt"}[where]
    prompt = prompt_file(shared, system=f'"{ref}"')
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    err = one_line_refusal(
        cli(
            "run",
            "-m",
            "openai:gpt-4o-mini",
            "-d",
            dataset,
            "--prompt",
            prompt,
            "--model-arg",
            f"base_url={fake.url}/v1",
            "--out",
            tmp_path / "runs",
            "--data-dir",
            data_root,
            "--no-cache",
        )
    )
    assert "outside" in err and fake.requests == []
    assert "PRIVATE" not in one_line_refusal(
        cli("prompt", "show", "--sample", "0", "-d", dataset, "--prompt", prompt, "--data-dir", data_root)
    )


def test_a_prompt_file_inside_its_folder_is_read(tmp_path, dataset, cli, data_root):
    (tmp_path / "sys.txt").write_text("Tu es un modérateur.", encoding="utf-8")
    code, out, err = cli(
        "prompt",
        "show",
        "--sample",
        "0",
        "-d",
        dataset,
        "--prompt",
        prompt_file(tmp_path, system='"sys.txt"'),
        "--data-dir",
        data_root,
    )
    assert code == 0 and "Tu es un modérateur." in out, err


@pytest.mark.parametrize(
    "field, value, says",
    [
        ("system", "7", "system"),
        ("question", "5", "question"),
        ("labels", '["a"]', "labels"),
        ("message_label", "true", "message_label"),
    ],
)
def test_wrong_types_in_a_prompt_toml_are_one_line(tmp_path, dataset, cli, data_root, field, value, says):
    err = one_line_refusal(
        cli(
            "prompt",
            "show",
            "--sample",
            "0",
            "-d",
            dataset,
            "--prompt",
            prompt_file(tmp_path, **{field: value}),
            "--data-dir",
            data_root,
        )
    )
    assert f"[fr]: {says}" in err


def test_a_sweep_name_cannot_write_outside_results(tmp_path, cli, data_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    sweep = tmp_path / "work" / "evil.toml"
    sweep.write_text('name = "../../escaped"\n[[models]]\nmodel = "baseline"\n', encoding="utf-8")
    err = one_line_refusal(cli("sweep", sweep, "--dry-run", "--data-dir", data_root))
    assert "name" in err and not (tmp_path.parent / "escaped").exists() and not list(tmp_path.rglob("escaped"))


def test_a_finetuned_name_cannot_read_outside_the_registry(tmp_path, dataset, cli, data_root, monkeypatch):
    registry = tmp_path / "registry"
    registry.mkdir()
    (tmp_path / "outside.json").write_text('{"name": "x", "path": "/", "kind": "encoder"}', encoding="utf-8")
    monkeypatch.setenv("TOXBENCH_REGISTRY", str(registry))
    err = one_line_refusal(
        cli("run", "-m", "finetuned:../outside", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root)
    )
    assert "../outside" in err and not (tmp_path / "runs").exists()


def in_time(call, seconds=20):
    """call() in a thread; fails (rather than hanging the suite) when it has not returned in time."""
    result = []

    def target():
        try:
            result.append(call())
        except BaseException as exc:  # handed to the test's thread
            result.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert result, f"still running after {seconds} s (a hang)"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


@pytest.mark.parametrize("kind", ["fifo", "zero", "directory"])
def test_a_price_table_or_sweep_file_that_is_not_a_regular_file_is_refused(tmp_path, dataset, cli, data_root, kind):
    if kind == "fifo":
        path = tmp_path / "prices.toml"
        os.mkfifo(path)
    else:
        path = "/dev/zero" if kind == "zero" else tmp_path
    err = one_line_refusal(
        in_time(
            lambda: cli(
                "run",
                "-m",
                "baseline",
                "-d",
                dataset,
                "--prices",
                path,
                "--out",
                tmp_path / "runs",
                "--data-dir",
                data_root,
            )
        )
    )
    assert str(path) in err
    err = one_line_refusal(in_time(lambda: cli("sweep", path, "--dry-run", "--data-dir", data_root)))
    assert str(path) in err
    err = one_line_refusal(in_time(lambda: cli("data", "show", path, "--data-dir", data_root)))
    assert str(path) in err


def test_a_damaged_registry_entry_is_one_line_in_models_list(tmp_path, cli, monkeypatch):
    registry = tmp_path / "registry"
    registry.mkdir()
    (registry / "broken.json").write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("TOXBENCH_REGISTRY", str(registry))
    err = one_line_refusal(cli("models", "list"))
    assert "broken.json: a damaged registry entry" in err
