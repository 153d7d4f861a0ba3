"""Prompt rendering: byte-exact to the release's rule, reproducible, every shot configuration."""

import subprocess
import sys

import pytest

from toxbench.errors import ToxbenchError
from toxbench.run.prompts import SHOTS, make_renderer, prompt_names, release_examples

TEXT = "Va te faire voir, « sale type »"


def test_zero_shot_is_template_text_and_question(data, data_root):
    r = make_renderer("simple", "fr", "0", 0, data)
    system, user = r.messages(TEXT)
    assert system == {"role": "system", "content": (data_root / "toxifrench/prompts/system_prompt_french.txt").read_text("utf-8")}
    template = (data_root / "toxifrench/prompts/simple_toxicity_french.txt").read_text("utf-8")
    assert user == {"role": "user", "content": template + f" « {TEXT} »\nCe message est-il toxique ?\n"}
    en = make_renderer("detailed", "en", "0", 0, data).messages(TEXT)[1]["content"]
    assert en == (data_root / "toxifrench/prompts/detailed_toxicity_english.txt").read_text("utf-8") + f" « {TEXT} »\nIs this message toxic?\n"


@pytest.mark.parametrize("shots", list(SHOTS))
@pytest.mark.parametrize("lang,question,labels", [("fr", "Ce message est-il toxique ?", ("non-toxique", "toxique")), ("en", "Is this message toxic?", ("non-toxic", "toxic"))])
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
    assert len(parts) == 4 and all(p.startswith("Message :\n« ") and p.count("\n") == 3 for p in parts)


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
    ids = {str(make_renderer(p, lang, k, s, data).identity()) for p, lang, k, s in
           [("simple", "fr", "0", 0), ("detailed", "fr", "0", 0), ("detailed", "en", "0", 0), ("detailed", "fr", "4", 0), ("detailed", "fr", "4", 1)]}
    assert len(ids) == 5


def test_user_prompt_file(tmp_path, data):
    (tmp_path / "sys.txt").write_text("Be strict.", encoding="utf-8")
    (tmp_path / "t.txt").write_text("Is it toxic?\nMessage:\n", encoding="utf-8")
    (tmp_path / "mine.toml").write_text(
        '[en]\nsystem = "sys.txt"\ntemplate = "t.txt"\nquestion = "Toxic?"\nmessage_label = "Message:"\nlabels = ["no", "yes"]\n', encoding="utf-8")
    r = make_renderer(str(tmp_path / "mine.toml"), "en", "0", 0, data)
    assert r.messages("hi") == [{"role": "system", "content": "Be strict."}, {"role": "user", "content": "Is it toxic?\nMessage:\n « hi »\nToxic?\n"}]


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
