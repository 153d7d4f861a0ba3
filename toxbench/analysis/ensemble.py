"""Ensembles of recorded runs of one dataset, chosen without looking at the labels they are scored
on: pure functions of the members' labels (and scores).

- `majority_vote`: each sample's label is the majority of the members that gave one; a tie, or no
  member with a label, gives no label (counted as the run's policy counts a missing label).
- `cross_fitted_stack`: logistic regression on the members' votes (a missing label is 0.5) or
  scores. Cross-fitted: K stratified folds, each fold predicted by a model fitted on the other
  folds only, repeated over seeds; member selection (the best k members by accuracy) and the
  regularisation (`c="auto"`: inner cross-validation on log-loss) are chosen on the training folds
  too. `in_sample` fits and predicts on everything: the optimistic number, only ever shown
  labelled as such.
- `build` computes every requested method over a set of members and returns, besides the table
  rows, each ensemble's per-sample labels and scores, which the CLI writes as an ordinary run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from toxbench.analysis.markdown_cells import cell
from toxbench.errors import ToxbenchError
from toxbench.records import RunSpec
from toxbench.types import Record

MISSING_VOTE = 0.5
C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))
"""The regularisation strengths `c="auto"` chooses among, on each training part."""
INNER_FOLDS = 5
Features = Literal["votes", "scores"]


def vote_matrix(members: Sequence[dict[str, int | None]], sample_ids: Sequence[str]) -> np.ndarray:
    """samples x members: 1, 0, or nan where the member gave no label (or has no record)."""
    matrix = np.full((len(sample_ids), len(members)), np.nan)
    for j, labels in enumerate(members):
        for i, sid in enumerate(sample_ids):
            value = labels.get(sid)
            if value is not None:
                matrix[i, j] = value
    return matrix


def vote_counts(votes: np.ndarray) -> tuple[list[int], list[int]]:
    """Per row: (toxic votes, non-toxic votes); a missing vote is neither."""
    return (votes == 1).sum(axis=1).tolist(), (votes == 0).sum(axis=1).tolist()


def majority_vote(votes: np.ndarray) -> list[int | None]:
    """The majority label of each row, ignoring missing votes; None on a tie or with no votes."""
    return [1 if t > c else 0 if c > t else None for t, c in zip(*vote_counts(votes))]


def stack_features(votes: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """The stack's inputs: a member's score where it recorded one, else its vote, else 0.5."""
    filled = np.where(np.isnan(votes), MISSING_VOTE, votes)
    return filled if scores is None else np.where(np.isnan(scores), filled, scores)


def member_accuracy(votes: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per member: correct labels over all samples (a missing label is wrong)."""
    return (votes == gold[:, None]).mean(axis=0)  # nan == anything is False


@dataclass
class StackResult:
    """Out-of-fold predictions: one row per seed."""

    oof: np.ndarray  # seeds x samples, 0/1
    proba: np.ndarray  # seeds x samples, out-of-fold P(toxic)
    accuracy: list[float]  # per seed
    splits: list[list[tuple[np.ndarray, np.ndarray]]] = field(
        repr=False, default_factory=list
    )  # per seed: (train, test) indices

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracy))

    @property
    def low(self) -> float:
        return float(np.min(self.accuracy))

    @property
    def high(self) -> float:
        return float(np.max(self.accuracy))

    @property
    def seed_mean_proba(self) -> np.ndarray:
        """Each sample's out-of-fold P(toxic) averaged over the seeds: no model behind it saw the
        sample's label, so it is as honest as each seed's, and it is what the recorded run holds."""
        return self.proba.mean(axis=0)


def _logistic(c: float | str, seed: int = 0):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    if c == "auto":
        return LogisticRegressionCV(
            Cs=list(C_GRID),
            cv=StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed),
            scoring="neg_log_loss",
            l1_ratios=(0.0,),
            use_legacy_attributes=False,
            max_iter=1000,
        )
    return LogisticRegression(C=float(c), max_iter=1000)


