"""The CoT annotation pipeline end to end: the release's recorded blocks for its 500 agreement
comments replayed by a loopback OpenAI-compatible server, driven through the real SDK."""

from __future__ import annotations

import csv
import json
import re

import pytest

from toxbench.data.annotated import AGREEMENT, read_rows
from toxbench.run.annotate import AnnotateOptions, annotate
from toxbench.run.cot_steps import load_steps

MESSAGE = re.compile(r"\*\*Message\*\* :\n« (.*?) »\n\n", re.DOTALL)
SCORE = re.compile(r"\*\*Score de toxicité\*\* :\n« (.*?) »\n\n", re.DOTALL)


def release_list(cell: str) -> list[str]:
    """The release's parsed columns are numpy reprs: ['a' 'b'] (a name holding ' is in double quotes)."""
    return [a or b for a, b in re.findall(r"'([^']*)'|\"([^\"]*)\"", cell)]


class Replay:
    """Answers each step's request with the block the release recorded for that comment: the
    step is told by its system prompt, the comment by its text (or, for the conclusion, which
    sees only the score, by its score block; the release kept only the parsed conclusion, so the
    block is written as the header asks, `Conclusion : N`)."""

    def __init__(self, rows: list[dict], steps) -> None:
        self.by_text = {r["content"]: r for r in rows}
        self.by_score = {r["toxicite_score"]: r for r in rows}
        self.step_of = {s.system: s.key for s in steps}
        self.seen: list[tuple[str, str]] = []  # (step, user message)

    def __call__(self, body: dict) -> str:
        system, user = body["messages"][0]["content"], body["messages"][1]["content"]
        step = self.step_of[system]
        self.seen.append((step, user))
        if step == "conclusion":
            return f"Conclusion : {int(float(self.by_score[SCORE.search(user).group(1)]['conclusion']))}"
        return self.by_text[MESSAGE.search(user).group(1)][step]


@pytest.fixture
def key(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-annotate-0000")
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))


def test_replayed_pipeline_matches_the_release(tmp_path, fake, data, key, fast):
    rows = read_rows(data.path(AGREEMENT))
    steps = load_steps(data)
    replay = Replay(rows, steps)
    fake.responder = replay
    out = tmp_path / "annot"
    result = annotate(
        AnnotateOptions(data.path(AGREEMENT), "openai:gpt-4o-mini", out, {"base_url": f"{fake.url}/v1"}),
        data,
        fast.__class__(concurrency=32, timeout_s=10, max_retries=1, backoff_initial_s=0.01),
        show_progress=False,
    )
    assert result.n == 500 and result.requests_sent == 500 * 7
    # every step's message is the release's layout: the opening, the blocks it sees, its instruction
    first = next(u for s, u in replay.seen if s == "ton")
    assert (
        first.startswith("Voici les informations à analyser :\n\n**Message** :\n« ")
        and "**Explication** :\n« " in first
    )
    assert first.endswith("Ta tâche est d’identifier de façon nuancée les tons présents dans ce message.\n\n")
    concluding = next(u for s, u in replay.seen if s == "conclusion")
    assert "**Message**" not in concluding and concluding.count("**") == 2  # the score alone

    table = {r["msg_id"]: r for r in csv.DictReader(open(out / "annotations.csv", encoding="utf-8"))}
    assert len(table) == 500
    release = {r["msg_id"]: r for r in rows}
    same = {"note": 0, "conclusion": 0, "labels_list": 0, "categorie_list": 0}
    for mid, mine in table.items():
        theirs = release[mid]
        same["note"] += float(mine["note"]) == float(theirs["note"])
        same["conclusion"] += int(mine["conclusion"]) == int(float(theirs["conclusion"]))
        same["labels_list"] += sorted(json.loads(mine["labels_list"])) == sorted(
            release_list(theirs["labels_list"])
        )  # one block wrote V/A/I/H/S/R
        same["categorie_list"] += json.loads(mine["categorie_list"]) == release_list(theirs["categorie_list"])
    # the score, conclusion and labels of every comment are the release's; categories differ where
    # the release's parser dropped a name on the header's list ("Adhésion explicite à une idée
    # toxique", or one written without its accent) or an off-list name (its own status here)
    assert same == {"note": 500, "conclusion": 500, "labels_list": 500, "categorie_list": 478}
    assert result.blocks["categorie"] == {"ok": 488, "off_list": 12}
    assert all(
        result.blocks[k] == {"ok": 500}
        for k in ("explication", "ton", "intention", "labels", "toxicite_score", "conclusion")
    )
    assert result.statuses == {"ok": 488, "off_list": 12}
    # the release's own columns of the input are kept where the pipeline writes none
    assert (
        table["anon_msg_3f38e6f2ea2f"]["annotator's conclusion"] == "1.0"
        and table["anon_msg_3f38e6f2ea2f"]["banned"] == "0"
    )

    # the same command again: nothing is sent (every step's run is complete)
    before = len(fake.requests)
    again = annotate(
        AnnotateOptions(data.path(AGREEMENT), "openai:gpt-4o-mini", out, {"base_url": f"{fake.url}/v1"}),
        data,
        fast,
        show_progress=False,
    )
    assert len(fake.requests) == before and again.statuses == result.statuses


