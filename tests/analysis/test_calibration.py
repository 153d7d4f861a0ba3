"""Thresholds chosen on a dev split: known scores in, known thresholds out; the rest never
influences the choice; and the leaderboard marks published files whose threshold was tuned on
their own labels."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from toxbench.analysis.calibration import calibrate, choose_threshold, implied_threshold, threshold_curve, tuned_note
from toxbench.types import Record


def test_threshold_chosen_on_known_scores_ties_go_to_the_one_nearest_half():
    gold = np.array([0, 0, 1, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.8])
    # cutting above 0.4 (0.6) and above 0.2 (0.25) both get 5 of 6 right: 0.6 is nearer 0.5
    assert choose_threshold(gold, scores, "accuracy") == (pytest.approx(0.6), pytest.approx(5 / 6))
    # 8 clean samples scored 0.1..0.45, 2 toxic at 0.3 and 0.9: cutting above 0.45 (0.675) or above 0.22 (0.26)
    # both get 9/10 right, and accuracy takes 0.675, nearer 0.5; macro F1 prefers 0.26 (0.867 against 0.804)
    gold = np.array([0] * 8 + [1, 1])
    scores = np.array([0.1, 0.12, 0.14, 0.16, 0.18, 0.2, 0.22, 0.45, 0.3, 0.9])
    assert choose_threshold(gold, scores, "accuracy")[0] == pytest.approx(0.675)
    assert choose_threshold(gold, scores, "macro-f1")[0] == pytest.approx(0.26)


@pytest.mark.parametrize("seed", range(5))
def test_threshold_curve_matches_scikit_learn_at_every_cut(seed):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, size=60)
    scores = np.round(rng.random(60), 1)  # many ties
    thresholds, values = threshold_curve(gold, scores, "accuracy")
    _, f1s = threshold_curve(gold, scores, "macro-f1")
    assert len(thresholds) == len(np.unique(scores)) + 1
    for t, acc, f1 in zip(thresholds, values, f1s):
        pred = (scores >= t).astype(int)
        assert acc == pytest.approx(accuracy_score(gold, pred))
        assert f1 == pytest.approx(f1_score(gold, pred, average="macro", zero_division=0))


def _records(n=400, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, size=n)
    scores = np.clip(0.3 * gold + rng.normal(0.2, 0.15, size=n), 0, 1)
    return [
        Record(sample_id=f"s{i:03d}", pred=int(s >= 0.5), status="ok", score=float(s), gold=int(g))
        for i, (g, s) in enumerate(zip(gold, scores))
    ]


def test_the_rest_never_chooses_the_threshold():
    """Shuffling the scores of the samples outside the dev part changes their labels and metrics,
    never the threshold; the dev part is stratified and seeded."""
    records = _records()
    first = calibrate(records, 0.25, seed=3)
    dev = set(first.dev_ids)
    assert len(dev) == 100 and sum(r.gold for r in records if r.sample_id in dev) == round(
        sum(r.gold for r in records) / 4
    )
    rest = [r for r in records if r.sample_id not in dev]
    shuffled_scores = np.random.default_rng(9).permutation([r.score for r in rest])
    moved = {r.sample_id: float(s) for r, s in zip(rest, shuffled_scores)}
    changed = [replace(r, score=moved.get(r.sample_id, r.score)) for r in records]
    second = calibrate(changed, 0.25, seed=3)
    assert second.threshold == first.threshold and second.dev_ids == first.dev_ids
    assert second.metrics["test calibrated"].accuracy < first.metrics["test calibrated"].accuracy - 0.2
    assert [r.sample_id for r in first.records] == sorted(r.sample_id for r in rest)
    assert calibrate(records, 0.25, seed=4).dev_ids != first.dev_ids
    # the threshold maximises dev accuracy, and the metrics of the rest are the records' own
    dev_records = [r for r in records if r.sample_id in dev]
    best = max(
        accuracy_score([r.gold for r in dev_records], [int(r.score >= t) for r in dev_records])
        for t in np.linspace(0, 1, 1001)
    )
    assert first.dev_value == pytest.approx(best)
    assert first.metrics["test calibrated"].accuracy == pytest.approx(
        np.mean([r.pred == r.gold for r in first.records])
    )


def test_implied_threshold_of_labels_cut_from_scores():
    records = [
        Record(sample_id=str(i), pred=int(s >= 0.1), status="ok", score=s, gold=0)
        for i, s in enumerate([0.02, 0.08, 0.12, 0.7])
    ]
    assert implied_threshold(records) == (0.08, 0.12)
    assert "between 0.08 and 0.12" in tuned_note(records)
    at_half = [
        Record(sample_id=str(i), pred=int(s >= 0.5), status="ok", score=s, gold=0)
        for i, s in enumerate([0.2, 0.49, 0.51])
    ]
    assert implied_threshold(at_half) == (0.49, 0.51) and tuned_note(at_half) is None
    crossing = [*records, Record(sample_id="x", pred=0, status="ok", score=0.9, gold=0)]
    assert implied_threshold(crossing) is None


def _scored_runs(tmp_path):
    """A 40-sample user file; a live-like classifier run with scores labelled at 0.5, and a
    published file whose labels are the same scores cut at 0.15."""
    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset
    from toxbench.records import RunSpec, RunWriter

    data = tmp_path / "d.csv"
    rng = np.random.default_rng(0)
    gold = [0, 1] * 20
    scores = [float(np.clip(0.25 * g + rng.normal(0.1, 0.06), 0, 1)) for g in gold]
    data.write_text(
        "id,text,label\n" + "".join(f"s{i:02d},texte {i},{g}\n" for i, g in enumerate(gold)), encoding="utf-8"
    )
    sha = load_dataset(str(data), DataDir(tmp_path)).sha256
    runs = tmp_path / "runs"
    for adapter, label, cut in (("encoder", "clf", 0.5), ("replay", "published", 0.15)):
        writer = RunWriter(
            runs, RunSpec(adapter=adapter, model=label, dataset=str(data), dataset_sha256=sha, label=label)
        )
        writer.extend(
            [
                Record(sample_id=f"s{i:02d}", pred=int(s >= cut), status="ok", score=s, raw="", gold=g)
                for i, (g, s) in enumerate(zip(gold, scores))
            ]
        )
        writer.finish()
    return data, runs, gold, scores


def test_calibrate_command_records_the_rest_as_a_subset_run(tmp_path, cli):
    from toxbench.records import Run, find_run

    data, runs, gold, scores = _scored_runs(tmp_path)
    code, out, err = cli(
        "calibrate", "clf", "--runs", runs, "--dev-fraction", "0.5", "--seed", "1", "--json", tmp_path / "c.json"
    )
    assert code == 0, err
    result = json.loads((tmp_path / "c.json").read_text())
    dev = set(result["dev_ids"])
    assert len(dev) == 20 and sum(gold[int(s[1:])] for s in dev) == 10
    dev_pairs = [(gold[i], scores[i]) for i in range(40) if f"s{i:02d}" in dev]
    assert result["threshold"] == pytest.approx(
        choose_threshold(np.array([g for g, _ in dev_pairs]), np.array([s for _, s in dev_pairs]), "accuracy")[0]
    )
    assert f"threshold {result['threshold']:.6g}, chosen on a dev part of 20 samples (0.5, stratified, seed 1)" in out
    calibrated = Run.load(find_run("clf-calibrated-accuracy", runs))
    assert calibrated.spec.adapter == "calibrated" and calibrated.spec.subset == "rest after a 0.5 dev split, seed 1"
    assert sorted(r.sample_id for r in calibrated.records) == sorted(
        f"s{i:02d}" for i in range(40) if f"s{i:02d}" not in dev
    )
    assert all(r.pred == int(r.score >= result["threshold"]) for r in calibrated.records)
    rest_accuracy = np.mean([r.pred == r.gold for r in calibrated.records])
    assert result["metrics"]["test calibrated"]["accuracy"] == pytest.approx(rest_accuracy)
    assert result["metrics"]["test own"]["accuracy"] == pytest.approx(
        np.mean([int(scores[int(r.sample_id[1:])] >= 0.5) == r.gold for r in calibrated.records])
    )

    code, out, err = cli(
        "leaderboard", "--dataset", str(data), "--runs", runs, "--no-published", "--out", tmp_path / "board"
    )
    assert code == 0, err
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    subsets = board.split("## Runs on part of the dataset")[1]
    assert "`clf-calibrated-accuracy`" in subsets and "calibrated:clf" in subsets
    assert "threshold away from 0.5: its labels are its scores cut between" in board
    assert board.count("threshold away from 0.5") == 1  # the published file only, not the live run


def test_calibrate_refuses_what_it_cannot_do(tmp_path, cli):
    from toxbench.records import Record, RunSpec, RunWriter

    data, runs, gold, _ = _scored_runs(tmp_path)
    writer = RunWriter(
        runs,
        RunSpec(
            adapter="replay", model="labels-only", dataset=str(data), dataset_sha256="ab" * 32, label="labels-only"
        ),
    )
    writer.extend([Record(sample_id=f"s{i:02d}", pred=g, status="ok", raw="", gold=g) for i, g in enumerate(gold)])
    writer.finish()
    before = sorted(p.name for p in runs.iterdir())
    for args, message in (
        (["labels-only"], "labels-only: the run recorded no scores"),
        (["clf", "--dev-fraction", "1"], "--dev-fraction 1.0: give a fraction between 0 and 1"),
        (["clf", "--dev-fraction", "0.01"], "clf: --dev-fraction 0.01: cannot split 40 samples by label"),
        (["clf", "--objective", "f1"], "--objective f1: choose accuracy or macro-f1"),
        (["clf", "--seed", "-1"], "--seed -1: give a whole number of at least 0"),
        (["nope"], "no run 'nope'"),
        (["clf", "--json", tmp_path], f"{tmp_path}: a directory; give --json a file path"),
    ):
        code, _, err = cli("calibrate", *args, "--runs", runs)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
    assert sorted(p.name for p in runs.iterdir()) == before


def test_perspective_files_are_not_marked_tuned():
    """Their label is any attribute at 0.5, their score TOXICITY alone: a cut on it is no threshold."""
    from toxbench.adapters.replay import score_decides_label

    raw = "{\"toxicity_score\": \"{'INSULT': 0.7, 'TOXICITY': 0.46}\"}"
    records = [
        Record(sample_id="a", pred=1, status="ok", score=0.46, raw=raw, gold=1),
        Record(sample_id="b", pred=0, status="ok", score=0.2, raw=raw.replace("0.7", "0.1"), gold=0),
    ]
    assert tuned_note(records) is not None and not score_decides_label(records)
    assert score_decides_label(
        [Record(sample_id="a", pred=1, status="ok", score=0.46, raw='{"toxicity_score": "0.46"}', gold=1)]
    )
