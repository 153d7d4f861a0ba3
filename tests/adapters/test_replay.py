"""Replaying prediction files: both layouts, unreadable predictions, joins that do not fit."""

import pytest

from toxbench.adapters.replay import ReplayAdapter, parse_prediction, parse_published_name
from toxbench.data.datasets import load_dataset

NAMES = [  # stem -> dataset, model, prompt, shots
    ("gpt-4o-mini-detailed-tf-fr", "toxifrench", "gpt-4o-mini", "detailed", "0"),
    ("qwen-3-4b-1shot-nt-tf-fr", "toxifrench", "qwen-3-4b", "detailed", "1nt"),
    ("deepseek-v3-10shot-5-5-tf-fr", "toxifrench", "deepseek-v3", "detailed", "10"),
    ("qwen-2-5-3b-4shot-2-2-tf-fr", "toxifrench", "qwen-2-5-3b", "detailed", "4"),
    ("mistral-7b-simple-local-tf-fr", "toxifrench", "mistral-7b-local", "simple", "0"),
    ("camembert-sfc-tf-fr-finetuned-v2", "toxifrench", "camembert-sfc-finetuned-v2", None, None),
    ("rec_soap_dpo_augmented-rtplx-tf-fr", "rtplx-fr", "rec_soap_dpo_augmented", None, None),
    ("rec_soap_dpo_augmented-hate-day-tf-fr", "hateday-fr", "rec_soap_dpo_augmented", None, None),
    ("rec_soap_dpo_augmented-jigsawen", "jigsaw-en", "rec_soap_dpo_augmented", None, None),
    ("eng-o4-mini", "jigsaw-en", "o4-mini", None, None),
    ("gemini-2.0-flash_simple_prompt", None, "gemini-2.0-flash", "simple", "0"),
    ("o4-mini", None, "o4-mini", None, None),
    ("deepseek-chat-detailed-hateday", "hateday-fr", "deepseek-chat", "detailed", "0"),
]


@pytest.mark.parametrize("stem,dataset,model,prompt,shots", NAMES, ids=[n[0] for n in NAMES])
def test_file_names(stem, dataset, model, prompt, shots):
    name = parse_published_name(stem)
    assert (name.dataset, name.model, name.prompt, name.shots) == (dataset, model, prompt, shots)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("1", 1),
        ("0", 0),
        ("1.0", 1),
        ("0.0", 0),
        ("1.", 1),
        ("", None),
        ("nan", None),
        ("NaN", None),
        ("-1", None),
        ("toxique", None),
        (None, None),
    ],
)
def test_prediction_values(value, expected):
    assert parse_prediction(value) == expected


@pytest.fixture
def tiny(tmp_path, data):
    """A 4-sample dataset with ids, one text appearing twice."""
    f = tmp_path / "tiny.csv"
    f.write_text("id,text,label\na,bonjour,0\nb,va te faire,1\nc,bonjour,0\nd,idiot,1\n", encoding="utf-8")
    return load_dataset(str(f), data).samples


