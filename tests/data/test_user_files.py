"""Users' own CSV/JSONL files: accepted shapes, and one-line errors naming file, line and fix."""

import json

import pytest

from toxbench.data.datasets import load_dataset
from toxbench.data.tables import Columns


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_csv_with_defaults(tmp_path, data):
    f = write(tmp_path / "mine.csv", 'content,label\n"Bonjour, à tous",0\nVa te faire voir,1\n')
    ds = load_dataset(str(f), data, default_lang="fr")
    assert [(s.text, s.label, s.lang) for s in ds.samples] == [
        ("Bonjour, à tous", 0, "fr"),
        ("Va te faire voir", 1, "fr"),
    ]
    assert ds.samples[0].id == load_dataset(str(f), data).samples[0].id  # stable text-hash ids


def test_jsonl_with_named_columns_ids_and_languages(tmp_path, data):
    rows = [
        {"uid": "a", "body": "hello", "tox": 1.0, "language": "en"},
        {"uid": "b", "body": "salut", "tox": 0, "language": "fr"},
    ]
    f = write(tmp_path / "mine.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    ds = load_dataset(str(f), data, Columns(text="body", label="tox", id="uid", lang="language"))
    assert [(s.id, s.label, s.lang) for s in ds.samples] == [("a", 1, "en"), ("b", 0, "fr")]


def test_identity_follows_file_content(tmp_path, data):
    f = write(tmp_path / "mine.csv", "text,label\na,0\nb,1\n")
    first = load_dataset(str(f), data).sha256
    write(f, "text,label\na,0\nb,0\n")
    assert load_dataset(str(f), data).sha256 != first


BAD_FILES = [
    (
        "no_text.csv",
        "message,label\nhi,0\n",
        "no text column (looked for 'text', 'content'; columns: message, label); name it with --text-col",
    ),
    ("bad_label.csv", "text,label\nok,0\nfine,1\nhmm,maybe\n", "line 4: label 'maybe' in column 'label' is not 0 or 1"),
    ("empty_text.csv", 'text,label\nok,0\n"  ",1\n', "line 3: empty text in column 'text'"),
    (
        "dup_ids.csv",
        "id,text,label\nx,a,0\ny,b,1\nx,c,1\n",
        "line 4: id 'x' already used on line 2; ids must be unique",
    ),
    (
        "latin1.csv",
        "text,label\nok,0\ncafé,1\n".encode("latin-1"),
        "line 3 is not valid UTF-8 (byte 0xe9); re-save the file as UTF-8",
    ),
    ("broken.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": \n', "line 2 is not valid JSON"),
    (
        "multi_line.csv",
        'text,label\n"first\nsecond line",0\nthird,2\n',
        "line 4: label '2' in column 'label' is not 0 or 1",
    ),
    ("empty.csv", "", "the file is empty"),
    ("data.xlsx", "x", "unsupported file type '.xlsx'; use .csv, .tsv or .jsonl"),
]


@pytest.mark.parametrize("name,content,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_input_gives_one_line_error_and_exit_2(tmp_path, cli, name, content, message, data_root):
    f = write(tmp_path / name, content)
    code, out, err = cli("data", "show", f, "--data-dir", data_root)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: {f}") and message in lines[0]


def test_missing_file_and_unknown_column_option(tmp_path, cli, data_root):
    code, _, err = cli("data", "show", tmp_path / "nope.csv", "--data-dir", data_root)
    assert code == 2 and "nope.csv: no such file" in err
    f = write(tmp_path / "ok.csv", "text,label\na,0\n")
    code, _, err = cli("data", "show", f, "--text-col", "body", "--data-dir", data_root)
    assert code == 2 and "no column 'body' for the text (columns: text, label); check --text-col" in err
