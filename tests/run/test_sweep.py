"""Sweeps: expansion, resume through the engine, and Table 5 regenerated from the release's files."""

import csv
from pathlib import Path

import pytest

from toxbench.analysis.sensitivity import sensitivity
from toxbench.errors import ToxbenchError
from toxbench.records import Run
from toxbench.run.engine import ExecutionSettings
from toxbench.run.sweep import Sweep, expand, load_sweep, run_cell

ROOT = Path(__file__).parents[2]
FAST = ExecutionSettings(concurrency=4, timeout_s=2, max_retries=3, backoff_initial_s=0.01, backoff_max_s=0.2)


def test_table5_expands_to_published_files_or_live_cells(data):
    sweep = load_sweep(ROOT / "experiments" / "icl-table5.toml")
    published = expand(sweep, data, "published")
    assert len(published) == 12 and all(c.seed is None and c.source == "published" for c in published)
    # a release file is one run, in its dataset's language: asking for English prompts too neither
    # doubles it nor labels its French-prompt answers English
    assert expand(sweep.model_copy(update={"langs": ["fr", "en"]}), data, "published") == published
    assert {c.lang for c in expand(sweep.model_copy(update={"langs": ["en"]}), data, "published")} == {"fr"}
    assert published[2].published_file.endswith("qwen-3-4b-1shot-t-tf-fr.csv") and published[6].published_file.endswith(
        "deepseek-v3-simple-tf-fr.csv"
    )
    live = expand(sweep, data, "live")
    # zero-shot cells once; one-example cells once (the release's example: a seed changes nothing); 4 and 10 once per seed
    assert len(live) == 2 * (2 + 2 + 2 * 3)
    assert [(c.shots, c.seed) for c in live[:6]] == [
        ("0", None),
        ("0", None),
        ("1t", 0),
        ("1nt", 0),
        ("4", 0),
        ("4", 1),
    ]
    random_pool = expand(sweep.model_copy(update={"shot_pool": "random"}), data, "live")
    assert len(random_pool) == 2 * (2 + 4 * 3)  # a seed also draws which example: every k-shot cell once per seed
    # auto: neither model can run here (no key, no weights), so every cell replays the release
    assert [c.source for c in expand(sweep, data, "auto")] == ["published"] * 12


def test_a_cell_without_a_published_file_is_named(data):
    sweep = Sweep(name="x", models=[{"model": "openai:gpt-4o", "published": "no-such-model"}])
    with pytest.raises(ToxbenchError, match="no published file for no-such-model on toxifrench, detailed 0-shot"):
        expand(sweep, data, "published")