def synthetic(body: dict) -> str:
    """A model that writes each block in its header's form: toxic (score 8) when the comment holds
    TOX, else score 1; a comment holding NOSCORE gets a score block without a score."""
    system, user = body["messages"][0]["content"], body["messages"][1]["content"]
    found = MESSAGE.search(user)
    text = found.group(1) if found else SCORE.search(user).group(1)
    toxic = "TOX" in text or "8/10" in text
    if "barème" in system or "Échelle de toxicité" in system:
        return (
            "Je ne sais pas noter ce message."
            if "NOSCORE" in text
            else f"Note : {8 if toxic else 1}/10\nJustification : test."
        )
    if "Conclusion : 0 ou 1" in system:
        return f"Conclusion : {int(toxic)}"
    if "Liste fermée des catégories" in system:
        return (
            'Catégories : ["Micro-agression"]\nJustification : test.'
            if toxic
            else "Catégories : []\nJustification : rien."
        )
    if "une **une** étiquette" in system or "Labels : S0/H0" in system:
        return (
            f"Labels : S0/H{2 if toxic else 0}/V0/R0/A{2 if toxic else 0}/I{2 if toxic else 0}\nJustification : test."
        )
    return f"Analyse de « {text} »."


COMMENTS = (
    "msg_id,content,deleted,banned\n"
    "a,tu es un TOX idiot,0,0\n"
    "b,merci pour tout,0,0\n"
    "c,TOX dégage,1,1\n"
    "d,NOSCORE bizarre,0,0\n"
    "e,TOX encore,1,0\n"
    "f,à demain,0,1\n"
)