def cross_fitted_stack(
    features: np.ndarray,
    gold: np.ndarray,
    folds: int = 5,
    seeds: Sequence[int] = range(10),
    best_k: int | None = None,
    votes: np.ndarray | None = None,
    c: float | str = 1.0,
) -> StackResult:
    """Out-of-fold stacked predictions for each seed. `best_k` keeps the k members most accurate
    on the training folds (`votes` say how accurate; default: the features); `c="auto"` chooses
    the regularisation by inner cross-validation on the training folds."""
    from sklearn.model_selection import StratifiedKFold

    gold = np.asarray(gold)
    votes = features if votes is None else votes
    oof = np.zeros((len(seeds), len(gold)), dtype=int)
    proba = np.zeros((len(seeds), len(gold)))
    all_splits = []
    for row, seed in enumerate(seeds):
        splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(features, gold))
        for train, test in splits:
            columns = np.arange(features.shape[1])
            if best_k is not None:
                columns = np.argsort(-member_accuracy(votes[train], gold[train]), kind="stable")[:best_k]
            fitted = _logistic(c, seed).fit(features[np.ix_(train, columns)], gold[train])
            held = features[np.ix_(test, columns)]
            oof[row, test] = fitted.predict(held)
            proba[row, test] = fitted.predict_proba(held)[:, 1]
        all_splits.append(splits)
    accuracy = [float(np.mean(oof[r] == gold)) for r in range(len(seeds))]
    return StackResult(oof, proba, accuracy, all_splits)


def cross_fitted_best_single(
    votes: np.ndarray, gold: np.ndarray, folds: int = 5, seeds: Sequence[int] = range(10)
) -> list[float]:
    """Per seed, the out-of-fold accuracy of the single member most accurate on the training folds:
    the single-model reference a stack fitted on the same folds should be compared with (the best
    member chosen on all the labels it is then scored on is optimistic)."""
    from sklearn.model_selection import StratifiedKFold

    gold = np.asarray(gold)
    accuracy = []
    for seed in seeds:
        correct = 0
        for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(votes, gold):
            chosen = int(
                np.argmax(member_accuracy(votes[train], gold[train]))
            )  # the first of equals, as argsort(stable) picks
            correct += int((votes[test, chosen] == gold[test]).sum())
        accuracy.append(correct / len(gold))
    return accuracy


def in_sample_stack(features: np.ndarray, gold: np.ndarray, c: float | str = 1.0) -> float:
    """Accuracy of a model fitted and scored on the same labels: optimistic, never the result."""
    fitted = _logistic(c).fit(features, gold)
    return float(np.mean(fitted.predict(features) == gold))


@dataclass(frozen=True)
class StackConfig:
    """One stacking recipe: its inputs, its regularisation and its member selection."""

    features: Features = "votes"
    c: float | str = 1.0  # "auto": chosen on each training part by inner cross-validation (log-loss)
    best_k: int | None = None  # keep the k members most accurate on each training part

    def describe(self) -> str:
        inputs = "votes" if self.features == "votes" else "scores where recorded, else votes"
        reg = f"C chosen by inner {INNER_FOLDS}-fold CV on log-loss" if self.c == "auto" else f"C={self.c:g}"
        pick = f"; the best {self.best_k} runs chosen inside each fold" if self.best_k else ""
        return f"logistic regression on {inputs}, {reg}{pick}"

    def tag(self) -> str:
        c = "auto" if self.c == "auto" else f"{self.c:g}"
        return f"stack-{self.features}-c{c}" + (f"-best{self.best_k}" if self.best_k else "")

    def params(self) -> dict:
        return {"features": self.features, "c": self.c, "best_k": self.best_k}


@dataclass
class Member:
    name: str
    run_dir: Path
    labels: dict  # sample id -> 0/1/None
    scores: dict  # sample id -> P(toxic), only where the run recorded one


