"""`toxbench explain` and `toxbench spans` end to end on the real MiniLM encoder (a seeded random
head: these tests check the machinery, not accuracy), plus integrated gradients' completeness
and the Chinese path on a tiny character-vocabulary encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toxbench.data.spans import to_offsets
from toxbench.explain.span_metrics import semeval_f1
from toxbench.explanations import read_explanations
from toxbench.records import Run


def _run_dir(runs: Path, dataset: str) -> Path:
    (found,) = [d for d in runs.iterdir() if d.name.startswith(dataset.replace(":", "-"))]
    return found


def test_explain_writes_resumes_and_scores(cli, tmp_path, data, data_root):
    runs = tmp_path / "runs"
    args = [
        "explain",
        "--model",
        "encoder:minilm-l6",
        "--dataset",
        "toxicspans-en:test",
        "--limit",
        "12",
        "--out",
        runs,
        "--data-dir",
        data_root,
        "--spans-for",
        "all",
    ]
    code, out, err = cli(*args)
    assert code == 0, err
    run_dir = _run_dir(runs, "toxicspans-en-test")
    assert "12 of 12 samples explained, 0 errors" in out
    explainer, settings, lines = read_explanations(run_dir)
    assert settings["method"] == "gradxinput" and settings["spans_for"] == "all" and len(lines) == 12
    from toxbench.data.datasets import load_dataset

    samples = {s.id: s for s in load_dataset("toxicspans-en:test", data).samples}
    records = {r.sample_id: r for r in Run.load(run_dir).records}
    for sid, line in lines.items():
        text = samples[sid].text
        assert len(line["tokens"]) == len(line["saliency"]) > 0
        assert all(0 <= s < e <= len(text) for s, e in line["tokens"] + line["spans"])
        assert line["gold_spans"] == [list(s) for s in samples[sid].spans]
        assert line["pred"] == records[sid].pred
        # the explainer's p(toxic) of the full text is the run's recorded score
        assert line["faithfulness"]["p_full"] == pytest.approx(records[sid].score, abs=1e-5)
        if line["spans"]:
            assert line["faithfulness"]["comprehensiveness"] == pytest.approx(
                line["faithfulness"]["p_full"] - line["faithfulness"]["probabilities"]["without"]
            )
    size = (run_dir / "explanations.jsonl").stat().st_size
    code, out, _ = cli(*args)  # resumes: nothing new is written
    assert code == 0 and (run_dir / "explanations.jsonl").stat().st_size == size

    code, out, err = cli("spans", run_dir, "--json", "--data-dir", data_root)
    assert code == 0, err
    summary = json.loads(out)
    expected = (
        sum(
            semeval_f1(to_offsets(map(tuple, line["spans"])), to_offsets(map(tuple, line["gold_spans"])))
            for line in lines.values()
        )
        / 12
    )
    assert summary["spans"]["f1"] == pytest.approx(expected) and summary["explainer"] == explainer
    assert summary["floors"]["empty"] == pytest.approx(sum(not s.spans for s in samples.values() if s.id in lines) / 12)

    code, _, _ = cli(
        "explain", "--run", run_dir, "--out", runs, "--data-dir", data_root, "--extract", "topk", "--extract-arg", "k=2"
    )
    assert code == 0
    code, _, err = cli("spans", run_dir, "--data-dir", data_root)
    assert code == 2 and "2 explainers wrote into this run" in err and "--explainer" in err

    code, _, err = cli(
        "leaderboard",
        "--dataset",
        "toxicspans-en:test",
        "--runs",
        runs,
        "--no-published",
        "--out",
        tmp_path / "board",
        "--data-dir",
        data_root,
        "--quiet",
    )
    assert code == 0, err
    import csv

    board = list(csv.DictReader((tmp_path / "board" / "leaderboard-spans.csv").open()))
    assert sorted(r["rule"] for r in board) == ["cliff", "topk"] and {r["n"] for r in board} == {"12"}
    cliff = next(r for r in board if r["rule"] == "cliff")
    assert float(cliff["span_f1"]) == pytest.approx(summary["spans"]["f1"], abs=1e-6)
    assert "## Explanations" in (tmp_path / "board" / "leaderboard.md").read_text()

    code, _, err = cli(
        "explain", "--run", run_dir, "--out", runs, "--data-dir", data_root, "--tune-on", "toxicspans-en:test"
    )
    assert code == 2 and "is the dataset being explained" in err
    code, _, err = cli(
        "explain",
        "--run",
        run_dir,
        "--out",
        runs,
        "--data-dir",
        data_root,
        "--extract",
        "cliff",
        "--extract-arg",
        "k=5",
    )
    assert code == 2 and "k do not apply to the cliff rule" in err


def test_explaining_a_chat_run_is_refused(cli, tmp_path, data_root):
    runs = tmp_path / "runs"
    assert (
        cli(
            "run",
            "--model",
            "baseline",
            "--dataset",
            "toxifrench",
            "--limit",
            "4",
            "--out",
            runs,
            "--data-dir",
            data_root,
        )[0]
        == 0
    )
    (run_dir,) = runs.iterdir()
    code, _, err = cli("explain", "--run", run_dir, "--out", runs, "--data-dir", data_root)
    assert code == 2 and "explanations need an encoder run" in err and err.count("\n") == 1
    code, _, err = cli("explain", "--run", run_dir, "--limit", "2", "--out", runs, "--data-dir", data_root)
    assert code == 2 and "use them with --model" in err
    code, _, err = cli("spans", run_dir, "--runs", runs, "--data-dir", data_root)
    assert code == 2 and "no explanations; write them with `toxbench explain --run" in err
    code, _, err = cli(
        "explain",
        "--model",
        "baseline",
        "--dataset",
        "toxifrench",
        "--limit",
        "2",
        "--out",
        runs,
        "--data-dir",
        data_root,
    )
    assert code == 2 and err.splitlines()[-1] == (
        "error: baseline: explanations need an encoder classifier's token saliency "
        "(--model encoder:PATH or a finetuned encoder); this model has none"
    )


def test_integrated_gradients_complete_on_minilm():
    """Completeness: the attributions add up to f(x) − f(baseline), within 1e-3, on the real
    MiniLM (its head scaled up, so the outputs move and the check is not vacuous)."""
    import torch

    from toxbench.adapters.encoder import EncoderClassifier
    from toxbench.explain.saliency import integrated_gradients, log_toxic

    enc = EncoderClassifier("minilm-l6", device="cpu")
    with torch.no_grad():
        enc.net.classifier.weight.mul_(40)
    batch = enc.tokenizer(
        ["you are a stupid idiot and everyone knows it", "thanks, that was a helpful answer"],
        padding=True,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    special = batch.pop("special_tokens_mask")
    ids, mask = batch.pop("input_ids"), batch.pop("attention_mask")
    saliency, delta = integrated_gradients(
        enc.net, ids, mask, special, enc.toxic, steps=64, baseline_id=enc.tokenizer.pad_token_id, **batch
    )
    with torch.no_grad():
        full = log_toxic(enc.net(input_ids=ids, attention_mask=mask, **batch).logits, enc.toxic)
        base_ids = torch.where(special.bool(), ids, torch.full_like(ids, enc.tokenizer.pad_token_id))
        base = log_toxic(enc.net(input_ids=base_ids, attention_mask=mask, **batch).logits, enc.toxic)
    assert (full - base).abs().min() > 0.05  # the path integral has something to add up
    assert delta.abs().max() < 1e-3
    assert torch.allclose(saliency.sum(dim=1), full - base, atol=1e-3)


def test_chinese_datasets_run_through_explain_on_a_character_encoder(cli, tmp_path, data, data_root):
    """STATE ToxiCN and COLD load; a tiny randomly initialised BERT whose vocabulary is Chinese
    characters explains state-toxicn posts, and its spans are substrings of them."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    from toxbench.data.datasets import load_dataset

    state = load_dataset("state-toxicn:test", data)
    assert len(load_dataset("cold:test", data)) == 5323 and load_dataset("cold:test", data).samples[0].spans is None
    chars = sorted({c for s in state.samples[:40] for c in s.text if not c.isspace()})
    model_dir = tmp_path / "zh"
    model_dir.mkdir()
    (model_dir / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]), encoding="utf-8"
    )
    config = BertConfig(
        vocab_size=5 + len(chars),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=2,
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(model_dir)
    BertTokenizerFast(vocab=str(model_dir / "vocab.txt")).save_pretrained(
        model_dir
    )  # transformers 5 reads `vocab=` (vocab_file= is ignored: every word [UNK])

    runs = tmp_path / "runs"
    code, out, err = cli(
        "explain",
        "--model",
        f"encoder:{model_dir}",
        "--dataset",
        "state-toxicn:test",
        "--limit",
        "10",
        "--out",
        runs,
        "--data-dir",
        data_root,
        "--spans-for",
        "all",
        "--extract",
        "topk",
        "--extract-arg",
        "k=2",
    )
    assert code == 0, err
    _, _, lines = read_explanations(_run_dir(runs, "state-toxicn-test"))
    texts = {s.id: s.text for s in state.samples}
    for sid, line in lines.items():
        pieces = [texts[sid][s:e] for s, e in line["tokens"]]
        assert all(
            len(p) == 1 for p in pieces if any("\u4e00" <= c <= "\u9fff" for c in p)
        )  # one token per Chinese character
        assert 1 <= len(line["spans"]) <= 2 and all(0 <= s < e <= len(texts[sid]) for s, e in line["spans"])
    code, out, _ = cli("spans", _run_dir(runs, "state-toxicn-test"), "--data-dir", data_root)
    assert code == 0 and "SemEval char F1" in out
