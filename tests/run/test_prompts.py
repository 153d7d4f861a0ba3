"""Prompt rendering: byte-exact to the release's rule, reproducible, every shot configuration."""

import csv
import json
import random
import subprocess
import sys

import pytest

from toxbench.errors import ToxbenchError
from toxbench.run.prompts import SHOTS, make_renderer, prompt_names, release_examples

TEXT = "Va te faire voir, « sale type »"


def release_messages(data_root, prompt: str, lang: str, n_toxic: int, n_clean: int, seed: int, text: str) -> list[dict]:
    """The messages as the release's benchmark.py builds them (config_experiment, insert_examples and
    a predictor's generate_messages), written out independently; its unseeded shuffle is seeded here."""
    root = data_root / "toxifrench"
    language = {"fr": "french", "en": "english"}[lang]
    system = (root / f"prompts/system_prompt_{language}.txt").read_text("utf-8").strip()
    name = "fewshot_toxicity_french" if n_toxic + n_clean else f"{prompt}_toxicity_{language}"
    template = (root / f"prompts/{name}.txt").read_text("utf-8").strip()
    if n_toxic + n_clean:
        pool = json.loads((root / "benchmark_config.json").read_text("utf-8"))["global"]["few_shot_examples"]
        examples = [f"Message :\n« {t} »\nCe message est-il toxique ?\ntoxique" for t in pool["toxic"][:n_toxic]]
        examples += [
            f"Message :\n« {t} »\nCe message est-il toxique ?\nnon-toxique" for t in pool["non_toxic"][:n_clean]
        ]
        random.Random(seed).shuffle(examples)
        template = template.replace("<insert here>", "\n\n".join(examples))
    question = "Ce message est-il toxique ?" if lang == "fr" else "Is this message toxic?"
    return [{"role": "system", "content": system}, {"role": "user", "content": f"{template} « {text} »\n{question}\n"}]


