"""Run records: ids from specifications, flushed appends, resume after a crash, typed read-back."""

import json

import pytest

from toxbench.errors import ToxbenchError
from toxbench.records import PREDICTIONS, Run, RunSpec, RunWriter
from toxbench.types import RECORD_FIELDS, Record


def spec(**overrides) -> RunSpec:
    values = dict(
        adapter="replay",
        model="m",
        dataset="toxifrench",
        dataset_sha256="ab" * 32,
        prompt="detailed",
        lang="fr",
        shots="0",
    )
    return RunSpec(**{**values, **overrides})


def record(sample_id: str, pred, gold=1, status="ok") -> Record:
    return Record(sample_id=sample_id, pred=pred, status=status, raw="toxique", cost_usd=0.001, gold=gold)


def test_run_id_is_a_function_of_the_whole_specification():
    assert spec().run_id() == spec().run_id()
    assert spec().run_id() != spec(shots="4").run_id()
    assert spec().run_id() != spec(adapter_params={"temperature": 0}).run_id()
    assert spec().run_id().startswith("toxifrench--replay-m--")


def test_records_are_on_disk_as_soon_as_appended(tmp_path):
    writer = RunWriter(tmp_path, spec(), n_expected=3)
    writer.append(record("a", 1))
    lines = (writer.dir / PREDICTIONS).read_text("utf-8").splitlines()  # before close
    assert len(lines) == 1 and set(json.loads(lines[0])) == set(RECORD_FIELDS)
    writer.append(record("b", None, status="unparseable"))
    writer.finish()
    run = Run.load(writer.dir)
    assert [r.sample_id for r in run.records] == ["a", "b"]
    assert run.records[1].pred is None and run.records[1].status == "unparseable"
    assert run.manifest.status == "complete" and run.manifest.n_expected == 3
    assert run.manifest.counts == {"ok": 1, "unparseable": 1, "refused": 0, "error": 0}
    assert run.manifest.cost_usd == pytest.approx(0.002)
    assert {"toxbench", "python", "numpy", "scikit-learn"} <= set(run.manifest.versions)
    assert run.spec == spec()


def test_resume_skips_recorded_samples_and_cuts_a_torn_line(tmp_path):
    writer = RunWriter(tmp_path, spec())
    writer.append(record("a", 1))
    writer.append(record("b", 0, gold=0))
    writer.close()  # interrupted: not complete
    with open(writer.dir / PREDICTIONS, "ab") as fh:
        fh.write(b'{"sample_id": "c", "pr')  # crash in the middle of a line
    with pytest.raises(ToxbenchError, match="cut off"):
        Run.load(writer.dir)
    again = RunWriter(tmp_path, spec())
    assert again.dir == writer.dir and again.recorded == {"a", "b"}
    again.append(record("a", 0))  # already recorded: ignored
    again.append(record("c", 1))
    again.finish()
    assert [r.sample_id for r in Run.load(writer.dir).records] == ["a", "b", "c"]
    assert Run.load(writer.dir).records[0].pred == 1


def test_a_corrupt_line_is_reported_with_its_number(tmp_path):
    writer = RunWriter(tmp_path, spec())
    writer.append(record("a", 1))
    writer.finish()
    with open(writer.dir / PREDICTIONS, "ab") as fh:
        fh.write(b"not json\n")
    with pytest.raises(ToxbenchError, match=r"predictions.jsonl: line 2 is not a valid record"):
        Run.load(writer.dir)


def test_files_written_atomically_get_an_ordinary_mode(tmp_path, monkeypatch):
    """mkstemp makes 0600 files; renamed into place, a report or a leaderboard was unreadable to
    the rest of a team. A new file gets what the umask allows, a rewritten one keeps its mode."""
    import toxbench._util as util

    monkeypatch.setattr(util, "_UMASK", 0o022)
    new = util.write_atomic(tmp_path / "leaderboard.md", "a")
    assert new.stat().st_mode & 0o777 == 0o644
    monkeypatch.setattr(util, "_UMASK", 0o077)
    assert util.write_atomic(tmp_path / "private.md", "a").stat().st_mode & 0o777 == 0o600
    new.chmod(0o640)
    util.write_atomic(new, "b")
    assert new.read_text() == "b" and new.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_file_system_that_refuses_chmod_still_gets_the_file(tmp_path, monkeypatch):
    import toxbench._util as util

    def refuse(*_args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(util.os, "chmod", refuse)
    path = util.write_atomic(tmp_path / "leaderboard.md", "a")
    assert path.read_text() == "a" and [p.name for p in tmp_path.iterdir()] == ["leaderboard.md"]


def test_writing_onto_a_directory_is_a_one_line_error_and_leaves_nothing(tmp_path):
    import pytest

    import toxbench._util as util
    from toxbench.errors import ToxbenchError

    (tmp_path / "out").mkdir()
    with pytest.raises(ToxbenchError, match=r"out: cannot write it \(Is a directory\); choose a writable file path"):
        util.write_atomic(tmp_path / "out", "a")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and list((tmp_path / "out").iterdir()) == []