def replay(tmp_path, samples, text, name="preds.csv"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return ReplayAdapter(f, "0" * 64).replay(samples)


def test_legacy_layout_joins_on_id_and_keeps_raw_of_unreadable_rows(tmp_path, tiny):
    pairs, report = replay(
        tmp_path,
        tiny,
        "msg_id,content,label,toxicity_score,prediction\n"
        "a,bonjour,0,non-toxique,0.0\nb,va te faire,1,toxique,1.0\nc,bonjour,0,je ne sais pas,\nd,idiot,1,???,-1\n",
    )
    got = {p.sample_id: (p.pred, p.status, p.gold) for p in pairs}
    assert got == {"a": (0, "ok", 0), "b": (1, "ok", 1), "c": (None, "unparseable", 0), "d": (None, "unparseable", 1)}
    raw_c = next(p.raw for p in pairs if p.sample_id == "c")
    assert '"toxicity_score":"je ne sais pas"' in raw_c and '"prediction":""' in raw_c
    assert report.clean and report.recorded == 4


def test_newer_layout_joins_duplicate_texts_in_order(tmp_path, tiny):
    pairs, report = replay(tmp_path, tiny, "content,label\nbonjour,1\nva te faire,1\nbonjour,0\nidiot,text\n")
    got = [(p.sample_id, p.pred) for p in pairs]
    assert got == [("a", 1), ("b", 1), ("c", 0), ("d", None)]  # k-th "bonjour" -> k-th sample
    assert report.clean


def test_rows_that_do_not_join_are_reported_not_dropped_silently(tmp_path, tiny):
    pairs, report = replay(tmp_path, tiny, "content,label\nbonjour,0\nbonjour,0\nbonjour,1\nunknown text,1\n")
    assert [p.sample_id for p in pairs] == ["a", "c"]
    assert report.duplicate_rows == [4] and report.unmatched_rows == [5]
    assert report.missing_samples == 2
    problems = " | ".join(report.problems())
    assert "1 rows match no sample (lines 5)" in problems and "covers 2 of 4 samples" in problems


def test_gold_mismatch_is_reported(tmp_path, tiny):
    _, report = replay(tmp_path, tiny, "msg_id,content,label,prediction\na,bonjour,1,1\nb,x,1,1\nc,x,0,0\nd,x,1,1\n")
    assert report.gold_mismatches == ["a"] and not report.clean


def test_scores_only_from_real_probabilities(tmp_path, tiny):
    head = "msg_id,content,label,toxicity_score,prediction\n"
    numeric, _ = replay(tmp_path, tiny, head + "a,x,0,0.1,0\nb,x,1,0.93,1\nc,x,0,0.2,0\nd,x,1,0.7,1\n")
    assert [p.score for p in numeric] == [0.1, 0.93, 0.2, 0.7]
    hard, _ = replay(tmp_path, tiny, head + "a,x,0,0,0\nb,x,1,1,1\nc,x,0,0,0\nd,x,1,1,1\n")
    assert all(p.score is None for p in hard)
    perspective, _ = replay(
        tmp_path,
        tiny,
        head
        + "".join(
            f"{i},x,0,\"{{'TOXICITY': {s}, 'INSULT': 0.9}}\",0\n" for i, s in zip("abcd", (0.1, 0.5, 0.25, 0.75))
        ),
    )
    assert [p.score for p in perspective] == [0.1, 0.5, 0.25, 0.75]


def published(data, stem):
    return ReplayAdapter(data.path(f"toxifrench/predictions/{stem}.csv"), "0" * 64)


def test_release_file_with_nan_predictions(data):
    pairs, report = published(data, "google-gemma-2-2b-it").replay(load_dataset("jigsaw-fr", data).samples)
    statuses = [p.status for p in pairs]
    assert len(pairs) == 396 and statuses.count("unparseable") == 44 and report.clean


def test_release_files_with_minus_one(data):
    samples = load_dataset("toxifrench", data).samples
    pairs, report = published(data, "rec_soap-fullanswer-tf-fr").replay(samples)
    assert len(pairs) == 1388 and [p.status for p in pairs].count("unparseable") == 1 and report.clean
    pairs, report = published(data, "rec_soap_dpo_train-hyperpar-tf-fr").replay(samples)
    assert len(pairs) == 64 and {p.status for p in pairs} == {"unparseable"}
    assert report.missing_samples == 1388 - 64 and not report.unmatched_rows


def test_release_hateday_file_joins_both_copies_of_the_repeated_tweet(data):
    samples = load_dataset("hateday-fr", data).samples
    pairs, report = published(data, "gpt-4o-detailed-hateday").replay(samples)
    assert len(pairs) == 1000 and report.clean  # not the 1004 rows a plain text join would make


def test_release_english_jigsaw_file_joins_on_the_english_text(data):
    pairs, report = published(data, "rec_soap_dpo_augmented-jigsawen").replay(load_dataset("jigsaw-en", data).samples)
    assert len(pairs) == 396 and report.clean
    _, wrong = published(data, "rec_soap_dpo_augmented-jigsawen").replay(load_dataset("jigsaw-fr", data).samples)
    assert len(wrong.unmatched_rows) == 396
