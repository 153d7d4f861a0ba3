"""Everyday commands write where a user expects and say what they did: a sweep's tables go to
sweeps/<name> (never the repository's committed results/), `--recorded` says its cells are recorded
runs, the report refuses a file name for its folder and says how big it is, and a p-value prints
one way in every table."""

import re

from toxbench.analysis.significance import format_p


def _sweep_file(path, dataset):
    path.write_text(
        f'name = "mini"\ndatasets = ["{dataset.as_posix()}"]\nprompts = ["simple"]\n[[models]]\nmodel = "baseline"\n',
        encoding="utf-8",
    )
    return path


def test_a_sweep_writes_to_sweeps_by_default_and_recorded_cells_say_so(tmp_path, dataset, data_root, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "committed.md").write_text("a committed table")
    sweep = _sweep_file(tmp_path / "mini.toml", dataset)
    code, out, err = cli("sweep", sweep, "--data-dir", data_root)
    assert code == 0, err
    assert (tmp_path / "sweeps" / "mini" / "sensitivity.csv").is_file() and "(live)" in out
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["committed.md"]
    code, out, err = cli("sweep", sweep, "--recorded", "--data-dir", data_root, "--out", tmp_path / "again")
    assert code == 0 and "(recorded run)" in out and "(live)" not in out, err


def test_the_report_refuses_a_file_name_for_its_folder_and_says_its_size(tmp_path, dataset, data_root, cli):
    code, _, err = cli("run", "-d", dataset, "--out", tmp_path / "runs", "--data-dir", data_root)
    assert code == 0, err
    code, _, err = cli("report", "--runs", tmp_path / "runs", "--out", tmp_path / "x.html", "--data-dir", data_root)
    assert code == 2 and "--out" in err and "give a folder" in err and not (tmp_path / "x.html").exists()
    code, out, err = cli("report", "--runs", tmp_path / "runs", "--out", tmp_path / "site", "--data-dir", data_root)
    assert code == 0, err
    flat = " ".join(out.split())
    assert re.search(
        r"wrote .*index\.html \(\d+\.\d MB, and \d+\.\d MB of explorer data in 1 file under .*explorer", flat
    )
    assert (tmp_path / "site" / "explorer" / "0.js").is_file()


def test_a_p_value_prints_one_way():
    assert [format_p(p) for p in (None, 0.5, 0.04999, 0.0012, 0.00049, 1e-12)] == [
        "–",
        "0.500",
        "0.050",
        "0.001",
        "<0.001",
        "<0.001",
    ]


def test_the_spinner_says_what_each_adapter_does_while_it_starts():
    from toxbench.run.runner import _preparing_note

    assert "training it on first use" in _preparing_note("baseline")
    assert _preparing_note("hf:smollm2-135m-instruct") == "loading the model" == _preparing_note("encoder:minilm-l6")
    assert _preparing_note("openai:gpt-4o-mini") == "starting" and _preparing_note("nosuch:x") == "starting"


def test_the_report_prints_a_tiny_p_value_as_the_markdown_does(tmp_path, data_root, cli):
    """Two runs that disagree on all 40 samples: p = 2 * 0.5**40, "<0.001" in the report and in
    leaderboard.md alike (the report printed 0.000)."""
    from toxbench.records import RunSpec, RunWriter
    from toxbench.types import Record

    for name, right in (("all-right", True), ("all-wrong", False)):
        writer = RunWriter(
            tmp_path / "runs",
            RunSpec(adapter="replay", model=name, dataset="toxifrench", dataset_sha256="x", label=name),
            n_expected=40,
        )
        for i in range(40):
            writer.append(Record(sample_id=f"s{i}", pred=i % 2 if right else 1 - i % 2, status="ok", gold=i % 2))
        writer.finish()
    code, _, err = cli("report", "--runs", tmp_path / "runs", "--out", tmp_path / "site", "--data-dir", data_root)
    assert code == 0, err
    html = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert re.findall(r'<td class="p" data-value="[0-9.e-]+">([^<]*)', html) == ["&lt;0.001"]
    code, _, err = cli(
        "leaderboard", "-d", "toxifrench", "--runs", tmp_path / "runs", "--no-published", "--out", tmp_path / "b", "-q"
    )
    assert code == 0 and "| <0.001 |" in (tmp_path / "b" / "leaderboard.md").read_text(), err
