"""`toxbench paper`: the paper's printed rows against the release's files, with known outcomes."""

from dataclasses import replace
from pathlib import Path

import pytest

from toxbench.analysis.metrics import Metrics
from toxbench.analysis.paper import COLUMNS, Comparison, PaperRow, compare, gap, paper_rows, replay_release

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def comparisons(data, tmp_path_factory):
    published = replay_release(data, tmp_path_factory.mktemp("runs"))
    return {(c.row.table, c.row.group, c.row.label): c for c in compare(published)}


def metrics(values) -> Metrics:
    fields = dict(zip(COLUMNS, values))
    return Metrics(
        n=100,
        n_total=100,
        coverage=1.0,
        accuracy_ci_low=0.0,
        accuracy_ci_high=1.0,
        balanced_accuracy=fields["accuracy"],
        roc_auc=None,
        confusion=[[0, 0, 0], [0, 0, 0]],
        policy="count_as_wrong",
        **fields,
    )


def test_the_tables_hold_every_printed_row():
    rows = paper_rows()
    assert [sum(r.table == t for r in rows) for t in ("3", "5", "6", "9")] == [19, 12, 7, 15]
    assert all(len(r.values) == 7 and all(0 <= v <= 1 for v in r.values) for r in rows)


def test_status_counts_and_the_known_cases(comparisons):
    statuses = [c.status for c in comparisons.values()]
    assert (statuses.count("reproduced"), statuses.count("differs"), statuses.count("no release file")) == (44, 8, 1)
    mini = comparisons[("3", "", "gpt-4o-mini")]  # the file holds the paper's o4-mini numbers; no file gives .870
    assert mini.status == "differs" and round(mini.release.accuracy, 3) == 0.822 and mini.holds == ["Table 3 o4-mini"]
    assert mini.closest[1].largest > 0.005
    o4 = comparisons[("3", "", "o4-mini")]
    assert o4.status == "no release file" and o4.same_as == ["gpt-4o-mini-detailed-tf-fr.csv"]
    nt = comparisons[("5", "DeepSeek-V3", "1-shot non-toxic")]  # .844 in the file, .847 printed
    assert nt.status == "differs" and round(nt.release.accuracy, 3) == 0.844 and nt.row.values[-1] == 0.847
    over = comparisons[("6", "Supervised finetuning (SFT)", "+ Oversampling")]  # .823 printed: no file has it
    assert over.status == "differs" and not over.same_as and over.closest[1].largest > 0.005
    ours_en = comparisons[("9", "JIGSAW Toxicity Dataset (Original EN)", "Our Model")]  # printed row is Mistral's
    assert ours_en.status == "differs" and ours_en.same_as == ["mistral-medium-detailed-jigsaw-en.csv"]
    assert comparisons[("9", "RTP-LX Dataset", "Our model")].status == "reproduced"
    assert comparisons[("6", "Supervised finetuning (SFT)", "+ DPO")].status == "reproduced"


def test_transcription_slips_are_named(comparisons):
    slipped = {(k[1], k[2]): c.permuted() for k, c in comparisons.items() if c.permuted()}
    assert slipped == {
        ("JIGSAW Toxicity Dataset (Original EN)", "GPT-4o Mini"): [0],
        ("JIGSAW Toxicity Dataset (Translated FR)", "GPT-4o Mini"): [0],
        ("JIGSAW Toxicity Dataset (Translated FR)", "GPT-4o"): [0],
    }
    gpt4o_fr = comparisons[("9", "JIGSAW Toxicity Dataset (Translated FR)", "GPT-4o")]
    assert gpt4o_fr.permuted() == [0] and "printed F1 (0) 0.931 is not the harmonic mean" in gpt4o_fr.status_text()


def test_gap_permutation_and_consistency_on_hand_made_rows():
    row = PaperRow("9", "t", "", "x", "jigsaw-fr", (0.907, 0.884, 0.931, 0.889, 0.934, 0.911, 0.909), "f.csv")
    assert row.inconsistencies() == ["printed F1 (0) 0.931 is not the harmonic mean of its P and R (0.895)"]
    assert replace(row, values=(0.931, 0.884, 0.907, 0.889, 0.934, 0.911, 0.909)).inconsistencies() == []
    computed = metrics((0.9312, 0.8841, 0.9069, 0.8889, 0.9343, 0.9111, 0.9091))
    found = gap(row.values, computed)
    assert found.column == "precision_0" and abs(found.largest - 0.0242) < 1e-9 and not found.reproduced
    assert Comparison(row, computed, found, [], None).permuted() == [0]
    assert gap((0.9312, 0.8841, 0.9069, 0.8889, 0.9343, 0.9111, 0.9091), computed).reproduced
    other = metrics((0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.909))
    assert Comparison(row, other, gap(row.values, other), [], None).permuted() == []


def test_command_regenerates_the_committed_tables(cli, data_root, tmp_path):
    code, out, err = cli("paper", "--runs", tmp_path / "runs", "--out", tmp_path / "paper", "--data-dir", data_root)
    assert code == 0, err
    assert "53 printed rows: 44 reproduced, 8 differ, 1 without a release file" in out
    for name in ("paper-tables.csv", "paper-tables.md"):
        assert (tmp_path / "paper" / name).read_text("utf-8") == (ROOT / "results" / "paper" / name).read_text("utf-8")