def members(
    runs_dirs: Sequence,
    dataset: str,
    sample_ids: Sequence[str],
    dataset_sha256: str | None = None,
    patterns: Sequence[str] = (),
    source: str = "all",
) -> tuple[list[Member], list[str]]:
    """(members, notes): every complete run of the whole of `dataset` (published replays and live
    runs alike), or those whose label or run id matches one of `patterns` (fnmatch globs). Subset
    runs, runs that hold records for fewer than all the dataset's samples (a partial published
    file) and runs of another version of the dataset are left out, and the notes say so; earlier
    ensembles are never members. `source` (yours, release or all) keeps the runs made here or the
    release's replayed files only."""
    from fnmatch import fnmatch

    from toxbench.records import PREDICTIONS, distinct_labels, read_records, readable_runs, run_source

    found, notes, seen, matched = [], [], set(), set()
    wanted = set(sample_ids)
    for runs_dir in runs_dirs:
        runs, broken = readable_runs(runs_dir)
        notes += broken
        for run_dir, manifest in runs:
            spec = manifest.spec
            if spec.dataset != dataset or manifest.status != "complete" or run_dir.name in seen:
                continue
            if source not in ("all", run_source(spec)):
                continue
            name = spec.label or run_dir.name
            matching = {p for p in patterns if fnmatch(name, p) or fnmatch(run_dir.name, p)}
            if patterns and not matching:
                continue
            matched |= matching
            seen.add(run_dir.name)
            if spec.adapter == "ensemble":  # made from members, never one
                continue
            if spec.subset:
                notes.append(f"{name}: a subset run")
                continue
            if dataset_sha256 and spec.dataset_sha256 != dataset_sha256:
                notes.append(f"{name}: recorded on another version of the dataset's files")
                continue
            records = [r for r in read_records(run_dir / PREDICTIONS) if r.sample_id in wanted]
            if len(records) < len(wanted):
                notes.append(f"{name}: holds records for {len(records)} of {len(wanted)} samples")
                continue
            found.append(
                (
                    run_dir,
                    manifest,
                    {r.sample_id: r.pred for r in records},
                    {r.sample_id: r.score for r in records if r.score is not None},
                )
            )
    if unmatched := [p for p in patterns if p not in matched]:
        raise ToxbenchError(
            f"{', '.join(unmatched)}: no complete run of {dataset} by that label, id or glob in "
            f"{', '.join(map(str, runs_dirs))} (`toxbench runs list` shows them)"
        )
    names = distinct_labels({d.name: m.spec for d, m, _, _ in found})
    return [Member(names[d.name], d, labels, scores) for d, _, labels, scores in found], notes


def score_matrix(members_: Sequence[Member], sample_ids: Sequence[str]) -> np.ndarray:
    """samples x members: each member's recorded P(toxic), nan where it has none."""
    return vote_matrix([m.scores for m in members_], sample_ids)


@dataclass
class Derived:
    """One ensemble's per-sample output, to be written as a run."""

    method: Literal["vote", "stack"]
    config: StackConfig | None
    labels: list[int | None]
    scores: list[float | None]
    raws: list[str]
    accuracy: float
    row: dict = field(repr=False, default_factory=dict)


@dataclass
class Ensembles:
    n: int
    members: list[Member]
    missing_votes: int
    members_with_scores: list[str]
    folds: int
    seeds: int
    rows: list[dict]
    derived: list[Derived]
    fair_single: float | None = (
        None  # the best single run chosen inside the folds (mean over seeds), when a stack was fitted
    )
    best_single: tuple[str, float] | None = None  # the best single run chosen on all the labels (optimistic)

    def as_dict(self) -> dict:
        return {
            "n": self.n,
            "members": [m.name for m in self.members],
            "missing_votes": self.missing_votes,
            "members_with_scores": self.members_with_scores,
            "folds": self.folds,
            "seeds": self.seeds,
            "rows": self.rows,
        }


def _row(
    method: str, members_: str, accuracy: float, n: int, low: float | None = None, high: float | None = None, **extra
) -> dict:
    from toxbench.analysis.agreement import proportion

    return {
        "method": method,
        "members": members_,
        "accuracy": accuracy,
        "low": low,
        "high": high,
        "ci": proportion(round(accuracy * n), n).as_dict(),
        **extra,
    }


