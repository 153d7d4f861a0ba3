"""Every registered dataset's counts, balance, ids and languages, and the RTP-LX binarisation."""

import csv
import json
from collections import Counter

import pytest

from toxbench.data.datasets import listed_files, load_dataset, release_overlap, rtplx_label
from toxbench.errors import DataError

EXPECTED = {  # name: (samples, toxic, non-toxic, language)
    "toxifrench": (1388, 694, 694, "fr"),
    "rtplx-fr": (672, 336, 336, "fr"),
    "jigsaw-en": (396, 198, 198, "en"),
    "jigsaw-fr": (396, 198, 198, "fr"),
    "hateday-fr": (1000, 500, 500, "fr"),
    "rtplx:FR": (672, 336, 336, "fr"),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_counts_balance_language_and_unique_ids(data, name):
    ds = load_dataset(name, data)
    n, toxic, clean, lang = EXPECTED[name]
    labels = Counter(s.label for s in ds.samples)
    assert (len(ds), labels[1], labels[0]) == (n, toxic, clean)
    assert {s.lang for s in ds.samples} == {lang}
    assert len({s.id for s in ds.samples}) == n
    assert all(s.text.strip() for s in ds.samples)


def test_toxifrench_ids_are_the_release_msg_ids(data):
    ds = load_dataset("toxifrench", data)
    assert ds.samples[0].id == "anon_msg_468ffd36870c" and ds.samples[0].label == 1


def test_hateday_keeps_both_copies_of_the_repeated_tweet(data):
    ids = [s.id for s in load_dataset("hateday-fr", data).samples]
    assert "1572335952135331840" in ids and "1572335952135331840#2" in ids


def test_jigsaw_en_and_fr_are_the_same_rows_in_two_languages(data):
    en, fr = load_dataset("jigsaw-en", data), load_dataset("jigsaw-fr", data)
    assert [s.id for s in en.samples] == [s.id for s in fr.samples]
    assert [s.label for s in en.samples] == [s.label for s in fr.samples]
    assert en.samples[0].text.startswith("Combining 'Official requests")
    assert fr.samples[0].text.startswith("Combiner la section")
    assert en.sha256 != fr.sha256


def test_rtplx_rule_reproduces_all_672_published_labels(data):
    rows = [json.loads(line) for line in open(data.path("rtp-lx/RTP_LX_FR.jsonl"), encoding="utf-8")]
    by_prompt = {r["Prompt"]: r for r in rows}
    with open(data.path("toxifrench/benchmark/RTP-LX-french.csv"), encoding="utf-8", newline="") as fh:
        published = list(csv.DictReader(fh))
    assert len(published) == 672
    mismatches = [
        p["content"] for p in published if rtplx_label(by_prompt[p["content"]]["Annotations"]) != int(p["label"])
    ]
    assert mismatches == []


def test_rtplx_rule_on_hand_made_annotations():
    base = dict.fromkeys(
        ["IdentityAttack", "Bias", "Microaggression", "Violence", "SelfHarm", "Insult", "SexualContent"], 1.0
    )
    assert rtplx_label({"Toxicity": 5.0, **base}) == 0  # Toxicity alone does not count
    assert rtplx_label({"Toxicity": 1.0, **base, "Insult": 1.3333}) == 1


def test_rtplx_sample_is_seeded_balanced_and_keeps_every_minority_row(data):
    fr = load_dataset("rtplx:FR", data)
    again = load_dataset("rtplx:fr", data)
    other_seed = load_dataset("rtplx:FR:7", data)
    assert [s.id for s in fr.samples] == [s.id for s in again.samples]
    assert [s.id for s in fr.samples] != [s.id for s in other_seed.samples]
    assert fr.sha256 != other_seed.sha256
    published = {s.text for s in load_dataset("rtplx-fr", data).samples if s.label == 0}
    assert {s.text for s in fr.samples if s.label == 0} == published  # all 336 non-toxic prompts
    # the toxic half is another draw than the release's: data show says how many rows are shared
    assert release_overlap(fr, data).startswith("486 of its 672 rows are in the release's balanced file (672 rows)")
    assert release_overlap(load_dataset("rtplx-fr", data), data) is None


def test_rtplx_english_has_no_texts_and_is_refused(data, data_root):
    rows = [json.loads(line) for line in open(data_root / "rtp-lx/RTP_LX_EN.jsonl", encoding="utf-8")]
    assert {r["Prompt"] for r in rows} == {"NA"}  # why: the upstream file carries no English prompt
    with pytest.raises(
        DataError, match='rtplx:EN: RTP-LX\'s English file has no texts: its 999 Prompt fields are all "NA"'
    ):
        load_dataset("rtplx:EN", data)
    assert "rtplx:EN" not in {name for name, *_ in listed_files(data)}


def test_a_file_whose_texts_are_missing_or_constant_is_refused(tmp_path, data):
    constant = tmp_path / "constant.jsonl"
    constant.write_text("".join(json.dumps({"text": "NA", "label": i % 2}) + "\n" for i in range(6)), encoding="utf-8")
    with pytest.raises(DataError, match="constant.jsonl: all 6 texts are 'NA'"):
        load_dataset(str(constant), data)
    mostly = tmp_path / "mostly.csv"
    mostly.write_text("text,label\nNA,1\nnan,0\nN/A,1\nbonjour,0\n", encoding="utf-8")
    with pytest.raises(DataError, match="mostly.csv: 3 of 4 texts are placeholders such as 'NA'"):
        load_dataset(str(mostly), data)
    fine = tmp_path / "fine.csv"
    fine.write_text("text,label\nNA,1\nbonjour,0\nsalut,0\n", encoding="utf-8")
    assert len(load_dataset(str(fine), data)) == 3  # one placeholder among real texts is the user's business


@pytest.mark.parametrize("locale,lang", [("DE", "de"), ("IT", "it"), ("ES", "es"), ("ZH-Hans", "zh-Hans")])
def test_other_rtplx_locales_are_balanced(data, locale, lang):
    ds = load_dataset(f"rtplx:{locale}", data)
    labels = Counter(s.label for s in ds.samples)
    assert labels[0] == labels[1] > 200
    assert {s.lang for s in ds.samples} == {lang}
    assert ds.name == f"rtplx:{locale}"
    assert len({s.text for s in ds.samples}) > 0.9 * len(ds)


def test_unknown_names_say_what_exists(data):
    with pytest.raises(DataError, match="unknown dataset 'toxifrnech'; known: toxifrench"):
        load_dataset("toxifrnech", data)
    with pytest.raises(DataError, match="unknown RTP-LX locale 'XX'"):
        load_dataset("rtplx:XX", data)
