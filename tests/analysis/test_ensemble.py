"""Ensembles of recorded runs: known votes in, known labels out; and folds that never see their
own labels."""

from __future__ import annotations

import json

import numpy as np

from toxbench.analysis.ensemble import (
    cross_fitted_stack,
    in_sample_stack,
    majority_vote,
    member_accuracy,
    stack_features,
    vote_matrix,
)


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


def test_c_chosen_inside_the_folds_still_never_sees_a_folds_labels():
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, size=200)
    votes = rng.integers(0, 2, size=(200, 60)).astype(float)
    result = cross_fitted_stack(stack_features(votes), gold, folds=5, seeds=range(2), c="auto")
    assert result.mean < 0.6
    assert result.proba.shape == (2, 200) and ((result.proba > 0) & (result.proba < 1)).all()


def test_scores_carry_what_votes_do_not():
    """A member whose vote is always toxic but whose recorded score ranks the samples perfectly:
    stacking on its votes learns nothing, stacking on its scores is always right."""
    gold = np.array([0, 1] * 40)
    votes = np.column_stack([np.ones(80), np.ones(80)])
    scores = np.column_stack([np.where(gold == 1, 0.875, 0.5), np.full(80, np.nan)])
    on_votes = cross_fitted_stack(stack_features(votes), gold, folds=4, seeds=[0])
    on_scores = cross_fitted_stack(stack_features(votes, scores), gold, folds=4, seeds=[0])
    assert on_votes.accuracy == [0.5] and on_scores.accuracy == [1.0]
    assert stack_features(votes, scores)[:2].tolist() == [[0.5, 1.0], [0.875, 1.0]]


def _user_runs(tmp_path):
    """Runs of a 20-sample user file: one always right, two always wrong in different ways, a
    subset run, a partial run (records for 5 samples) and one of another version of the file."""
    from toxbench.data.datadir import DataDir
    from toxbench.data.datasets import load_dataset
    from toxbench.records import Record, RunSpec, RunWriter

    data = tmp_path / "d.csv"
    gold = [0, 1] * 10
    data.write_text("id,text,label\n" + "".join(f"s{i},texte {i},{g}\n" for i, g in enumerate(gold)), encoding="utf-8")
    sha = load_dataset(str(data), DataDir(tmp_path)).sha256
    runs = tmp_path / "runs"

    def write(label, preds, subset=None, version=sha, scores=None):
        writer = RunWriter(
            runs,
            RunSpec(
                adapter="replay", model=label, dataset=str(data), dataset_sha256=version, label=label, subset=subset
            ),
        )
        writer.extend(
            [
                Record(
                    sample_id=f"s{i}",
                    pred=p,
                    status="ok" if p is not None else "unparseable",
                    raw="",
                    gold=g,
                    score=None if scores is None else scores[i],
                )
                for i, (g, p) in enumerate(zip(gold, preds))
            ]
        )
        writer.finish()

    write("right", gold)
    write("always-toxic", [1] * 20, scores=[0.6 + 0.3 * g for g in gold])
    write("flipped", [1 - g for g in gold[:18]] + [None, 0])
    write("part", gold, subset="first-5")
    write("short", gold[:5])
    write("old", gold, version="ab" * 32)
    return data, runs, gold


