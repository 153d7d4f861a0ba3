"""The robustness report: its statistics against scipy on a hand-made case, and the command end to
end with the baseline (runs made, then the same table again from the recorded runs alone)."""

import math

import pytest
from scipy.stats import binomtest

from toxbench.analysis.robustness import compare_pairs
from toxbench.types import Record


def records(preds: list, golds: list[int]) -> list[Record]:
    return [
        Record(sample_id=f"s{i}", pred=p, status="ok" if p is not None else "error", gold=g)
        for i, (p, g) in enumerate(zip(preds, golds, strict=True))
    ]


def test_the_statistics_on_a_hand_made_case_agree_with_scipy():
    gold = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    before = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, None, 1, 0]
    after = [0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
    unchanged = {"s12", "s13", "s99"}  # the transform left these texts alone: not pairs (s99: not in this run)
    row = compare_pairs(
        "leetspeak@0.5", "character", "d~leetspeak@0.5~s0", records(before, gold), records(after, gold), unchanged
    )
    assert row.n == 12 and row.unchanged == 2
    right_before = [p == g for p, g in zip(before[:12], gold[:12], strict=True)]  # None is wrong
    right_after = [p == g for p, g in zip(after[:12], gold[:12], strict=True)]
    assert row.accuracy_original == pytest.approx(sum(right_before) / 12) == pytest.approx(7 / 12)
    assert row.accuracy_perturbed == pytest.approx(sum(right_after) / 12) == pytest.approx(6 / 12)
    assert row.delta == pytest.approx(-1 / 12)
    ci = binomtest(7, 12).proportion_ci(method="wilson")
    assert (row.accuracy_original_low, row.accuracy_original_high) == pytest.approx((ci.low, ci.high))
    ci = binomtest(6, 12).proportion_ci(method="wilson")
    assert (row.accuracy_perturbed_low, row.accuracy_perturbed_high) == pytest.approx((ci.low, ci.high))
    only_before = sum(b and not a for b, a in zip(right_before, right_after, strict=True))
    only_after = sum(a and not b for b, a in zip(right_before, right_after, strict=True))
    assert (only_before, only_after) == (3, 2)
    assert row.mcnemar_p == pytest.approx(binomtest(2, 5, 0.5).pvalue)
    # flips over the 11 pairs labelled on both sides (s11 has no label before): called toxic before = s0-s3, s9, s10
    assert row.evasion == pytest.approx(3 / 6)  # s0, s1, s10
    assert row.false_alarm == pytest.approx(2 / 5)  # s5, s7 (s4, s6, s8 stay 0)
    assert row.changed_decisions == pytest.approx(5 / 11) and row.unlabelled_pairs == 1
    assert row.f1_original == pytest.approx(2 * 4 / (2 * 4 + 2 + 2))  # tp 4, fp 2 (s9, s10), fn 2 (s4, s5)
    assert row.f1_perturbed == pytest.approx(2 * 3 / (2 * 3 + 3 + 3))  # tp 3 (s2, s3, s5), fp 3 (s7, s9, s11), fn 3


def test_no_changed_text_gives_empty_figures_not_a_division_error():
    row = compare_pairs("sms@1", "word", "d", records([1], [1]), records([1], [1]), {"s0"})
    assert row.n == 0 and math.isnan(row.accuracy_original) and row.mcnemar_p == 1.0


def test_the_command_end_to_end_with_the_baseline_then_from_recorded_runs(cli, data_root, tmp_path):
    out, runs = tmp_path / "rob", tmp_path / "runs"
    args = ("robustness", "--model", "baseline", "-t", "leetspeak", "-t", "counterfactual", "-t", "sms,phonetic@0.3",
            "--sample", "120", "--runs", runs, "--out", out, "--data-dir", data_root)  # fmt: skip
    code, stdout, err = cli(*args)
    assert code == 0, err
    table = (out / "robustness.md").read_text()
    assert "| leetspeak@0.5 |" in table and "| counterfactual@1 |" in table and "| sms@1+phonetic@0.3 |" in table
    assert table.strip() in stdout  # the command prints the table it wrote
    assert len(list(runs.iterdir())) == 4  # the original and one run per derived dataset
    assert sorted(p.name for p in (out / "datasets").iterdir()) == sorted(
        f"toxifrench-{c}-s0.{ext}" for c in ("leetspeak-0.5", "counterfactual-1", "sms-1-phonetic-0.3")
        for ext in ("jsonl", "provenance.json")
    )  # fmt: skip
    csv_before, svg_before = (out / "robustness.csv").read_bytes(), (out / "robustness.svg").read_bytes()
    code, _, err = cli(*args, "--recorded")
    assert code == 0, err
    assert (out / "robustness.csv").read_bytes() == csv_before and (out / "robustness.svg").read_bytes() == svg_before
    code, _, err = cli("leaderboard", "--dataset", "toxifrench", "--runs", runs, "--no-published", "--out", tmp_path / "lb",
                       "--data-dir", data_root)  # fmt: skip
    assert code == 0, err
    board = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## Robustness to disguise" in board and "| baseline:tfidf-char-lr | 120 | 3 |" in board
    rows = (tmp_path / "lb" / "leaderboard-robustness.csv").read_text().splitlines()
    assert rows[0].startswith("run,samples,transforms,worst,worst_delta") and len(rows) == 2
    # a run whose dataset name reads as derived from a transform this toxbench lacks: a note, not a failed board
    import json
    import shutil

    (derived_run,) = [d for d in runs.iterdir() if "leetspeak" in d.name]
    odd = shutil.copytree(derived_run, runs / "toxifrench-nope--baseline--000000000000")
    manifest = json.loads((odd / "manifest.json").read_text())
    manifest["spec"]["dataset"] = "toxifrench~nope@1~s0"
    (odd / "manifest.json").write_text(json.dumps(manifest))
    code, _, err = cli("leaderboard", "--dataset", "toxifrench", "--runs", runs, "--no-published", "--out", tmp_path / "lb",
                       "--data-dir", data_root)  # fmt: skip
    assert code == 0 and "toxifrench~nope@1~s0: cannot be rebuilt here" in err, err
    assert "| baseline:tfidf-char-lr | 120 | 3 |" in (tmp_path / "lb" / "leaderboard.md").read_text()
    code, _, err = cli(
        "robustness", "--model", "baseline", "--runs", runs, "--out", tmp_path / "x", "--data-dir", data_root
    )
    assert code == 2 and "--transform: name at least one" in err


def test_a_bad_model_or_missing_key_is_one_line_before_anything_is_written(cli, data_root, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for model, why in (("nope", "unknown adapter 'nope'"), ("openai:gpt-4o-mini", "needs an API key")):
        code, _, err = cli("robustness", "--model", model, "-t", "sms", "--out", tmp_path / "out", "--datasets",
                           tmp_path / "derived", "--runs", tmp_path / "runs", "--data-dir", data_root)  # fmt: skip
        assert code == 2 and why in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "derived").exists() and not (tmp_path / "runs").exists()