def test_annotate_rule_queue_merge_and_finetune_data(tmp_path, fake, data_root, key, cli):
    fake.responder = synthetic
    comments = tmp_path / "comments.csv"
    comments.write_text(COMMENTS, encoding="utf-8")
    out = tmp_path / "annot"
    run = (
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
    code, stdout, err = cli(*run, "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert (
        summary["comments"] == 6 and summary["state"] == {"ok": 5, "unparseable": 1} and summary["requests_sent"] == 42
    )
    assert summary["blocks"]["toxicite_score"] == {"ok": 5, "unparseable": 1} and summary["blocks"]["conclusion"] == {
        "ok": 6
    }
    table = {r["msg_id"]: r for r in csv.DictReader(open(out / "annotations.csv", encoding="utf-8"))}
    assert (
        table["d"]["status"] == "toxicite_score: unparseable"
        and table["d"]["note"] == ""
        and "Note : N/10" in table["d"]["problems"]
    )
    assert (
        table["a"]["note"] == "8"
        and table["a"]["conclusion"] == "1"
        and json.loads(table["a"]["labels_list"]) == ["S0", "H2", "V0", "R0", "A2", "I2"]
    )

    code, stdout, _ = cli("annotate", "rule", out, "--threshold", "4")
    assert code == 0 and "covers 3/6 = 50.0%" in stdout  # b, f (concluded 0, score 1) and d (concluded 0, no score)
    queue = tmp_path / "queue.csv"
    code, stdout, _ = cli("annotate", "queue", out, "--out", queue)
    assert code == 0 and "3 of 6 comments to label" in stdout
    queued = list(csv.DictReader(open(queue, encoding="utf-8")))
    assert [r["msg_id"] for r in queued] == ["c", "e", "a"]  # banned and deleted (11 x 4), deleted (4), then the rest
    assert queued[0]["priority"] == "44" and queued[0]["label"] == ""

    queued[0]["label"], queued[1]["label"] = "1", "0"  # a is left for later
    with open(queue, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(queued[0]))
        writer.writeheader()
        writer.writerows(queued)
    code, stdout, _ = cli("annotate", "merge", out, queue)
    assert code == 0 and "5 labelled comments (3 by the rule, 2 by humans); 1 still to label" in stdout
    labels = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert [(r["msg_id"], r["label"], r["source"]) for r in labels] == [
        ("b", "0", "rule"),
        ("c", "1", "human"),
        ("d", "0", "rule"),
        ("e", "0", "human"),
        ("f", "0", "rule"),
    ]

    code, stdout, err = cli(
        "finetune", "data", "--out", tmp_path / "cot", "--annotated", out, "--no-oversample", "--data-dir", data_root
    )
    assert code == 0, err
    assert "annotated directories: 5 labelled comments kept (1 toxic, 4 non-toxic)" in stdout
    examples = [json.loads(line) for line in open(tmp_path / "cot" / "train.jsonl")] + [
        json.loads(line) for line in open(tmp_path / "cot" / "validation.jsonl")
    ]
    mine = {e["id"]: e for e in examples if e["source"] == "annotated"}
    assert set(mine) == {"b", "c", "d", "e", "f"} and "Analyse de « TOX dégage »" in mine["c"]["completion"]
    assert mine["c"]["completion"].endswith("Conclusion : oui") and mine["e"]["completion"].endswith("Conclusion : non")

    # the same out directory with another model is refused before any request
    sent = len(fake.requests)
    code, _, err = cli(*run[:3], "--model", "openai:gpt-4o", *run[5:])
    assert code == 2 and "holds another annotation (its model, adapter differ)" in err and len(fake.requests) == sent


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,body\n1,salut\n", "no text column"),
        ("id,text\n1,salut\n2,  \n", "line 3: empty text in column 'text'"),
        ("id,text\n1,salut\n1,bonjour\n", "line 3: id '1' already on line 2"),
        ("text\nsalut\nsalut\n", "line 3: the same text already on line 2"),
    ],
)
def test_bad_comment_files_are_one_line_errors(tmp_path, data_root, key, cli, content, message):
    path = tmp_path / "comments.csv"
    path.write_text(content, encoding="utf-8")
    code, _, err = cli(
        "annotate", "run", path, "--model", "openai:gpt-4o-mini", "--out", tmp_path / "annot", "--data-dir", data_root
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "annot").exists()


def test_bad_labels_are_one_line_errors(tmp_path, cli):
    out = tmp_path / "annot"
    out.mkdir()
    (out / "annotations.csv").write_text(
        "msg_id,content,conclusion,note,status\na,x,1,8,ok\nb,y,0,1,ok\n", encoding="utf-8"
    )
    for content, message in (
        ("msg_id,label\nz,1\n", "line 2: msg_id 'z' is not in the annotation table"),
        ("msg_id,label\na,2\n", "line 2: label '2' is not 0 or 1"),
        ("msg_id,label\na,1\na,0\n", "line 3: msg_id 'a' already on line 2"),
    ):
        labelled = tmp_path / "labelled.csv"
        labelled.write_text(content, encoding="utf-8")
        code, _, err = cli("annotate", "merge", out, labelled)
        assert code == 2 and message in err, err
        assert not (out / "labels.csv").exists()