def test_table5_regenerates_offline_with_the_papers_figures(tmp_path, cli, data_root):
    code, _out, err = cli(
        "sweep",
        ROOT / "experiments" / "icl-table5.toml",
        "--source",
        "published",
        "--runs",
        tmp_path / "runs",
        "--out",
        tmp_path / "table5",
        "--data-dir",
        data_root,
    )
    assert code == 0, err
    rows = {
        (r["model"], r["config"]): r
        for r in csv.DictReader(open(tmp_path / "table5" / "sensitivity.csv", encoding="utf-8"))
    }
    assert len(rows) == 12 and all(r["n"] == "1388" for r in rows.values())
    acc = {k: float(r["accuracy"]) for k, r in rows.items()}
    # the paper: Qwen3-4B rose from 77% (zero-shot) to 81% (one-shot); DeepSeek-V3 reached up to 86% with 4 and 10 shots
    assert (
        round(acc[("Qwen3-4B", "detailed 0-shot")], 2) == 0.77
        and round(acc[("Qwen3-4B", "detailed 1nt-shot")], 2) == 0.81
    )
    assert round(acc[("DeepSeek-V3", "detailed 10-shot")], 2) == 0.86 and acc[("DeepSeek-V3", "detailed 4-shot")] > 0.85
    svg = (tmp_path / "table5" / "sensitivity.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "Qwen3-4B" in svg and "detailed 10-shot" in svg
    assert (ROOT / "results" / "icl-table5" / "sensitivity.csv").read_text() == (
        tmp_path / "table5" / "sensitivity.csv"
    ).read_text()
    # regenerating from the same (now recorded) runs gives the same bytes, plot included
    code, _, err = cli(
        "sweep",
        ROOT / "experiments" / "icl-table5.toml",
        "--source",
        "published",
        "--runs",
        tmp_path / "runs",
        "--out",
        tmp_path / "again",
        "--data-dir",
        data_root,
    )
    assert code == 0, err
    assert (tmp_path / "again" / "sensitivity.svg").read_text() == svg


def test_live_sweep_runs_each_cell_once_and_resumes(tmp_path, fake, dataset, data, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    sweep = Sweep(
        name="fake",
        models=[{"model": "openai:gpt-4o-mini", "args": {"base_url": fake.url + "/v1"}, "name": "fake"}],
        datasets=[str(dataset)],
        configs=[{"prompt": "detailed", "shots": "0"}, {"prompt": "detailed", "shots": "1t"}],
        seeds=[0, 1],
        shot_pool="random",
    )
    cells = expand(sweep, data, "live")
    assert [(c.shots, c.seed) for c in cells] == [("0", None), ("1t", 0), ("1t", 1)]
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    runs = [run_cell(c, sweep, data, tmp_path / "runs", FAST, show_progress=False) for c in cells]
    assert len(set(runs)) == 3  # each seed is its own run (another example order)
    sent = len(fake.requests)
    again = [run_cell(c, sweep, data, tmp_path / "runs", FAST, show_progress=False) for c in cells]
    assert again == runs and all(
        "[down]" in r["text"] for r in fake.requests[sent:]
    )  # resumed: only error samples are asked again
    sent = len(fake.requests)
    found = [run_cell(c, sweep, data, tmp_path / "runs", FAST, recorded_only=True) for c in cells]
    assert found == runs and len(fake.requests) == sent  # --recorded: the same runs, found without asking anything
    with pytest.raises(
        ToxbenchError, match="no complete recorded run of fake on .*comments.csv, detailed 1t-shot seed 1"
    ):
        run_cell(
            cells[2], sweep.model_copy(update={"seeds": [0, 1]}), data, tmp_path / "elsewhere", FAST, recorded_only=True
        )
    rows = sensitivity(list(zip(cells, runs)))
    assert [(r.config, r.seeds) for r in rows] == [("detailed 0-shot", 1), ("detailed 1t-shot", 2)]
    assert rows[1].accuracy_min <= rows[1].accuracy <= rows[1].accuracy_max


def test_a_sweep_names_the_columns_of_its_dataset_files(tmp_path, data):
    texts = tmp_path / "comments.csv"
    texts.write_text("comment,toxic\nmerci,0\nquel idiot,1\n", encoding="utf-8")
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text(
        f'name = "s"\ndatasets = ["{texts}"]\ncolumns = {{ text = "comment", label = "toxic" }}\n[[models]]\nmodel = "baseline"\n'
    )
    sweep = load_sweep(sweep_file)
    (cell,) = expand(sweep, data, "live")
    run = run_cell(cell, sweep, data, tmp_path / "runs", FAST, show_progress=False)
    assert sorted(r.gold for r in Run.load(run).records) == [0, 1]
    sweep_file.write_text(
        f'name = "s"\ndatasets = ["{texts}"]\ncolumns = {{ txt = "comment" }}\n[[models]]\nmodel = "baseline"\n'
    )
    with pytest.raises(ToxbenchError, match="columns.txt"):
        load_sweep(sweep_file)


def test_prompt_languages_are_rows_apart_never_seeds_of_one_row(tmp_path, fake, dataset, data, monkeypatch):
    """A sweep over French and English prompts gives a row per language (it once averaged the two
    as if they were two seeds, and printed their spread as the seed range)."""
    from toxbench.analysis.sensitivity import plot, write_table

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    sweep = Sweep(
        name="langs",
        models=[{"model": "openai:gpt-4o-mini", "args": {"base_url": fake.url + "/v1"}, "name": "fake"}],
        datasets=[str(dataset)],
        langs=["fr", "en"],
        configs=[{"prompt": "detailed", "shots": "0"}],
    )
    cells = expand(sweep, data, "live")
    assert [c.lang for c in cells] == ["fr", "en"]
    runs = [run_cell(c, sweep, data, tmp_path / "runs", FAST, show_progress=False) for c in cells]
    assert len(set(runs)) == 2
    sent = [m["content"] for r in fake.requests for m in r["body"]["messages"] if m["role"] == "system"]
    assert len(set(sent)) == 2  # the French and the English instructions were both sent
    rows = sensitivity(list(zip(cells, runs)))
    assert [(r.lang, r.config, r.seeds) for r in rows] == [("fr", "detailed 0-shot", 1), ("en", "detailed 0-shot", 1)]
    csv_path, md_path = write_table(rows, sweep, tmp_path / "out")
    assert [(r["lang"], r["seeds"]) for r in csv.DictReader(open(csv_path, encoding="utf-8"))] == [
        ("fr", "1"),
        ("en", "1"),
    ]
    md = md_path.read_text("utf-8")
    assert (
        "| model | dataset | lang | configuration |" in md and "| fake | " in md and " | fr | detailed 0-shot | " in md
    )
    svg = plot(rows, tmp_path / "out" / "sensitivity.svg").read_text("utf-8")
    assert "fake (fr)" in svg and "fake (en)" in svg


def test_an_unknown_key_in_a_sweep_file_is_named_with_the_keys_its_section_takes(tmp_path):
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('name = "s"\nlimit = 6\n[[models]]\nmodel = "baseline"\nfoo = 1\n')
    with pytest.raises(ToxbenchError) as caught:
        load_sweep(sweep_file)
    assert str(caught.value) == (
        f"{sweep_file}: models.0.foo: unknown key; known: model, args, published, name; limit: unknown key; known: "
        "name, description, models, datasets, langs, prompts, shots, configs, seeds, shot_pool, sample, sample_seed, columns"
    )


def test_recorded_finds_the_run_of_a_model_that_reads_no_prompt(tmp_path, data):
    """`baseline` is recorded as `baseline:tfidf-char-lr` with no prompt, language or shots: --recorded
    once looked for `baseline:baseline` with the cell's prompt, and found nothing."""
    texts = tmp_path / "comments.csv"
    texts.write_text("text,label\nmerci,0\nquel idiot,1\n", encoding="utf-8")
    sweep = Sweep(
        name="s",
        datasets=[str(texts)],
        langs=["fr", "en"],
        models=[{"model": "baseline"}],
        configs=[{"prompt": "simple", "shots": "0"}, {"prompt": "detailed", "shots": "4"}],
        seeds=[0, 1],
    )
    cells = expand(sweep, data, "live")
    assert len(cells) == 2 * (1 + 2)
    made = {run_cell(c, sweep, data, tmp_path / "runs", FAST, show_progress=False) for c in cells}
    assert len(made) == 1  # the same run for every prompt cell
    found = {run_cell(c, sweep, data, tmp_path / "runs", FAST, recorded_only=True) for c in cells}
    assert found == made
    # a sample as large as the dataset is the whole dataset, as the run named it; a smaller one was never run
    assert (
        run_cell(cells[0], sweep.model_copy(update={"sample": 2}), data, tmp_path / "runs", FAST, recorded_only=True)
        in made
    )
    with pytest.raises(ToxbenchError, match="no complete recorded run of baseline"):
        run_cell(cells[0], sweep.model_copy(update={"sample": 1}), data, tmp_path / "runs", FAST, recorded_only=True)
