"""Ensembles of recorded runs: known votes in, known labels out; and folds that never see their
own labels."""

from __future__ import annotations

import json

import numpy as np

from toxbench.analysis.ensemble import (cross_fitted_stack, in_sample_stack, majority_vote, member_accuracy, stack_features,
                                        vote_matrix)


def test_vote_matrix_and_majority_vote_with_ties_and_missing_labels():
    members = [{"a": 1, "b": 0, "c": 1, "d": None}, {"a": 1, "b": 1, "c": 0}, {"a": 0, "b": 1, "c": None, "d": None}]
    votes = vote_matrix(members, ["a", "b", "c", "d"])
    assert np.array_equal(np.isnan(votes), [[False] * 3, [False] * 3, [False, False, True], [True] * 3])
    # a: 2-1 toxic; b: 2-1 toxic; c: 1-1 tie (the third gave no label); d: no votes
    assert majority_vote(votes) == [1, 1, None, None]
    assert stack_features(votes)[2].tolist() == [1.0, 0.0, 0.5]


def test_stacking_finds_the_member_that_is_always_right():
    rng = np.random.default_rng(0)
    gold = np.array([0, 1] * 50)
    right = gold.astype(float)
    noise = rng.integers(0, 2, size=(100, 2)).astype(float)
    votes = np.column_stack([noise[:, 0], right, noise[:, 1]])
    result = cross_fitted_stack(stack_features(votes), gold, folds=5, seeds=range(3))
    assert result.accuracy == [1.0, 1.0, 1.0]
    assert member_accuracy(votes, gold)[1] == 1.0
    picked = cross_fitted_stack(stack_features(votes), gold, folds=5, seeds=[0], best_k=1, votes=votes)
    assert picked.accuracy == [1.0]


def test_no_fold_model_sees_its_own_labels():
    """Every sample is predicted once per seed, by a model fitted on the other folds. On members
    that are pure noise, a model that saw its own labels scores far above chance (the in-sample
    number shows how far); out of fold it stays near chance."""
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, size=200)
    votes = rng.integers(0, 2, size=(200, 100)).astype(float)
    result = cross_fitted_stack(stack_features(votes), gold, folds=5, seeds=range(3))
    for splits in result.splits:
        predicted = np.concatenate([test for _, test in splits])
        assert sorted(predicted.tolist()) == list(range(200))
        assert all(not set(train) & set(test) for train, test in splits)
    assert in_sample_stack(stack_features(votes), gold) > 0.8
    assert result.mean < 0.6


def test_ensemble_command_over_recorded_runs(tmp_path, cli):
    """Three recorded runs of a user file: one always right, two always wrong in different ways.
    The vote follows the two wrong ones where they agree; the stack learns the right one out of
    fold; a subset run is left out and said so."""
    from toxbench.records import Record, RunSpec, RunWriter

    data = tmp_path / "d.csv"
    gold = [0, 1] * 10
    data.write_text("id,text,label\n" + "".join(f"s{i},texte {i},{g}\n" for i, g in enumerate(gold)), encoding="utf-8")
    runs = tmp_path / "runs"

    def write(label, preds, subset=None):
        writer = RunWriter(runs, RunSpec(adapter="replay", model=label, dataset=str(data), dataset_sha256="ab" * 32, label=label, subset=subset))
        writer.extend([Record(sample_id=f"s{i}", pred=p, status="ok" if p is not None else "unparseable", raw="", gold=g)
                       for i, (g, p) in enumerate(zip(gold, preds))])
        writer.finish()

    write("right", gold)
    write("always-toxic", [1] * 20)
    write("flipped", [1 - g for g in gold[:18]] + [None, 0])
    write("part", gold, subset="first-5")
    code, out, err = cli("ensemble", "--dataset", str(data), "--runs", runs, "--folds", "2", "--seeds", "3", "--out", tmp_path / "ens")
    assert code == 0, err
    assert "| best single run (chosen on these labels: optimistic) | right | 1.000 |" in out
    # toxic samples: right + always-toxic say 1 (2-1); non-toxic: always-toxic + flipped say 1 (2-1), except s18,
    # where flipped gave no label (1-1: a tie, no label)
    assert "| majority vote (1 ties or no votes, counted wrong) | 3 runs | 0.500 |" in out
    assert "| stack: logistic regression on votes, 2-fold cross-fitted, 3 seeds | 3 runs | 1.000 | 1.000–1.000 |" in out
    result = json.loads(next((tmp_path / "ens").glob("*.json")).read_text())
    assert any("part: left out (a subset run)" in n for n in result["notes"])
    code, _, err = cli("ensemble", "--dataset", str(data), "--runs", runs, "--member", "right")
    assert code == 2 and "1 complete run(s) found" in err