def test_ensemble_command_records_each_ensemble_as_a_run(tmp_path, cli):
    """The vote follows the two wrong runs where they agree; the stack learns the right one out of
    fold; runs that are not the whole current dataset are left out and said so; each ensemble is
    an ordinary run: on the leaderboard, marked, and usable by compare."""
    from toxbench.records import Run, find_run

    data, runs, gold = _user_runs(tmp_path)
    code, out, err = cli(
        "ensemble", "--dataset", str(data), "--runs", runs, "--folds", "2", "--seeds", "3", "--out", tmp_path / "ens"
    )
    assert code == 0, err
    assert "| best single run (chosen on these labels: optimistic) | right | 1.000 |" in out
    # toxic samples: right + always-toxic say 1 (2-1); non-toxic: always-toxic + flipped say 1 (2-1), except s18,
    # where flipped gave no label (1-1: a tie, no label)
    assert "| majority vote (1 ties or no votes, counted wrong) | 3 runs | 0.500 |" in out
    assert (
        "| stack: logistic regression on votes, C=1; 2-fold cross-fitted, 3 seeds | 3 runs | 1.000 | 1.000–1.000 |"
        in out
    )
    result = json.loads((tmp_path / "ens" / "d.json").read_text())
    notes = " ".join(result["notes"])
    assert "part: a subset run" in notes and "short: holds records for 5 of 20 samples" in notes
    assert "old: recorded on another version" in notes
    assert result["members"] == ["always-toxic", "flipped", "right"] and result["members_with_scores"] == [
        "always-toxic"
    ]

    vote = Run.load(find_run("ensemble-vote-of-3", runs))
    assert vote.spec.adapter == "ensemble" and vote.manifest.status == "complete"
    assert len(vote.spec.adapter_params["members"]) == 3 and "majority vote" in vote.manifest.notes[0]
    by_id = {r.sample_id: r for r in vote.records}
    assert (
        by_id["s1"].pred == 1
        and by_id["s0"].pred == 1
        and by_id["s18"].pred is None
        and by_id["s18"].status == "unparseable"
    )
    assert by_id["s18"].raw == "votes: 1 toxic, 1 non-toxic, 1 no label" and by_id["s0"].score == 2 / 3
    stack = Run.load(find_run("ensemble-stack-votes-c1-of-3", runs))
    assert stack.spec.adapter_params | {"members": None} == {
        "members": None,
        "folds": 2,
        "seeds": 3,
        "features": "votes",
        "c": 1.0,
        "best_k": None,
    }
    assert [r.pred for r in stack.records] == gold and all(0 <= r.score <= 1 for r in stack.records)

    code, out, err = cli(
        "leaderboard", "--dataset", str(data), "--runs", runs, "--no-published", "--out", tmp_path / "board"
    )
    assert code == 0, err
    board = (tmp_path / "board" / "leaderboard.md").read_text()
    assert (
        "`ensemble-stack-votes-c1-of-3`" in board
        and "ensemble:stack" in board
        and "an ensemble of 3 recorded runs" in board
    )
    code, out, err = cli("compare", "ensemble-stack-votes-c1-of-3", "ensemble-vote-of-3", "--runs", runs, "--show", "0")
    assert code == 0, err
    assert "accuracy (common samples)" in out and "1.0000" in out

    # the same command again finds the same runs and changes nothing; ensembles are never members, nor listed
    before = {p.name: (p / "predictions.jsonl").read_bytes() for p in runs.iterdir()}
    code, out, err = cli(
        "ensemble",
        "--dataset",
        str(data),
        "--runs",
        runs,
        "--folds",
        "2",
        "--seeds",
        "3",
        "--method",
        "vote",
        "--out",
        tmp_path / "again",
    )
    assert code == 0, err
    assert {p.name: (p / "predictions.jsonl").read_bytes() for p in runs.iterdir()} == before
    assert "| 3 runs |" in out and json.loads((tmp_path / "again" / "d.json").read_text())["notes"] == result["notes"]


def test_ensemble_members_by_name_and_stacks_on_scores(tmp_path, cli):
    data, runs, _ = _user_runs(tmp_path)
    code, out, err = cli(
        "ensemble",
        "always-toxic",
        "flip*",
        "--dataset",
        str(data),
        "--runs",
        runs,
        "--folds",
        "2",
        "--seeds",
        "2",
        "--method",
        "stack",
        "--features",
        "votes",
        "--features",
        "scores",
        "--no-record",
    )
    assert code == 0, err
    assert "majority vote" not in out
    assert (
        "| stack: logistic regression on scores where recorded, else votes, C=1; 2-fold cross-fitted, 2 seeds | 2 runs | 1.000 |"
        in out
    )
    assert not any("--ensemble-" in p.name for p in runs.iterdir()) and not (tmp_path / "right").exists()
    code, _, err = cli("ensemble", "right", "--dataset", str(data), "--runs", runs)
    assert code == 2 and "1 complete run(s) of the whole dataset found" in err
    code, _, err = cli(
        "ensemble", "right", "short", "part", "--dataset", str(data), "--runs", runs
    )  # says why the others are out
    assert (
        code == 2
        and err.count("\n") == 1
        and err.rstrip().endswith("; left out: part: a subset run; short: holds records for 5 of 20 samples")
    ), err
    code, _, err = cli("ensemble", "right", "flipped", "rigth", "--dataset", str(data), "--runs", runs)
    assert code == 2 and "rigth: no complete run of" in err  # a name that matches nothing is never silently dropped


def test_ensemble_refuses_bad_options(tmp_path, cli):
    data, runs, _ = _user_runs(tmp_path)
    for args, message in (
        (["--c", "zero"], "--c zero: give a positive number"),
        (["--c", "-1"], "--c -1"),
        (["--method", "mean"], "--method mean: choose one of all, vote, stack"),
        (["--features", "logits"], "--features logits: choose votes or scores"),
        (["--folds", "1"], "--folds 1"),
        (["--runs", tmp_path / "right"], "no such runs directory; --runs is where runs are recorded"),
        (["--folds", "11"], "--folds 11: the dataset has 10 sample(s) of its smaller class"),
        (["--method", "vote", "--best-k", "2"], "--method vote takes none of them"),
    ):
        code, _, err = cli("ensemble", "--dataset", str(data), "--runs", runs, *args)
        assert code == 2 and message in err and "Traceback" not in err, (args, err)
    assert not any("--ensemble-" in p.name for p in runs.iterdir())
