"""Paired comparison of two runs on the same dataset: does model A really beat model B?

Only samples both runs labelled are compared (a sample one run could not label says nothing about
which model is right). The exact McNemar test is a two-sided binomial test on the discordant pairs
(A right and B wrong against A wrong and B right), checked against scipy; Cohen's kappa comes from
scikit-learn. Intervals on F1 are percentile bootstraps over samples, seeded so a report is
reproducible; the F1 difference resamples the same samples for both runs (paired).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from toxbench._util import csv_for_people, write_atomic
from toxbench.analysis.significance import mcnemar_exact
from toxbench.errors import ToxbenchError
from toxbench.records import Run, find_run

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Disagreement:
    sample_id: str
    gold: int
    pred_a: int
    pred_b: int


@dataclass(frozen=True)
class Comparison:
    run_a: str
    run_b: str
    n_a: int  # samples recorded by A
    n_b: int
    n_common: int  # samples both runs labelled
    agreement: float
    kappa: float
    accuracy_a: float
    accuracy_b: float
    only_a_right: int  # McNemar's discordant cells
    only_b_right: int
    mcnemar_p: float  # exact two-sided
    f1_a: tuple[float, float, float]  # macro F1 with its bootstrap interval (low, value, high)
    f1_b: tuple[float, float, float]
    f1_diff: tuple[float, float, float]  # A minus B, paired bootstrap
    confidence: float
    seed: int
    disagreements: list[Disagreement] = field(repr=False)

    def as_dict(self) -> dict:
        return asdict(self)

    def frame(self):
        """The disagreements as a pandas DataFrame (sample_id, gold, pred_a, pred_b)."""
        import pandas as pd

        return pd.DataFrame([asdict(d) for d in self.disagreements], columns=["sample_id", "gold", "pred_a", "pred_b"])


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa; 1.0 when both raters give one identical constant label (sklearn says nan)."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return float("nan")
    if np.array_equal(a, b):
        return 1.0
    return float(cohen_kappa_score(a, b, labels=[0, 1]))


def macro_f1(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Macro F1 over classes 0 and 1 along the last axis (vectorised so the bootstrap stays fast;
    equal to sklearn's f1_score(average="macro", zero_division=0), which a test checks)."""
    f1s = []
    for c in (0, 1):
        tp = ((pred == c) & (gold == c)).sum(-1)
        denom = (pred == c).sum(-1) + (gold == c).sum(-1)
        f1s.append(np.divide(2 * tp, denom, out=np.zeros(np.shape(tp), dtype=float), where=denom > 0))
    return (f1s[0] + f1s[1]) / 2


def bootstrap_f1(
    gold: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray | None = None,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[float, float, float]:
    """(low, value, high) of macro F1 (or of F1(A) - F1(B) with pred_b), percentile bootstrap over samples."""
    from scipy.stats import bootstrap

    gold, pred_a = np.asarray(gold), np.asarray(pred_a)
    pred_b = None if pred_b is None else np.asarray(pred_b)

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        idx = idx.astype(int)
        value = macro_f1(gold[idx], pred_a[idx])
        return value - macro_f1(gold[idx], pred_b[idx]) if pred_b is not None else value

    value = float(stat(np.arange(len(gold))))
    if len(gold) < 2:
        return (float("nan"), value, float("nan"))
    result = bootstrap(
        (np.arange(len(gold)),),
        stat,
        n_resamples=n_resamples,
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), value, float(result.confidence_interval.high))


def _labelled(run: Run) -> dict[str, tuple[int, int]]:
    return {r.sample_id: (r.gold, r.pred) for r in run.records if r.pred is not None}


def compare_runs(
    a: Run, b: Run, *, confidence: float = 0.95, seed: int = 0, n_resamples: int = BOOTSTRAP_RESAMPLES
) -> Comparison:
    if a.spec.dataset != b.spec.dataset:
        raise ToxbenchError(
            f"{a.dir.name} is on {a.spec.dataset} and {b.dir.name} on {b.spec.dataset}: compare runs of one dataset"
        )
    la, lb = _labelled(a), _labelled(b)
    common = [sid for sid in la if sid in lb]
    if not common:  # every figure would be nan, and McNemar's p = 1 would read as "no difference"
        raise ToxbenchError(
            f"{a.dir.name} and {b.dir.name} label no sample in common (A labelled {len(la)} of {len(a.records)} records, "
            f"B {len(lb)} of {len(b.records)}): there is nothing to compare"
        )
    gold = np.array([la[s][0] for s in common], dtype=int)
    pa = np.array([la[s][1] for s in common], dtype=int)
    pb = np.array([lb[s][1] for s in common], dtype=int)
    right_a, right_b = pa == gold, pb == gold
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    nan = float("nan")
    n = len(common)
    disagreements = [Disagreement(s, int(g), int(x), int(y)) for s, g, x, y in zip(common, gold, pa, pb) if x != y]
    return Comparison(
        run_a=a.dir.name,
        run_b=b.dir.name,
        n_a=len(a.records),
        n_b=len(b.records),
        n_common=n,
        agreement=float((pa == pb).mean()) if n else nan,
        kappa=cohen_kappa(pa, pb),
        accuracy_a=float(right_a.mean()) if n else nan,
        accuracy_b=float(right_b.mean()) if n else nan,
        only_a_right=only_a,
        only_b_right=only_b,
        mcnemar_p=mcnemar_exact(only_a, only_b),
        f1_a=bootstrap_f1(gold, pa, confidence=confidence, seed=seed, n_resamples=n_resamples),
        f1_b=bootstrap_f1(gold, pb, confidence=confidence, seed=seed, n_resamples=n_resamples),
        f1_diff=bootstrap_f1(gold, pa, pb, confidence=confidence, seed=seed, n_resamples=n_resamples),
        confidence=confidence,
        seed=seed,
        disagreements=disagreements,
    )


def kappa_matrix(runs: list[Run]) -> np.ndarray:
    """Cohen's kappa between every two runs (of one dataset) on the samples both labelled."""
    labelled = [_labelled(r) for r in runs]
    out = np.eye(len(runs))
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            common = [s for s in labelled[i] if s in labelled[j]]
            k = cohen_kappa(
                np.array([labelled[i][s][1] for s in common], dtype=int),
                np.array([labelled[j][s][1] for s in common], dtype=int),
            )
            out[i, j] = out[j, i] = k
    return out


def compare_refs(ref_a: str, ref_b: str, runs_dir: Path, *, seed: int = 0) -> tuple[Run, Run, Comparison]:
    """Two runs named by directory, id, id prefix or label, loaded and compared."""
    a, b = (Run.load(find_run(ref, runs_dir)) for ref in (ref_a, ref_b))
    return a, b, compare_runs(a, b, seed=seed)


def write_comparison(path: Path, names: tuple[str, str], comparison: Comparison) -> Path:
    """The comparison, every disagreement included, as JSON."""
    return write_atomic(
        path, json.dumps({"a": names[0], "b": names[1], **comparison.as_dict()}, indent=2, ensure_ascii=False)
    )


def write_kappa_csv(names: list[str], matrix: np.ndarray, path: Path) -> Path:
    return write_atomic(
        path, csv_for_people(["run", *names], ([name, *(f"{k:.4f}" for k in row)] for name, row in zip(names, matrix)))
    )
