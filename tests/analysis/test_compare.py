"""`toxbench compare`: exact McNemar, Cohen's kappa and bootstrap intervals on hand-computed cases."""

import csv
import json

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score, f1_score

from toxbench.analysis.compare import bootstrap_f1, compare_runs, kappa_matrix, macro_f1, mcnemar_exact
from toxbench.errors import ToxbenchError
from toxbench.records import Run, RunSpec, RunWriter
from toxbench.types import Record

GOLD = [1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
PRED_A = [1, 1, 1, 0, 0, 0, 1, 0, 1, 0]  # 8 right
PRED_B = [1, 0, 0, 0, 0, 1, 1, 0, 1, 1]  # 4 right, and right nowhere A is wrong


def write_run(runs_dir, model: str, preds, gold=GOLD, dataset="toxifrench") -> Run:
    writer = RunWriter(
        runs_dir, RunSpec(adapter="replay", model=model, dataset=dataset, dataset_sha256="ab" * 32, label=model)
    )
    for i, (g, p) in enumerate(zip(gold, preds)):
        status = "ok" if p is not None else "unparseable"
        writer.append(Record(sample_id=f"s{i}", pred=p, status=status, raw="", gold=g))
    writer.finish()
    return Run.load(writer.dir)


def test_mcnemar_and_kappa_match_hand_computed_values(tmp_path):
    c = compare_runs(write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", PRED_B))
    assert (c.n_common, c.only_a_right, c.only_b_right) == (10, 4, 0)
    assert c.mcnemar_p == pytest.approx(2 * 0.5**4)  # both tails of Binomial(4, 1/2) at the extremes: 0.125
    # agreement 6/10; each rater says toxic half the time, so chance agreement is 0.5: kappa = (0.6 - 0.5) / 0.5
    assert c.agreement == pytest.approx(0.6) and c.kappa == pytest.approx(0.2)
    assert c.kappa == pytest.approx(cohen_kappa_score(PRED_A, PRED_B))
    assert (c.accuracy_a, c.accuracy_b) == (0.8, 0.4)
    assert [d.sample_id for d in c.disagreements] == ["s1", "s2", "s5", "s9"]


def test_mcnemar_matches_scipy_on_uneven_cells():
    assert mcnemar_exact(3, 11) == pytest.approx(binomtest(3, 14, 0.5).pvalue)
    for a, b in [(0, 1), (5, 5), (40, 61), (300, 250), (7, 0)]:
        assert mcnemar_exact(a, b) == pytest.approx(binomtest(a, a + b, 0.5).pvalue, rel=1e-9)
    assert mcnemar_exact(11, 3) == pytest.approx(mcnemar_exact(3, 11))
    assert mcnemar_exact(0, 0) == 1.0


def test_only_samples_both_runs_labelled_are_compared(tmp_path):
    b = list(PRED_B)
    b[0] = None  # B could not label s0
    c = compare_runs(write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", b))
    assert c.n_common == 9 and (c.n_a, c.n_b) == (10, 10)


def test_runs_that_label_no_sample_in_common_are_refused(tmp_path):
    """Not a table of nan and "McNemar p = 1 (not significant)"."""
    with pytest.raises(
        ToxbenchError,
        match=r"label no sample in common \(A labelled 10 of 10 records, B 0 of 10\): there is nothing to compare",
    ):
        compare_runs(write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", [None] * 10))


def test_runs_of_different_datasets_are_refused(tmp_path):
    with pytest.raises(ToxbenchError, match="one dataset"):
        compare_runs(write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", PRED_B, dataset="jigsaw-fr"))


def test_bootstrap_is_seeded_and_brackets_the_value():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 300)
    pred = np.where(rng.random(300) < 0.8, gold, 1 - gold)
    first, again = bootstrap_f1(gold, pred, seed=7), bootstrap_f1(gold, pred, seed=7)
    assert first == again
    assert bootstrap_f1(gold, pred, seed=8) != first
    low, value, high = first
    assert low < value < high and 0.7 < value < 0.9 and high - low < 0.15


def test_vectorised_macro_f1_equals_sklearn():
    rng = np.random.default_rng(2)
    gold, pred = rng.integers(0, 2, (50, 40)), rng.integers(0, 2, (50, 40))
    pred[0] = 1  # a row that never predicts 0
    expected = [f1_score(g, p, labels=[0, 1], average="macro", zero_division=0) for g, p in zip(gold, pred)]
    assert np.allclose(macro_f1(gold, pred), expected)


def test_kappa_matrix_is_symmetric_with_unit_diagonal(tmp_path):
    runs = [write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", PRED_B), write_run(tmp_path, "gold", GOLD)]
    m = kappa_matrix(runs)
    assert np.allclose(np.diag(m), 1) and np.allclose(m, m.T)
    assert m[0, 1] == pytest.approx(0.2) and m[1, 2] == pytest.approx(cohen_kappa_score(PRED_B, GOLD))


def test_compare_command_prints_the_test_and_writes_json(tmp_path, cli):
    _, b = write_run(tmp_path, "model-a", PRED_A), write_run(tmp_path, "model-b", PRED_B)
    out_json = tmp_path / "cmp.json"
    code, out, err = cli(
        "compare", "model-a", b.dir.name[:30], "--runs", tmp_path, "--json", out_json, "--data-dir", tmp_path / "none"
    )
    assert code == 0, err
    assert "McNemar p = 0.125" in out and "kappa 0.2000" in out and "4 disagreements" in out
    saved = json.loads(out_json.read_text())
    assert saved["a"] == "model-a" and len(saved["disagreements"]) == 4 and saved["mcnemar_p"] == pytest.approx(0.125)
    code, _, err = cli("compare", "model-a", "nothing-like-this", "--runs", tmp_path)
    assert code == 2 and "no run 'nothing-like-this'" in err


def test_agreement_command_writes_the_full_kappa_matrix(tmp_path, cli):
    write_run(tmp_path, "a", PRED_A), write_run(tmp_path, "b", PRED_B), write_run(tmp_path, "gold", GOLD)
    code, _, err = cli("agreement", "--dataset", "toxifrench", "--runs", tmp_path, "--out", tmp_path / "kappa.csv")
    assert code == 0, err
    rows = list(csv.reader(open(tmp_path / "kappa.csv", encoding="utf-8")))
    assert rows[0] == ["run", "gold", "a", "b"]  # leaderboard order: accuracy 1.0, 0.8, 0.4
    assert rows[2][3] == "0.2000" and rows[3][2] == "0.2000" and rows[1][1] == "1.0000"
