"""Agreement statistics and the high-confidence rule: the paper's Table 2 from the release's 500
agreement comments, exactly, through `toxbench annotate`, and one-line errors on bad tables."""

from __future__ import annotations

import json

import pytest

from toxbench.analysis.agreement import agreement, high_confidence, proportion, rule_report, validation_table


def test_wilson_and_kappa_by_hand():
    p = proportion(246, 250)
    assert (p.value, round(100 * p.low, 2), round(100 * p.high, 2)) == (0.984, 95.96, 99.38)
    assert proportion(0, 250).low == 0.0
    # 3 of 4 agree; marginals 2/2 and 1/3: p_o 0.75, p_e 0.5, kappa 0.5
    stats = agreement([1, 1, 0, 0], [1, 0, 0, 0])
    assert stats["agreement"].k == 3 and stats["kappa"] == pytest.approx(0.5)


def test_validation_table_levels():
    table = validation_table([1, 1, 1, 1, 0, 0], [1.0, 0.75, 0.25, 0.0, 0.0, 0.75])
    assert {k: v.k for k, v in table[1].items()} == {
        "grouped_yes": 2,
        "yes": 1,
        "maybe_yes": 1,
        "grouped_no": 2,
        "maybe_no": 1,
        "no": 1,
    }
    assert {k: v.k for k, v in table[0].items()} == {
        "grouped_yes": 1,
        "yes": 0,
        "maybe_yes": 1,
        "grouped_no": 1,
        "maybe_no": 0,
        "no": 1,
    }


def test_rule_covers_non_toxic_conclusions_and_low_scores():
    covered = high_confidence([0, 1, 1, 1], [9, 3.5, 4, 8], threshold=4)
    assert covered == [True, True, False, False]
    report = rule_report(covered, [0, 1, 0, 1])
    assert (report["coverage"].k, report["agreement"].k, report["agreement"].n) == (2, 1, 2)


def test_table2_from_the_release(cli, data_root, tmp_path):
    code, out, err = cli("annotate", "agreement", "toxifrench-agreement", "--out", tmp_path, "--data-dir", data_root)
    assert code == 0, err
    result = json.loads((tmp_path / "agreement.json").read_text())
    toxic, clean = result["breakdown"]["toxic"], result["breakdown"]["non_toxic"]
    assert (toxic["grouped_yes"]["k"], toxic["grouped_yes"]["n"]) == (246, 250)
    assert (round(100 * toxic["grouped_yes"]["low"], 2), round(100 * toxic["grouped_yes"]["high"], 2)) == (95.96, 99.38)
    assert [round(100 * toxic[r]["value"], 1) for r in ("yes", "maybe_yes", "maybe_no", "no")] == [90.8, 7.6, 1.6, 0.0]
    assert (
        clean["grouped_no"]["k"],
        round(100 * clean["grouped_no"]["low"], 2),
        round(100 * clean["grouped_no"]["high"], 2),
    ) == (243, 94.33, 98.64)
    assert (result["agreement"]["k"], result["agreement"]["n"], round(result["kappa"], 3)) == (489, 500, 0.956)
    assert result["paper_differences"] == [
        "initially toxic, grouped yes: the paper prints 98.0%, the release's file gives 98.4% (246/250)",
        "initially toxic, yes: the paper prints 91.0%, the release's file gives 90.8% (227/250)",
        "initially toxic: the paper's grouped yes and grouped no add up to 99.6%, not 100%",
        "initially toxic: the paper's yes, maybe yes, maybe no and no add up to 100.2%, not 100%",
    ]
    code, out, _ = cli(
        "annotate",
        "rule",
        "toxifrench-agreement",
        "--threshold",
        "4",
        "--human-col",
        "annotator's conclusion",
        "--data-dir",
        data_root,
    )
    assert code == 0 and "covers 223/500" in out and "humans call non-toxic 220/223" in out


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,b\n1,0\n", ["--first", "x"], "no column 'x'"),
        ("a,b\n1,0\n1,oops\n", ["--first", "a", "--second", "b"], "line 3: b = 'oops' is not a number"),
        ("a,b\n1,0.5\n", ["--first", "a", "--second", "b"], "line 2: b = '0.5'; expected one of 0, 0.25, 0.75, 1"),
    ],
)
def test_bad_tables_are_one_line_errors(cli, tmp_path, content, args, message):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    code, _, err = cli("annotate", "agreement", path, *args)
    assert code == 2 and message in err and err.count("\n") == 1
