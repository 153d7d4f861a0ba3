"""Ensembles of recorded runs of one dataset, chosen without looking at the labels they are scored
on: pure functions of the members' labels (and scores).

- `majority_vote`: each sample's label is the majority of the members that gave one; a tie, or no
  member with a label, gives no label (counted as the run's policy counts a missing label).
- `cross_fitted_stack`: logistic regression on the members' votes (a missing label is 0.5) or
  scores. Cross-fitted: K stratified folds, each fold predicted by a model fitted on the other
  folds only, repeated over seeds; member selection (the best k members by accuracy) happens on
  the training folds too. `in_sample` fits and predicts on everything: the optimistic number,
  only ever shown labelled as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

MISSING_VOTE = 0.5


def vote_matrix(members: Sequence[dict[str, int | None]], sample_ids: Sequence[str]) -> np.ndarray:
    """samples x members: 1, 0, or nan where the member gave no label (or has no record)."""
    matrix = np.full((len(sample_ids), len(members)), np.nan)
    for j, labels in enumerate(members):
        for i, sid in enumerate(sample_ids):
            value = labels.get(sid)
            if value is not None:
                matrix[i, j] = value
    return matrix


def majority_vote(votes: np.ndarray) -> list[int | None]:
    """The majority label of each row, ignoring missing votes; None on a tie or with no votes."""
    toxic = np.nansum(votes == 1, axis=1)
    clean = np.nansum(votes == 0, axis=1)
    return [1 if t > c else 0 if c > t else None for t, c in zip(toxic.tolist(), clean.tolist())]


def stack_features(votes: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(votes), MISSING_VOTE, votes)


def member_accuracy(votes: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per member: correct labels over all samples (a missing label is wrong)."""
    return np.nanmean(np.where(np.isnan(votes), 0.0, votes == gold[:, None]), axis=0)


@dataclass
class StackResult:
    """Out-of-fold predictions: one row per seed."""

    oof: np.ndarray  # seeds x samples, 0/1
    accuracy: list[float]  # per seed
    splits: list[list[tuple[np.ndarray, np.ndarray]]] = field(repr=False, default_factory=list)  # per seed: (train, test) indices

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def low(self) -> float:
        return float(np.min(self.accuracy))

    @property
    def high(self) -> float:
        return float(np.max(self.accuracy))


def _logistic(c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000)


def cross_fitted_stack(features: np.ndarray, gold: np.ndarray, folds: int = 5, seeds: Sequence[int] = range(10), best_k: int | None = None,
                       votes: np.ndarray | None = None, c: float = 1.0, model: Callable[[], object] | None = None) -> StackResult:
    """Out-of-fold stacked predictions for each seed. `best_k` keeps the k members most accurate
    on the training folds (`votes` say how accurate; default: the features)."""
    from sklearn.model_selection import StratifiedKFold

    gold = np.asarray(gold)
    votes = features if votes is None else votes
    make = model or (lambda: _logistic(c))
    oof = np.zeros((len(seeds), len(gold)), dtype=int)
    all_splits = []
    for row, seed in enumerate(seeds):
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, gold))
        for train, test in splits:
            columns = np.arange(features.shape[1])
            if best_k is not None:
                columns = np.argsort(-member_accuracy(votes[train], gold[train]), kind="stable")[:best_k]
            fitted = make().fit(features[np.ix_(train, columns)], gold[train])
            oof[row, test] = fitted.predict(features[np.ix_(test, columns)])
        all_splits.append(splits)
    accuracy = [float(np.mean(oof[r] == gold)) for r in range(len(seeds))]
    return StackResult(oof, accuracy, all_splits)


def in_sample_stack(features: np.ndarray, gold: np.ndarray, c: float = 1.0) -> float:
    """Accuracy of a model fitted and scored on the same labels: optimistic, never the result."""
    fitted = _logistic(c).fit(features, gold)
    return float(np.mean(fitted.predict(features) == gold))


@dataclass
class Member:
    name: str
    run_dir: object
    labels: dict  # sample id -> 0/1/None


