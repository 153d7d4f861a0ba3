"""Gold spans: the three span datasets as their READMEs describe them, and a user file's `spans`
column in both forms, with what falls outside its text dropped and counted."""

from __future__ import annotations

import json

import pytest

from toxbench.data.datasets import load_dataset
from toxbench.errors import DataError


def test_toxic_spans_splits(data):
    for split, n, empty in (("train", 7939, 485), ("trial", 690, 43), ("test", 2000, 394)):
        ds = load_dataset(f"toxicspans-en:{split}", data)
        assert len(ds) == n and all(s.label == 1 and s.lang == "en" for s in ds.samples)
        assert sum(not s.spans for s in ds.samples) == empty and ds.has_spans and ds.notes == ()
    first = load_dataset("toxicspans-en:test", data).samples[0]
    assert [first.text[a:b] for a, b in first.spans] == ["ABNORMAL", "sexist rubbish"]


def test_state_toxicn_spans_are_hateful_arguments(data):
    ds = load_dataset("state-toxicn:test", data)
    assert (len(ds), sum(s.label for s in ds.samples)) == (1605, 1002)
    first = ds.samples[0]
    assert [first.text[a:b] for a, b in first.spans] == ["说河南人偷井盖的", "就会舔北京"]
    assert all(not s.spans for s in ds.samples if s.label == 0)
    with_targets = load_dataset("state-toxicn:test:target+argument", data)
    assert [with_targets.samples[0].text[a:b] for a, b in with_targets.samples[0].spans] == [
        "说河南人偷井盖的",
        "北京人",
        "东北人",
        "东北人就会舔北京",
    ]  # every occurrence of a substring; touching spans join
    assert with_targets.sha256 != ds.sha256 and with_targets.name == "state-toxicn:test:target+argument"
    # arguments the post does not contain are dropped and counted, never guessed
    assert ds.notes and ds.notes[0].startswith("6 span substrings not in their text dropped")
    with pytest.raises(DataError, match="write state-toxicn:test .arguments. or state-toxicn:test:target.argument"):
        load_dataset("state-toxicn:test:targets", data)


def test_cold_has_labels_only(data):
    for split, n, toxic in (("train", 25726, 12723), ("dev", 6431, 3211), ("test", 5323, 2107)):
        ds = load_dataset(f"cold:{split}", data)
        assert (len(ds), sum(s.label for s in ds.samples)) == (n, toxic) and not ds.has_spans
        assert len({s.id for s in ds.samples}) == n  # the file's own index repeats; ids are by row


def test_user_file_spans_both_forms(tmp_path, data):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"text": "you idiot", "label": 1, "spans": [4, 5, 6, 7, 8]},
        {"text": "shut up, moron", "label": 1, "spans": [[0, 7], [9, 14]]},
        {"text": "have a nice day", "label": 0, "spans": []},
        {"text": "bad offsets", "label": 1, "spans": [0, 1, 2, 40]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds = load_dataset(str(path), data)
    assert [s.spans for s in ds.samples] == [((4, 9),), ((0, 7), (9, 14)), (), ((0, 3),)]
    assert ds.notes == (f"1 span offsets outside their text dropped (first at {path}: line 4)",)
    csv = tmp_path / "mine.csv"
    csv.write_text('text,label,spans\n"you idiot",1,"[[4, 9]]"\n"fine",0,\n')
    assert [s.spans for s in load_dataset(str(csv), data).samples] == [((4, 9),), None]


@pytest.mark.parametrize(
    "cell, message", [('"[[4, 9, 1]]"', "neither an offset nor a .start, end. pair"), ('"oops"', "is not JSON")]
)
def test_user_file_bad_spans_name_the_line(tmp_path, data, cell, message):
    csv = tmp_path / "bad.csv"
    csv.write_text(f'text,label,spans\n"fine",0,[]\n"you idiot",1,{cell}\n')
    with pytest.raises(DataError, match=f"bad.csv: line 3: .*{message}"):
        load_dataset(str(csv), data)


def test_data_show_marks_gold_spans(cli, data_root):
    code, out, _ = cli("data", "show", "toxicspans-en:test", "--rows", "1", "--data-dir", data_root)
    assert code == 0
    assert "⟦ABNORMAL⟧" in out and "⟦sexist rubbish⟧" in out
    assert "gold spans: 1606 of 2000 annotated samples have a span (394 none)" in out
