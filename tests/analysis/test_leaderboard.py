"""The leaderboard regenerated from every published file, checked against independent figures."""

import csv
import os
import subprocess
import sys

import pytest

from toxbench.analysis import leaderboard as lb
from toxbench.records import RunSpec, RunWriter, iter_run_dirs, read_manifest
from toxbench.types import Record

COLUMNS = "run,model,prompt,shots,n,coverage,accuracy,accuracy_ci_low,accuracy_ci_high,balanced_accuracy,precision_0,recall_0,f1_0,precision_1,recall_1,f1_1,roc_auc,paper"
ROW_COUNTS = {
    "toxifrench": 68,
    "rtplx-fr": 6,
    "jigsaw-en": 23,
    "jigsaw-fr": 19,
    "hateday-fr": 6,
}  # toxifrench: + 3 partial files, ranked apart
# The release's metrics_summary.csv name -> our run (file stem), for rows computed on a clean join.
SUMMARY = {
    "Camembert-SFC-TFR-Finetuned": ("toxifrench", "camembert-sfc-tf-fr-finetuned"),
    "Camembert-SFC-TFR-Finetuned-v2": ("toxifrench", "camembert-sfc-tf-fr-finetuned-v2"),
    "Qwen3-4B-CoT6-ADAM-SFT": ("toxifrench", "qwen3-4b-cot6-adam-sft-tf-fr"),
    "Qwen3-4B-CoT6-SOAP-SFT-OverSpl": ("toxifrench", "qwen3-4b-cot6-soap-sft-overspl-tf-fr"),
    "rec_soap_dpo_augmented-hyperpar": ("toxifrench", "rec_soap_dpo_augmented-hyperpar-tf-fr"),
    "GPT-4o-Mini-Detailed-RTPLX": ("rtplx-fr", "gpt-4o-mini-detailed-rtplx"),
    "DeepseekChat-Detailed-RTPLX": ("rtplx-fr", "deepseek-chat-detailed-rtplx"),
    "Camembert-SFC-RTPLX": ("rtplx-fr", "camembert-sfc-rtplx"),
    "rec_soap_dpo_augmented-rtplx": ("rtplx-fr", "rec_soap_dpo_augmented-rtplx-tf-fr"),
    "rec_soap_dpo_augmented-jigsawfr": ("jigsaw-fr", "rec_soap_dpo_augmented-jigsawfr"),
    "rec_soap_dpo_augmented-jigsawen": ("jigsaw-en", "rec_soap_dpo_augmented-jigsawen"),
}
WITH_SCORES = {"perspective-api-tf-fr", "distilbert-sfc-tf-fr", "toxic-bert-sfc-tf-fr", "shield-gemma-7b-local-tf-fr"}


