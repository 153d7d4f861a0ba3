"""Cached metrics equal fresh ones, and any change to the records invalidates them."""

import pytest

from toxbench.analysis.metrics import run_metrics
from toxbench.analysis.metrics_cache import CACHE, metrics_for
from toxbench.records import Run, RunSpec, RunWriter
from toxbench.types import Record


def test_cache_is_used_and_invalidated_by_new_records(tmp_path):
    spec = RunSpec(adapter="x", model="m", dataset="d", dataset_sha256="0")
    writer = RunWriter(tmp_path, spec)
    for i, (pred, gold) in enumerate([(1, 1), (0, 1), (0, 0), (None, 0)]):
        writer.append(
            Record(sample_id=str(i), pred=pred, status="ok" if pred is not None else "unparseable", gold=gold)
        )
    run_dir = writer.finish()
    first = metrics_for(run_dir, "count_as_wrong")
    assert first.accuracy == pytest.approx(0.5) and (run_dir / CACHE).is_file()
    assert metrics_for(run_dir, "count_as_wrong") == first == run_metrics(Run.load(run_dir).records)
    assert metrics_for(run_dir, "labelled_only").accuracy == pytest.approx(2 / 3)

    resumed = RunWriter(tmp_path, spec)
    resumed.append(Record(sample_id="4", pred=1, status="ok", gold=1))
    resumed.finish()
    assert metrics_for(run_dir, "count_as_wrong").accuracy == pytest.approx(3 / 5)


def test_a_corrupt_cache_is_recomputed(tmp_path):
    writer = RunWriter(tmp_path, RunSpec(adapter="x", model="m", dataset="d", dataset_sha256="0"))
    writer.append(Record(sample_id="a", pred=1, status="ok", gold=1))
    run_dir = writer.finish()
    (run_dir / CACHE).write_text("{not json")
    assert metrics_for(run_dir, "count_as_wrong").accuracy == 1.0