def build(
    members_: list[Member],
    sample_ids: list[str],
    gold: np.ndarray,
    folds: int = 5,
    seeds: int = 10,
    vote: bool = True,
    stacks: Sequence[StackConfig] = (StackConfig(),),
    show_in_sample: bool = False,
) -> Ensembles:
    """Every requested method's out-of-fold accuracy (mean and range over seeds, Wilson 95% at the
    mean) beside the best single member, which is chosen on the very labels it is scored on and is
    labelled so; and each method's per-sample output."""
    votes = vote_matrix([m.labels for m in members_], sample_ids)
    scores = score_matrix(members_, sample_ids)
    n, count = len(gold), f"{len(members_)} runs"
    singles = member_accuracy(votes, gold)
    best = int(np.argmax(singles))
    rows = [_row("best single run (chosen on these labels: optimistic)", members_[best].name, float(singles[best]), n)]
    fair = None
    if stacks:
        per_seed = cross_fitted_best_single(votes, gold, folds, range(seeds))
        fair = float(np.mean(per_seed))
        rows.append(
            _row(
                f"best single run chosen inside each fold (the fair reference for a stack); {folds}-fold, {seeds} seeds",
                "1 of " + count,
                fair,
                n,
                min(per_seed),
                max(per_seed),
            )
        )
    derived: list[Derived] = []
    if vote:
        voted = majority_vote(votes)
        toxic, clean = vote_counts(votes)
        share = [t / (t + c) if t + c else None for t, c in zip(toxic, clean)]
        raws = [f"votes: {t} toxic, {c} non-toxic, {len(members_) - t - c} no label" for t, c in zip(toxic, clean)]
        ties = sum(v is None for v in voted)
        accuracy = float(np.mean([v == g for v, g in zip(voted, gold.tolist())]))
        rows.append(
            _row(f"majority vote ({ties} ties or no votes, counted wrong)", count, accuracy, n, recorded=accuracy)
        )
        derived.append(Derived("vote", None, voted, share, raws, accuracy, rows[-1]))
    for config in stacks:
        features = stack_features(votes, scores if config.features == "scores" else None)
        result = cross_fitted_stack(features, gold, folds, range(seeds), best_k=config.best_k, votes=votes, c=config.c)
        averaged = result.seed_mean_proba
        labels = [int(p >= 0.5) for p in averaged.tolist()]
        recorded = float(np.mean(np.array(labels) == gold))
        used = f"{config.best_k} of {len(members_)} runs" if config.best_k else count
        rows.append(
            _row(
                f"stack: {config.describe()}; {folds}-fold cross-fitted, {seeds} seeds",
                used,
                result.mean,
                n,
                result.low,
                result.high,
                recorded=recorded,
            )
        )
        raws = [
            f"out-of-fold P(toxic) {p:.4f}, the mean over {seeds} seeds ({int(k)} of them said toxic)"
            for p, k in zip(averaged.tolist(), result.oof.sum(axis=0).tolist())
        ]
        derived.append(Derived("stack", config, labels, averaged.tolist(), raws, recorded, rows[-1]))
    if show_in_sample:
        config = stacks[0] if stacks else StackConfig()
        features = stack_features(votes, scores if config.features == "scores" else None)
        rows.append(
            {
                "method": f"stack fitted and scored on the same labels ({config.describe()}; in-sample: optimistic, not a result)",
                "members": count,
                "accuracy": in_sample_stack(features, gold, config.c),
                "low": None,
                "high": None,
                "ci": None,
            }
        )
    with_scores = [m.name for j, m in enumerate(members_) if not np.isnan(scores[:, j]).all()]
    return Ensembles(
        n,
        members_,
        int(np.isnan(votes).sum()),
        with_scores,
        folds,
        seeds,
        rows,
        derived,
        fair,
        (members_[best].name, float(singles[best])),
    )


