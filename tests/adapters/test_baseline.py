"""The offline baseline: trained on no benchmark text, cached after the first fit, a real score per sample."""

import json

from toxbench.adapters.baseline import Baseline, training_set
from toxbench.data.datasets import load_dataset


def test_training_set_holds_no_benchmark_sample(data):
    texts, labels = training_set(data)
    benchmark_texts = set()
    for name in ("toxifrench", "jigsaw-fr", "jigsaw-en", "rtplx-fr", "hateday-fr"):
        benchmark_texts |= {s.text for s in load_dataset(name, data).samples}
    # 500 + 884 annotated rows outside the benchmarks' ids; 13 go because their text is in a
    # benchmark under another id (7), nearly copies a benchmark text (3) or repeats another training row
    assert len(texts) == len(set(texts)) == 500 + (1280 - 396) - 13 and set(labels) == {0, 1}
    assert not {t.strip() for t in benchmark_texts} & {t.strip() for t in texts}


def test_trains_once_then_loads_from_cache(tmp_path, data, monkeypatch):
    monkeypatch.setenv("TOXBENCH_MODELS", str(tmp_path))
    first = Baseline(data=data)
    cached = list(tmp_path.glob("baseline-*.joblib"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = Baseline(data=data)
    assert cached[0].stat().st_mtime_ns == stamp  # loaded, not retrained
    text = ["Bande de sales bâtards, je vais vous défoncer"]
    assert first.pipeline.predict_proba(text)[0][1] == second.pipeline.predict_proba(text)[0][1]
    assert Baseline(data=data, C=1.0).identity() != first.identity()


def test_run_without_a_model_uses_the_baseline(tmp_path, cli, data_root, monkeypatch):
    monkeypatch.setenv("TOXBENCH_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TOXBENCH_CACHE", str(tmp_path / "cache.sqlite"))
    code, out, err = cli("run", "--limit", "100", "--out", tmp_path / "runs", "--json", "--data-dir", data_root)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n"] == 100 and "baseline" in summary["run_dir"] and summary["status"] == {"ok": 100}
    lines = [json.loads(line) for line in open(next((tmp_path / "runs").glob("*/predictions.jsonl")), encoding="utf-8")]
    assert all(0.0 < line["score"] < 1.0 for line in lines) and len({line["score"] for line in lines}) > 50
    assert 0.5 < summary["metrics"]["accuracy"] < 0.9