@pytest.fixture(scope="module")
def board(tmp_path_factory, data_root):
    """`toxbench leaderboard` for every dataset, as a real process, once for this module."""
    root = tmp_path_factory.mktemp("board")
    cmd = [
        sys.executable,
        "-m",
        "toxbench",
        "leaderboard",
        "--runs",
        str(root / "runs"),
        "--out",
        str(root / "results"),
        "--data-dir",
        str(data_root),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    return root, proc


def rows(root, dataset, name="results", table="leaderboard.csv"):
    with open(root / name / dataset / table, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_dataset_has_its_runs_and_exact_columns(board):
    root, proc = board
    for dataset, count in ROW_COUNTS.items():
        header = (root / "results" / dataset / "leaderboard.csv").read_text("utf-8").splitlines()[0]
        assert header == COLUMNS
        table = rows(root, dataset)
        assert len(table) == count
        accuracies = [float(r["accuracy"]) for r in table]
        assert accuracies == sorted(accuracies, reverse=True)
        assert (
            f"{dataset}: {count} runs{' (+3 on part of it, ranked apart)' if dataset == 'toxifrench' else ''} ->"
            in proc.stdout
        )
    assert "gpt-4o-mini-detailed-tf-fr" in proc.stdout  # the table is printed
    assert "tf-fr-qwen-3-4b-dpo-odal-raw.csv: the file has no prediction rows" in proc.stderr


def test_matches_the_release_summary_where_its_join_was_clean(board, data_root):
    root, _ = board
    with open(data_root / "toxifrench/predictions/metrics_summary.csv", encoding="utf-8", newline="") as fh:
        summary = {r["Model"]: r for r in csv.DictReader(fh)}
    for published, (dataset, run) in SUMMARY.items():
        ours = next(r for r in rows(root, dataset) if r["run"] == run)
        for theirs, mine in [
            ("Accuracy", "accuracy"),
            ("Precision_0", "precision_0"),
            ("Recall_0", "recall_0"),
            ("F1_0", "f1_0"),
            ("Precision_1", "precision_1"),
            ("Recall_1", "recall_1"),
            ("F1_1", "f1_1"),
        ]:
            assert float(ours[mine]) == pytest.approx(float(summary[published][theirs]), abs=1e-6), (published, mine)


def test_hateday_is_computed_on_1000_rows_not_the_release_1004(board, data_root):
    """The release joined HateDay on text, so its two repeated tweets became four rows each pair."""
    root, _ = board
    with open(data_root / "toxifrench/benchmark/HateDay-french.csv", encoding="utf-8", newline="") as fh:
        gold = [int(r["label"]) for r in csv.DictReader(fh)]
    with open(data_root / "toxifrench/predictions/gpt-4o-detailed-hateday.csv", encoding="utf-8", newline="") as fh:
        pred = [int(r["label"]) for r in csv.DictReader(fh)]  # same row order as the benchmark
    oracle = sum(g == p for g, p in zip(gold, pred)) / 1000
    ours = next(r for r in rows(root, "hateday-fr") if r["run"] == "gpt-4o-detailed-hateday")
    assert ours["n"] == "1000" and float(ours["accuracy"]) == pytest.approx(oracle)
    assert float(ours["accuracy"]) != pytest.approx(0.8844621513944223)  # the release's 888/1004


def test_roc_auc_only_for_runs_with_real_scores(board):
    root, _ = board
    scored = {r["run"] for r in rows(root, "toxifrench") if r["roc_auc"]}
    assert scored == WITH_SCORES
    perspective = next(r for r in rows(root, "toxifrench") if r["run"] == "perspective-api-tf-fr")
    assert 0.5 < float(perspective["roc_auc"]) < 1.0


def test_partial_and_inferred_files_are_flagged(board):
    root, _ = board
    tf = {r["run"]: r for r in rows(root, "toxifrench")}
    part = {r["run"]: r for r in rows(root, "toxifrench", table="leaderboard-subsets.csv")}
    # the three release files that hold 64 of 1388 samples rank apart, never among whole-dataset runs
    partial = {
        "rec_soap_dpo_train-hyperpar-tf-fr",
        "qwen3-4b-cot6-soap-sft-overspl-dpo-stable-25-tf-fr",
        "qwen3-4b-cot6-soap-sft-overspl-thendwl-hyperpar-tf-fr",
    }
    assert set(part) == partial and not partial & set(tf) and {r["n"] for r in tf.values()} == {"1388"}
    assert part["rec_soap_dpo_train-hyperpar-tf-fr"]["n"] == "64"
    assert part["rec_soap_dpo_train-hyperpar-tf-fr"]["coverage"] == "0.0"
    assert tf["mistral_small"]["n"] == "1388"
    fr = {r["run"] for r in rows(root, "jigsaw-fr")}
    assert {"o4-mini", "gemini-1.5-pro", "gemini-2.0-flash", "mistral_moderation"} <= fr
    md = (root / "results" / "toxifrench" / "leaderboard.md").read_text("utf-8")
    assert "`rec_soap_dpo_train-hyperpar-tf-fr`: covers 64 of 1388 samples (partial run)" in md
    assert "`mistral_small`: dataset toxifrench: its name names no dataset; all 1388 rows join toxifrench" in md
    assert "Policy: answers with no label (unparseable, refused, error) count as wrong" in md


def test_coverage_counts_unreadable_answers(board):
    root, _ = board
    gemma = next(r for r in rows(root, "jigsaw-fr") if r["run"] == "google-gemma-2-2b-it")
    assert float(gemma["coverage"]) == pytest.approx(352 / 396)


def test_rerun_is_idempotent_and_includes_new_runs(board, data_root, tmp_path):
    root, _ = board
    finished = {d.name: read_manifest(d).finished_at for d in iter_run_dirs(root / "runs")}
    assert len(finished) == 125
    # A run recorded by something other than the replay shows up next to the published ones.
    spec = RunSpec(
        adapter="openai",
        model="gpt-test",
        dataset="rtplx-fr",
        dataset_sha256="x",
        prompt="simple",
        lang="fr",
        shots="0",
    )
    writer = RunWriter(root / "runs", spec, n_expected=2)
    writer.append(Record(sample_id="s1", pred=1, status="ok", gold=1))
    writer.append(Record(sample_id="s2", pred=None, status="refused", gold=0))
    writer.finish()
    cmd = [
        sys.executable,
        "-m",
        "toxbench",
        "leaderboard",
        "-d",
        "rtplx-fr",
        "--runs",
        str(root / "runs"),
        "--out",
        str(tmp_path / "rtplx"),
        "--data-dir",
        str(data_root),
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    again = {d.name: read_manifest(d).finished_at for d in iter_run_dirs(root / "runs") if d.name in finished}
    assert again == finished  # nothing re-imported
    with open(tmp_path / "rtplx" / "leaderboard.csv", encoding="utf-8", newline="") as fh:
        table = {r["run"]: r for r in csv.DictReader(fh)}
    assert len(table) == 7 and table[spec.run_id()]["accuracy"] == "0.5" and table[spec.run_id()]["coverage"] == "0.5"
    assert rows(root, "rtplx-fr")[0]["run"] in table


def test_published_runs_link_to_the_papers_rows(board):
    root, _ = board
    table = {r["run"]: r["paper"] for r in rows(root, "toxifrench")}
    assert table["gpt-4o-detailed-tf-fr"] == "Table 3 gpt-4o: reproduced"
    assert table["qwen-3-4b-detailed-tf-fr"] == (
        "Table 3 Qwen-3-4B (Inst.): reproduced; Table 5 Qwen3-4B 0-shot detailed: reproduced; "
        "Table 6 No finetuning (In-Context Learning) 0-shot: reproduced"
    )
    assert table["gpt-4o-mini-detailed-tf-fr"] == "Table 3 gpt-4o-mini: differs (P (0) by 0.100)"
    assert table["gemini-2-0-flash-detailed-tf-fr"] == ""  # the paper prints no row for it
    md = (root / "results" / "toxifrench" / "leaderboard.md").read_text("utf-8")
    line = next(x for x in md.splitlines() if "`qwen-3-4b-detailed-tf-fr`" in x)
    assert line.endswith("| T3 ✓ T5 ✓ T6 ✓ |")
    assert next(x for x in md.splitlines() if "`gpt-4o-mini-detailed-tf-fr`" in x).endswith("| T3 ≠ |")


def test_included_run_directories_are_ranked_and_a_run_counts_once(data_root, tmp_path, cli):
    def record(directory, spec):
        writer = RunWriter(directory, spec, n_expected=2)
        writer.append(Record(sample_id="s1", pred=1, status="ok", gold=1))
        writer.append(Record(sample_id="s2", pred=1, status="ok", gold=0))
        writer.finish()

    shared = RunSpec(adapter="baseline", model="b", dataset="hateday-fr", dataset_sha256="x", label="baseline:b")
    record(tmp_path / "runs", shared)
    record(tmp_path / "committed", shared)  # the same run in both directories: ranked once
    record(
        tmp_path / "committed",
        RunSpec(adapter="baseline", model="c", dataset="hateday-fr", dataset_sha256="x", label="baseline:c"),
    )
    code, _out, err = cli(
        "leaderboard",
        "-d",
        "hateday-fr",
        "--runs",
        tmp_path / "runs",
        "--include-runs",
        tmp_path / "committed",
        "--out",
        tmp_path / "out",
        "--data-dir",
        data_root,
        "--no-published",
        "-q",
    )
    assert code == 0, err
    assert sorted(r["run"] for r in rows(tmp_path, "", "out")) == ["baseline:b", "baseline:c"]
    code, _, err = cli(
        "leaderboard",
        "-d",
        "hateday-fr",
        "--runs",
        tmp_path / "runs",
        "--include-runs",
        tmp_path / "nowhere",
        "--out",
        tmp_path / "out2",
        "--data-dir",
        data_root,
        "--no-published",
        "-q",
    )
    assert (
        code == 2
        and "nowhere: no such runs directory; give --include-runs the directory" in err
        and not (tmp_path / "out2").exists()
    )


def test_labelled_only_policy(board):
    root, _ = board
    labelled = lb.collect(root / "runs", "jigsaw-fr", "labelled_only")
    gemma = next(r for r in labelled.rows if r.run == "google-gemma-2-2b-it")
    assert gemma.metrics.n == 352 and gemma.metrics.n_total == 396
    assert "metrics use only samples with a label" in lb.markdown(labelled)


def test_sequential_import_gives_the_same_rows_as_the_parallel_cli(board, data, tmp_path):
    from toxbench.run.replay import import_published

    root, _ = board
    rels = [
        f"toxifrench/predictions/{stem}.csv"
        for stem in ("gpt-4o-mini-detailed-rtplx", "camembert-sfc-rtplx", "mistral-detailed-rtplx")
    ]
    imported = import_published(data, tmp_path / "runs", rels, workers=1)
    assert [i.dataset for i in imported] == ["rtplx-fr"] * 3 and not any(i.skipped for i in imported)
    mine = {r.run: r.metrics.accuracy for r in lb.collect(tmp_path / "runs", "rtplx-fr").rows}
    theirs = {r["run"]: float(r["accuracy"]) for r in rows(root, "rtplx-fr") if r["run"] in mine}
    assert mine == pytest.approx(theirs) and len(mine) == 3


def test_neighbouring_rows_are_compared_by_mcnemar(board):
    from toxbench.analysis.compare import compare_runs
    from toxbench.records import Run

    root, _ = board
    board_tf = lb.collect(root / "runs", "toxifrench")
    upper, lower = board_tf.rows[0], board_tf.rows[1]
    # the same test through `toxbench compare` (both runs label every sample, so the policies agree)
    if upper.metrics.coverage == 1 and lower.metrics.coverage == 1:
        assert upper.p_vs_next == pytest.approx(
            compare_runs(Run.load(upper.run_dir), Run.load(lower.run_dir)).mcnemar_p
        )
    assert board_tf.rows[-1].p_vs_next is None and all(r.p_vs_next is not None for r in board_tf.rows[:-1])
    found = {}
    for dataset in ("toxifrench", "jigsaw-en"):
        rows_ = lb.collect(root / "runs", dataset).rows[:-1]
        close, far = [r for r in rows_ if r.p_vs_next >= 0.05], [r for r in rows_ if r.p_vs_next < 0.05]
        md = (root / "results" / dataset / "leaderboard.md").read_text("utf-8").split("## Runs on part")[0]
        assert md.count(" ≈ |") == len(close) and "| p vs next |" in md
        found[dataset] = (len(close), len(far))
    # ToxiFrench's 68 whole-dataset runs stand so close that no row is significantly better than the
    # next; Jigsaw's neighbours are sometimes far apart
    assert found == {"toxifrench": (67, 0), "jigsaw-en": (20, 2)}


def test_subset_runs_are_ranked_apart_from_whole_dataset_runs(tmp_path):
    """A 2-sample run that got both right never outranks a full run, and runs that share a label
    are told apart by what differs."""

    def record(spec, preds, golds, expected=None):
        writer = RunWriter(tmp_path / "runs", spec, n_expected=expected or len(preds))
        for i, (p, g) in enumerate(zip(preds, golds)):
            writer.append(Record(sample_id=f"s{i}", pred=p, status="ok", gold=g))
        writer.finish()

    base = dict(
        adapter="hf", model="m", dataset="d", dataset_sha256="x", prompt="detailed", lang="fr", label="hf:m mode=score"
    )
    record(RunSpec(**base, shots="0"), [1, 0, 0, 0], [1, 1, 0, 0])  # 75% on the whole dataset
    record(RunSpec(**base, shots="1t", shots_seed=0, subset="first-2"), [1, 1], [1, 1])  # 100% on two samples
    record(RunSpec(**base, shots="1t", shots_seed=1, subset="first-2"), [0, 1], [1, 1])
    # complete, but holding 3 of the 4 samples it expected (as a published file may): 100% on those 3
    record(RunSpec(**{**base, "label": "partial"}, shots="0"), [1, 0, 0], [1, 0, 0], expected=4)
    board = lb.collect(tmp_path / "runs", "d")
    assert [r.name for r in board.rows] == ["hf:m mode=score [0-shot]"]
    assert [r.name for r in board.subset_rows] == [
        "hf:m mode=score [1t-shot, seed 0, first-2]",
        "partial",
        "hf:m mode=score [1t-shot, seed 1, first-2]",
    ]
    partial = board.subset_rows[1]
    assert partial.subset == "partial: 3 of 4" and partial.notes == ["covers 3 of 4 samples (partial run)"]
    lb.write(board, tmp_path / "out")
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert (
        md.index("| 1 | `hf:m mode=score [0-shot]`")
        < md.index("## Runs on part of the dataset")
        < md.index("[1t-shot, seed 0, first-2]")
    )
    with open(tmp_path / "out" / "leaderboard.csv", encoding="utf-8") as fh:
        assert [r["run"] for r in csv.DictReader(fh)] == ["hf:m mode=score [0-shot]"]
    with open(tmp_path / "out" / "leaderboard-subsets.csv", encoding="utf-8") as fh:
        assert [r["accuracy"] for r in csv.DictReader(fh)] == ["1.0", "1.0", "0.5"]