def run_spec(
    derived: Derived,
    members_: Sequence[Member],
    dataset: str,
    dataset_sha256: str,
    lang: str | None,
    folds: int,
    seeds: int,
) -> RunSpec:
    """The ensemble as a run: its identity names every member run, the method and its settings."""
    params: dict = {"members": sorted(m.run_dir.name for m in members_)}
    if derived.method == "stack":
        params |= {"folds": folds, "seeds": seeds, **derived.config.params()}
    tag = "vote" if derived.method == "vote" else derived.config.tag()
    return RunSpec(
        adapter="ensemble",
        model=derived.method,
        adapter_params=params,
        dataset=dataset,
        dataset_sha256=dataset_sha256,
        lang=lang,
        label=f"ensemble-{tag}-of-{len(members_)}",
    )


def run_notes(
    derived: Derived,
    members_: Sequence[Member],
    folds: int,
    seeds: int,
    fair_single: float | None = None,
    best_single: tuple[str, float] | None = None,
) -> list[str]:
    if derived.method == "vote":
        how = "majority vote (a tie or no vote is no label)"
    else:
        how = (
            f"stacking: {derived.config.describe()}; each label is out of fold ({folds} stratified folds), from P(toxic) averaged over "
            f"{seeds} seeds' fold assignments"
        )
    notes = [f"an ensemble of {len(members_)} recorded runs (named in the spec): {how}"]
    if derived.method == "stack":
        train = round(100 * (folds - 1) / folds)
        fitted = f"{FITTED_NOTE}: each fold's model is fitted on {train}% of them"
        if fair_single is not None:
            fitted += (
                f"; the fair single-model reference, the best single run chosen inside the same folds, scores {fair_single:.3f}"
                + (
                    f" (the best single run chosen on all these labels, {best_single[0]} at {best_single[1]:.3f}, is optimistic)"
                    if best_single
                    else ""
                )
            )
        notes.append(fitted)
    return notes


FITTED_NOTE = "learned from this benchmark's own labels"


def records(derived: Derived, sample_ids: Sequence[str], gold: np.ndarray) -> list[Record]:
    return [
        Record(
            sample_id=sid,
            pred=label,
            status="ok" if label is not None else "unparseable",
            score=score,
            raw=raw,
            attempts=0,
            gold=int(g),
        )
        for sid, label, score, raw, g in zip(sample_ids, derived.labels, derived.scores, derived.raws, gold.tolist())
    ]


def markdown(dataset: str, result: dict) -> str:
    scored = result.get("members_with_scores") or []
    lines = [
        f"# Ensembles on {dataset}",
        "",
        f"{len(result['members'])} complete runs of {result['n']} samples ({result['missing_votes']} missing votes: 0.5 for stacking, "
        f"ignored by the vote; {len(scored)} runs recorded scores{': ' + ', '.join(scored) if scored else ''}). "
        "Accuracy counts a missing label as wrong. Intervals are Wilson 95%; a stack's accuracy is the mean over its seeds, "
        "with the range over seeds. *Recorded run*: the accuracy of the run written for the method (a stack's out-of-fold "
        "P(toxic) averaged over the seeds, thresholded at 0.5).",
        "",
        "| method | members | accuracy | range over seeds | Wilson 95% | recorded run |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        spread = f"{row['low']:.3f}–{row['high']:.3f}" if row["low"] is not None else ""
        ci = f"[{row['ci']['low']:.3f}, {row['ci']['high']:.3f}]" if row["ci"] else ""
        recorded = f"{row['recorded']:.3f}" if row.get("recorded") is not None else ""
        if row.get("run"):
            recorded += f" `{row['run']}`"
        lines.append(
            f"| {cell(row['method'])} | {cell(row['members'])} | {row['accuracy']:.3f} | {spread} | {ci} | {recorded} |"
        )
    from toxbench.records import sources_text

    sources = sources_text(result.get("sources") or {})
    lines += ["", "Members: " + ", ".join(result["members"]) + (f" (sources: {sources})" if sources else "")]
    if result.get("notes"):
        lines += ["", "Not members:", "", *(f"- {note}" for note in result["notes"])]
    return "\n".join(lines) + "\n"