@pytest.fixture(scope="module")
def benchmark_texts(data_root):
    with open(data_root / "toxifrench/benchmark/ToxiFrenchBalanced.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [rows[i]["content"] for i in (0, 1, 7, 500, 1387)] + [TEXT]


@pytest.mark.parametrize("prompt,lang", [("simple", "fr"), ("detailed", "fr"), ("simple", "en"), ("detailed", "en")])
def test_zero_shot_is_byte_identical_to_the_release(data, data_root, benchmark_texts, prompt, lang):
    renderer = make_renderer(prompt, lang, "0", 0, data)
    for text in benchmark_texts:
        assert renderer.messages(text) == release_messages(data_root, prompt, lang, 0, 0, 0, text)


@pytest.mark.parametrize("shots", ["1t", "1nt", "4", "10"])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_few_shot_is_byte_identical_to_the_release(data, data_root, benchmark_texts, shots, seed):
    renderer = make_renderer("detailed", "fr", shots, seed, data)
    for text in benchmark_texts:
        assert renderer.messages(text) == release_messages(data_root, "detailed", "fr", *SHOTS[shots], seed, text)


def test_known_bytes_of_a_release_prompt(data):
    """Spot checks that do not depend on the reference above: no newline after "Message :", none
    after the system prompt, and 1-shot toxic always shows the release's first toxic example."""
    system, user = make_renderer("detailed", "fr", "0", 0, data).messages("Salut")
    assert user["content"].endswith("- non-toxique\n\nMessage : « Salut »\nCe message est-il toxique ?\n")
    assert system["content"].endswith("sans interpréter d’intentions extérieures ni de contexte inconnu.")
    for seed in (0, 1, 2):
        one = make_renderer("detailed", "fr", "1t", seed, data).messages("Salut")[1]["content"]
        assert (
            "Exemples:\nMessage :\n« Je pensais pas qu'on pouvait encore plus aplatir la face d'un asiat' :rire: »\n"
            "Ce message est-il toxique ?\ntoxique\n\n---" in one
        )


def test_random_pool_draws_other_examples_and_is_recorded(data):
    pool = release_examples(data)
    drawn = set()
    for seed in range(6):
        r = make_renderer("detailed", "fr", "1t", seed, data, shot_pool="random")
        assert r.identity()["shot_pool"] == "random"
        drawn |= {t for t in pool[1] if f"« {t} »" in r.messages("x")[1]["content"]}
    assert len(drawn) > 1  # the release's pool would give pool[1][0] every time
    assert make_renderer("detailed", "fr", "1t", 0, data).identity()["shot_pool"] == "first"
    with pytest.raises(ToxbenchError, match="--shot-pool 'some'"):
        make_renderer("detailed", "fr", "4", 0, data, shot_pool="some")


@pytest.mark.parametrize("shots", list(SHOTS))
@pytest.mark.parametrize(
    "lang,question,labels",
    [
        ("fr", "Ce message est-il toxique ?", ("non-toxique", "toxique")),
        ("en", "Is this message toxic?", ("non-toxic", "toxic")),
    ],
)
def test_few_shot_examples_have_the_configured_counts(data, shots, lang, question, labels):
    user = make_renderer("detailed", lang, shots, 0, data).messages(TEXT)[1]["content"]
    pool = release_examples(data)
    n_toxic, n_clean = SHOTS[shots]
    label = "Message :" if lang == "fr" else "Message:"
    assert sum(f"{label}\n« {t} »\n{question}\n{labels[1]}\n" in user for t in pool[1]) == n_toxic
    assert sum(f"{label}\n« {t} »\n{question}\n{labels[0]}\n" in user for t in pool[0]) == n_clean
    assert "<insert here>" not in user
    assert user.endswith(f" « {TEXT} »\n{question}\n")


def test_examples_are_joined_by_a_blank_line(data):
    user = make_renderer("detailed", "fr", "4", 0, data).messages(TEXT)[1]["content"]
    block = user.split("Exemples:\n", 1)[1].split("\n\n---\n", 1)[0]
    parts = block.split("\n\n")
    assert len(parts) == 4 and all(
        p.startswith("Message :\n« ")
        and p.endswith(("»\nCe message est-il toxique ?\ntoxique", "»\nCe message est-il toxique ?\nnon-toxique"))
        for p in parts
    )


def test_seed_decides_order_and_is_reproducible_across_processes(data, data_root):
    a = make_renderer("detailed", "fr", "10", 3, data).messages(TEXT)
    assert a == make_renderer("detailed", "fr", "10", 3, data).messages(TEXT)
    assert a != make_renderer("detailed", "fr", "10", 4, data).messages(TEXT)
    code = (
        "from toxbench.data.datadir import DataDir; from toxbench.run.prompts import make_renderer; "
        f"import sys; sys.stdout.buffer.write(make_renderer('detailed','fr','10',3,DataDir({str(data_root)!r})).messages({TEXT!r})[1]['content'].encode())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout.decode("utf-8")
    assert other == a[1]["content"]


def test_identity_changes_with_everything_that_changes_the_messages(data):
    frames = {
        make_renderer(p, lang, k, s, data, pool).identity()["prompt_sha256"]
        for p, lang, k, s, pool in [
            ("simple", "fr", "0", 0, "first"),
            ("detailed", "fr", "0", 0, "first"),
            ("detailed", "en", "0", 0, "first"),
            ("detailed", "fr", "4", 0, "first"),
            ("detailed", "fr", "4", 1, "first"),
            ("detailed", "fr", "4", 1, "random"),
        ]
    }
    assert len(frames) == 6


def test_user_prompt_file(tmp_path, data):
    (tmp_path / "sys.txt").write_text("Be strict.", encoding="utf-8")
    (tmp_path / "t.txt").write_text("Is it toxic?\nMessage:\n", encoding="utf-8")
    (tmp_path / "mine.toml").write_text(
        '[en]\nsystem = "sys.txt"\ntemplate = "t.txt"\nquestion = "Toxic?"\nmessage_label = "Message:"\nlabels = ["no", "yes"]\n',
        encoding="utf-8",
    )
    r = make_renderer(str(tmp_path / "mine.toml"), "en", "0", 0, data)
    assert r.messages("hi") == [
        {"role": "system", "content": "Be strict."},
        {"role": "user", "content": "Is it toxic?\nMessage: « hi »\nToxic?\n"},
    ]


def test_errors(data):
    assert prompt_names() == ["detailed", "simple"]
    with pytest.raises(ToxbenchError, match="no few-shot template"):
        make_renderer("simple", "fr", "4", 0, data)
    with pytest.raises(ToxbenchError, match="unknown prompt 'fancy'"):
        make_renderer("fancy", "fr", "0", 0, data)
    with pytest.raises(ToxbenchError, match="has no 'de' version"):
        make_renderer("detailed", "de", "0", 0, data)
    with pytest.raises(ToxbenchError, match="unknown shot configuration '3'"):
        make_renderer("detailed", "fr", "3", 0, data)
