"""Issue 28: records read back are checked by value; lone surrogates in a data file are one line;
CSVs meant for people hold no live formula; a model name cannot break leaderboard.md."""

import csv
import json
import re

import pytest
from hostile_helpers import one_line_refusal

KEY = "sk-tables-canary-0123456789abcdefghij"


@pytest.fixture
def baseline_run(tmp_path, cli, data_root, dataset):
    code, out, err = cli(
        "run", "-m", "baseline", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root, "--json"
    )
    assert code == 0, err
    return json.loads(out)["run_dir"]


@pytest.mark.parametrize(
    "field, value", [("status", "OK"), ("pred", 2), ("pred", True), ("score", 7.5), ("gold", "1"), ("status", None)]
)
def test_a_record_with_a_wrong_value_is_named_not_scored(tmp_path, cli, data_root, dataset, baseline_run, field, value):
    from pathlib import Path

    path = Path(baseline_run) / "predictions.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[2])
    first[field] = value
    lines[2] = json.dumps(first)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    err = one_line_refusal(cli("compare", baseline_run, baseline_run))
    assert "line 3" in err and field in err
    code, out, err = cli("runs", "repair", baseline_run)  # was a KeyError for status "OK"
    assert code == 0 and "dropped line 3" in out, err
    assert len(path.read_text(encoding="utf-8").splitlines()) == 9


@pytest.mark.parametrize("where", ["text", "id"])
def test_a_lone_surrogate_in_a_jsonl_file_is_one_line_and_starts_no_run(tmp_path, cli, data_root, where):
    path = tmp_path / "texts.jsonl"
    bad = {"text": "salut \\ud800 toi", "id": "a"} if where == "text" else {"text": "salut", "id": "\\ud800"}
    path.write_text(
        '{"id": "0", "text": "bonjour", "label": 0}\n'
        + "{"
        + ", ".join(f'"{k}": "{v}"' for k, v in bad.items())
        + ', "label": 1}\n',
        encoding="utf-8",
    )
    err = one_line_refusal(
        cli("run", "-m", "baseline", "-d", path, "--out", tmp_path / "runs", "--data-dir", data_root)
    )
    assert "line 2" in err and "surrogate" in err and not (tmp_path / "runs").exists()
    err = one_line_refusal(cli("data", "show", path, "--data-dir", data_root))
    assert "line 2" in err


FORMULAS = ['=HYPERLINK("http://evil.example","clic") TOX', "+33 6 12 TOX", "@SUM(A1:A9) merci", "-2+3 bonjour"]


def test_texts_that_look_like_formulas_are_neutralised_in_csvs_for_people(tmp_path, fake, cli, data_root, monkeypatch):
    from test_annotate import synthetic

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    fake.responder = synthetic
    comments = tmp_path / "comments.csv"
    with open(comments, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["msg_id", "content"])
        writer.writerows([[f"=id{i}", text] for i, text in enumerate(FORMULAS)] + [["plain", "à demain"]])
    out = tmp_path / "annot"
    code, _, err = cli(
        "annotate",
        "run",
        comments,
        "--model",
        "openai:gpt-4o-mini",
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        out,
        "--timeout",
        "5",
        "--data-dir",
        data_root,
    )
    assert code == 0, err
    table = list(csv.reader(open(out / "annotations.csv", encoding="utf-8")))
    cells = [c for row in table for c in row]
    assert (
        all(not c.startswith(("=", "+", "@")) for c in cells)
        and '\'=HYPERLINK("http://evil.example","clic") TOX' in cells
    )
    assert not any(c.startswith("-") and not c.lstrip("-").replace(".", "").isdigit() for c in cells)
    queue = tmp_path / "queue.csv"
    code, _, err = cli("annotate", "queue", out, "--out", queue)
    assert code == 0, err
    rows = list(csv.DictReader(open(queue, encoding="utf-8")))
    assert {r["msg_id"] for r in rows} >= {"'=id0", "'=id1"} and all(
        not r["content"].startswith(("=", "+", "@", "-")) for r in rows
    )
    for row in rows:  # a labeller fills the queue in; the ids come back as written
        row["label"] = "1" if "TOX" in row["content"] else "0"
    with open(queue, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, _out_text, err = cli("annotate", "merge", out, queue)
    assert code == 0, err
    labels = {r["msg_id"]: r["label"] for r in csv.DictReader(open(out / "labels.csv", encoding="utf-8"))}
    assert labels["'=id0"] == "1" and labels["'=id2"] == "0"


def test_a_model_name_with_a_pipe_or_html_keeps_leaderboard_md_a_table(
    tmp_path, fake, cli, data_root, dataset, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    name = "gpt|<script>alert(1)</script>"
    code, _, err = cli(
        "run",
        "-m",
        f"openai:{name}",
        "-d",
        dataset,
        "--model-arg",
        f"base_url={fake.url}/v1",
        "--out",
        tmp_path / "runs",
        "--timeout",
        "1.2",
        "--max-retries",
        "1",
        "--data-dir",
        data_root,
        "--no-cache",
    )
    assert code == 0, err
    code, _, err = cli(
        "leaderboard",
        "-d",
        dataset,
        "--runs",
        tmp_path / "runs",
        "--no-published",
        "--out",
        tmp_path / "board",
        "--data-dir",
        data_root,
        "-q",
    )
    assert code == 0, err
    text = (tmp_path / "board" / "leaderboard.md").read_text(encoding="utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    cells = lambda line: [c for c in line.replace("\\|", "").split("|")]  # noqa: E731 - an escaped pipe is inside a cell
    assert len(cells(row)) == len(cells(header))
    assert "<script>" in text and "<script>" not in re.sub(
        r"`[^`]*`", "", text
    )  # only inside code spans, shown not run
    assert "&lt;script&gt;" in text