def test_batch_api_submits_one_batch_per_step_resumes_and_resends_failures(tmp_path, data_root, key, cli):
    from fakes.openai_batch import FakeBatchAPI

    api = FakeBatchAPI(synthetic)
    try:
        comments = tmp_path / "comments.csv"
        comments.write_text(COMMENTS, encoding="utf-8")
        out = tmp_path / "annot"
        run = (
            "annotate",
            "run",
            comments,
            "--model",
            "openai:gpt-4o-mini",
            "--model-arg",
            f"base_url={api.url}",
            "--out",
            out,
            "--batch-api",
            "--poll",
            "0.01",
            "--max-retries",
            "2",
            "--data-dir",
            data_root,
        )
        api.fail_ids, api.polls_down = {"b"}, True
        code, _, err = cli(
            *run
        )  # dies while waiting for the first batch (three failed polls in a row): the batch id is kept
        assert code == 2 and err.strip().splitlines()[-1].startswith("error: --batch-api, step explication: ")
        assert "1 batch(es) checkpointed in" in err and sum(p.startswith("/v1/batches/") for _, p in api.calls) == 3
        assert json.loads((out / "batches" / "explication.json").read_text())["batches"][0]["batch_id"] == "batch_2"

        api.polls_down = False
        code, stdout, err = cli(*run, "--json")
        assert code == 0, err
        created = [p for m, p in api.calls if (m, p) == ("POST", "/v1/batches")]
        assert len(created) == 7  # the explication batch was polled again, not submitted twice; then one batch per step
        summary = json.loads(stdout)
        assert summary["state"] == {"ok": 4, "unparseable": 1, "error": 1}
        assert summary["blocks"]["explication"] == {"ok": 5, "error": 1} and summary["blocks"]["ton"] == {
            "ok": 5,
            "pending": 1,
        }
        assert not (out / "batches" / "explication.json").exists()
        table = {r["msg_id"]: r for r in csv.DictReader(open(out / "annotations.csv", encoding="utf-8"))}
        assert table["b"]["status"].startswith("explication: error;") and "HTTP 500" in table["b"]["problems"]
        assert table["a"]["conclusion"] == "1" and table["c"]["note"] == "8"
        first_input = api.files["file-1"].decode().splitlines()
        assert [json.loads(line)["custom_id"] for line in first_input] == list("abcdef")

        api.fail_ids = set()
        code, stdout, err = cli(*run, "--json")  # the error is sent again, then b goes through every step
        assert code == 0, err
        assert json.loads(stdout)["state"] == {"ok": 5, "unparseable": 1}
        created = [p for m, p in api.calls if (m, p) == ("POST", "/v1/batches")]
        assert len(created) == 14
        last_input = (
            [f for f in api.files.values() if b'"custom_id"' in f and b'"method"' in f][-1].decode().splitlines()
        )
        assert [json.loads(line)["custom_id"] for line in last_input] == ["b"]
    finally:
        api.close()


def test_batch_api_is_refused_for_adapters_without_one_before_any_model_loads(tmp_path, data_root, cli):
    comments = tmp_path / "comments.csv"
    comments.write_text(COMMENTS, encoding="utf-8")
    code, _, err = cli(
        "annotate",
        "run",
        comments,
        "--model",
        "hf:no-such/model-anywhere",
        "--out",
        tmp_path / "annot",
        "--batch-api",
        "--data-dir",
        data_root,
    )
    assert code == 2 and "--batch-api: 'hf' has no batch API here (anthropic:, gemini:, mistral:, openai: have)" in err
    assert not (tmp_path / "annot").exists()


def test_annotated_directories_leave_benchmark_texts_out(tmp_path, data):
    """An annotation directory is one more training source, with the same exclusions as the
    release's files: a comment whose text is a ToxiFrench benchmark text is left out."""
    from toxbench.data.annotated import annotated_selection
    from toxbench.data.datasets import load_dataset

    bench = load_dataset("toxifrench", data).samples[0]
    out = tmp_path / "annot"
    out.mkdir()
    with open(out / "annotations.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["msg_id", "content", "explication", "conclusion"])
        writer.writerows(
            [
                ["x1", bench.text, "E1", "1"],
                ["x2", "un message tout neuf pour le corpus", "E2", "0"],
                ["x3", "pas encore étiqueté", "E3", "1"],
            ]
        )
    (out / "labels.csv").write_text("msg_id,label,source\nx1,1,human\nx2,0,rule\n", encoding="utf-8")
    selection = annotated_selection(data, directories=(out,))
    assert [(r.id, r.label, r.fields["explication"]) for r in selection.rows if r.source == "annotated"] == [
        ("x2", 0, "E2")
    ]
    assert selection.removed["benchmark_text"] == 8  # the release's files' 7, and x1
    (out / "labels.csv").write_text("msg_id,label,source\nx1,maybe,human\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"labels.csv: line 2: needs a msg_id and a 0/1 label"):
        annotated_selection(data, directories=(out,))


def test_missing_labels_file_and_unreadable_scores_are_one_line_errors(tmp_path, cli):
    out = tmp_path / "annot"
    out.mkdir()
    (out / "annotations.csv").write_text(
        "msg_id,content,conclusion,note,status\na,x,1,beaucoup,ok\nb,y,0,,ok\n", encoding="utf-8"
    )
    code, _, err = cli("annotate", "merge", out, tmp_path / "missing.csv")
    assert code == 2 and "missing.csv: no such file" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("annotate", "rule", out)
    assert code == 2 and "line 2: note = 'beaucoup' is not a number" in err
    code, _, err = cli("annotate", "agreement", "toxifrench-agreement", "--out", "/proc/none")
    assert code == 2 and "give --out a writable directory" in err