def members(runs_dirs: Sequence, dataset: str, patterns: Sequence[str] = ()) -> tuple[list[Member], list[str]]:
    """(members, notes): every complete, whole-dataset run of `dataset` (published replays and live
    runs alike), or those whose label or run id matches one of `patterns` (fnmatch globs). Subset
    runs and earlier ensembles are left out and the notes say so."""
    from fnmatch import fnmatch

    from toxbench.records import distinct_labels, read_records, readable_runs

    found, notes = [], []
    for runs_dir in runs_dirs:
        runs, broken = readable_runs(runs_dir)
        notes += broken
        for run_dir, manifest in runs:
            spec = manifest.spec
            if spec.dataset != dataset or manifest.status != "complete":
                continue
            name = spec.label or run_dir.name
            if patterns and not any(fnmatch(name, p) or fnmatch(run_dir.name, p) for p in patterns):
                continue
            if spec.subset or spec.adapter == "ensemble":
                notes.append(f"{name}: left out ({'a subset run' if spec.subset else 'an ensemble'})")
                continue
            found.append((run_dir, manifest, {r.sample_id: r.pred for r in read_records(run_dir / "predictions.jsonl")}))
    names = distinct_labels({d.name: m.spec for d, m, _ in found})
    return [Member(names[d.name], d, labels) for d, _, labels in found], notes


def report(members_: list[Member], sample_ids: list[str], gold: np.ndarray, folds: int = 5, seeds: int = 10, best_k: int | None = None,
           show_in_sample: bool = False) -> dict:
    """Every method's out-of-fold accuracy (mean and range over seeds, Wilson 95% at the mean)
    beside the best single member, which is chosen on the very labels it is scored on and is
    labelled so."""
    from toxbench.analysis.agreement import proportion

    votes = vote_matrix([m.labels for m in members_], sample_ids)
    n = len(gold)
    singles = member_accuracy(votes, gold)
    best = int(np.argmax(singles))
    rows = [{"method": "best single run (chosen on these labels: optimistic)", "members": members_[best].name, "accuracy": float(singles[best]),
             "low": None, "high": None, "ci": proportion(int(round(singles[best] * n)), n).as_dict()}]
    voted = majority_vote(votes)
    ties = sum(v is None for v in voted)
    vote_accuracy = float(np.mean([v == g for v, g in zip(voted, gold.tolist())]))
    rows.append({"method": f"majority vote ({ties} ties or no votes, counted wrong)", "members": f"{len(members_)} runs", "accuracy": vote_accuracy,
                 "low": None, "high": None, "ci": proportion(int(round(vote_accuracy * n)), n).as_dict()})
    features = stack_features(votes)
    stacked = cross_fitted_stack(features, gold, folds, range(seeds))
    rows.append({"method": f"stack: logistic regression on votes, {folds}-fold cross-fitted, {seeds} seeds", "members": f"{len(members_)} runs",
                 "accuracy": stacked.mean, "low": stacked.low, "high": stacked.high, "ci": proportion(int(round(stacked.mean * n)), n).as_dict()})
    if best_k:
        picked = cross_fitted_stack(features, gold, folds, range(seeds), best_k=best_k, votes=votes)
        rows.append({"method": f"stack of the best {best_k} runs (chosen inside each fold), {folds}-fold, {seeds} seeds",
                     "members": f"{best_k} of {len(members_)} runs", "accuracy": picked.mean, "low": picked.low, "high": picked.high,
                     "ci": proportion(int(round(picked.mean * n)), n).as_dict()})
    if show_in_sample:
        inside = in_sample_stack(features, gold)
        rows.append({"method": "stack fitted and scored on the same labels (in-sample: optimistic, not a result)", "members": f"{len(members_)} runs",
                     "accuracy": inside, "low": None, "high": None, "ci": None})
    missing = int(np.isnan(votes).sum())
    return {"n": n, "members": [m.name for m in members_], "missing_votes": missing, "folds": folds, "seeds": seeds, "rows": rows}


def markdown(dataset: str, result: dict) -> str:
    lines = [f"# Ensembles on {dataset}", "",
             f"{len(result['members'])} complete runs of {result['n']} samples ({result['missing_votes']} missing votes: 0.5 for stacking, "
             "ignored by the vote). Accuracy counts a missing label as wrong. Intervals are Wilson 95%; a stack's range is over its seeds.", "",
             "| method | members | accuracy | range over seeds | Wilson 95% |", "|---|---|---|---|---|"]
    for row in result["rows"]:
        spread = f"{row['low']:.3f}–{row['high']:.3f}" if row["low"] is not None else ""
        ci = f"[{row['ci']['low']:.3f}, {row['ci']['high']:.3f}]" if row["ci"] else ""
        lines.append(f"| {row['method']} | {row['members']} | {row['accuracy']:.3f} | {spread} | {ci} |")
    lines += ["", "Members: " + ", ".join(result["members"])]
    return "\n".join(lines) + "\n"
