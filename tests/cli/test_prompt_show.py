"""`toxbench prompt show`: the messages it prints are the ones a run sends, byte for byte."""

import json

import pytest

CANARY = "sk-test-prompt-show"


@pytest.mark.parametrize("shots,pool", [("0", "first"), ("4", "first"), ("10", "random")])
def test_json_is_what_the_run_sent(cli, fake, dataset, data_root, tmp_path, monkeypatch, shots, pool):
    monkeypatch.setenv("OPENAI_API_KEY", CANARY)
    code, out, err = cli(
        "run",
        "-m",
        "openai:gpt-4o-mini",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--lang",
        "fr",
        "--shots",
        shots,
        "--seed",
        "3",
        "--shot-pool",
        pool,
        "--limit",
        "2",
        "--out",
        tmp_path / "runs",
        "--data-dir",
        data_root,
        "--no-cache",
        "--json",
    )
    assert code == 0, err
    sent = {r["body"]["messages"][1]["content"].rsplit("« ", 1)[1]: r["body"]["messages"] for r in fake.requests}
    assert len(sent) == 2
    for sample_id in ("0", "1"):
        code, out, err = cli(
            "prompt",
            "show",
            "--sample",
            sample_id,
            "-d",
            dataset,
            "--lang",
            "fr",
            "--shots",
            shots,
            "--seed",
            "3",
            "--shot-pool",
            pool,
            "--data-dir",
            data_root,
            "--json",
        )
        assert code == 0, err
        shown = json.loads(out)
        assert shown == sent[shown[1]["content"].rsplit("« ", 1)[1]]
        assert [m["role"] for m in shown] == ["system", "user"]


def test_plain_output_and_bad_input(cli, data_root):
    code, out, err = cli(
        "prompt",
        "show",
        "--sample",
        "anon_msg_b20f2e8b51ed",
        "--prompt",
        "detailed",
        "--shots",
        "1t",
        "--data-dir",
        data_root,
    )
    assert code == 0, err
    assert out.startswith("----- system (")
    assert (
        "\nMessage : « Le racisme est devenu le crime ultime en Occident\nCritiquer l'immigration = suicide social »\nCe message est-il toxique ?\n"
        in out
    )
    assert (
        "« Je pensais pas qu'on pouvait encore plus aplatir la face d'un asiat' :rire: »\nCe message est-il toxique ?\ntoxique"
        in out
    )
    code, out, err = cli("prompt", "show", "--sample", "nope", "--data-dir", data_root)
    assert (
        code == 2
        and out == ""
        and err.count("\n") == 1
        and "--sample 'nope': no such id in toxifrench; ids look like anon_msg_" in err
    )
    code, out, err = cli(
        "prompt",
        "show",
        "--sample",
        "anon_msg_b20f2e8b51ed",
        "--shots",
        "4",
        "--shot-pool",
        "all",
        "--data-dir",
        data_root,
    )
    assert code == 2 and "--shot-pool 'all'" in err
