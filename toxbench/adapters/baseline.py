"""The offline baseline: character n-gram TF-IDF + logistic regression (scikit-learn).

Trained on annotated material that is in no benchmark: the 500 human-labelled ToxiFrench
comments of `cot/agreement_checking.csv` (`annotator's conclusion`) and the French Jigsaw
translations of `cot/subset_jigsaw_annotated.csv` labelled by the benchmark's own rule (toxic when
any of Jigsaw's six labels is 1), without the 396 ids of the Jigsaw benchmark, without any text that
appears in a benchmark, and with each text once. The fitted model is cached by the checksums of its training files and its settings, so only
the first run trains. Needs no key and no download: `toxbench run` uses it when no model is given.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import os
from pathlib import Path

from toxbench.adapters.base import Adapter, Answer, Capabilities, Request, register

AGREEMENT = "toxifrench/cot/agreement_checking.csv"
JIGSAW_COT = "toxifrench/cot/subset_jigsaw_annotated.csv"
JIGSAW_BENCHMARK = "toxifrench/benchmark/JigsawBilingualBalanced.csv"
TOXIFRENCH = "toxifrench/benchmark/ToxiFrenchBalanced.csv"
RTPLX_FR = "toxifrench/benchmark/RTP-LX-french.csv"
HATEDAY = "toxifrench/benchmark/HateDay-french.csv"
JIGSAW_LABELS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
VERSION = 2  # bump when the features or the training set's rule change


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text("utf-8"), newline="")))


BENCHMARKS = ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr")


def training_set(data) -> tuple[list[str], list[int]]:
    """Texts and labels of the annotated files. Every benchmark id and every text that appears in a
    benchmark (the same comment can carry another id) is left out, and each text is kept once."""
    from toxbench.harness.datasets import load_dataset

    excluded_ids = {r["msg_id"] for r in _rows(data.path(JIGSAW_BENCHMARK))} | {r["msg_id"] for r in _rows(data.path(TOXIFRENCH))}
    excluded_texts = {s.text.strip() for name in BENCHMARKS for s in load_dataset(name, data).samples}
    annotated = [(r["msg_id"], r["content"], int(float(r["annotator's conclusion"]))) for r in _rows(data.path(AGREEMENT))]
    annotated += [(r["msg_id"], r["content"], int(any(r[c] == "1" for c in JIGSAW_LABELS))) for r in _rows(data.path(JIGSAW_COT))]
    texts, labels, seen = [], [], set()
    for msg_id, text, label in annotated:
        key = text.strip()
        if msg_id in excluded_ids or key in excluded_texts or msg_id in seen or key in seen:
            continue
        seen |= {msg_id, key}
        texts.append(text)
        labels.append(label)
    return texts, labels


@register("baseline")
class Baseline(Adapter):
    kind = "classifier"
    capabilities = Capabilities(concurrency=4, batching=True, batch_size=256, scores=True)
    description = "char n-gram TF-IDF + logistic regression trained on non-benchmark annotations (offline)"

    def __init__(self, model: str = "tfidf-char-lr", data=None, ngram_min: int = 2, ngram_max: int = 5, C: float = 4.0) -> None:
        from toxbench.harness.datadir import DataDir

        self.model = model
        self.data = data or DataDir()
        self.ngram_range, self.C = (int(ngram_min), int(ngram_max)), float(C)
        files = {rel: self.data.manifest.get(rel).sha256 for rel in (AGREEMENT, JIGSAW_COT, JIGSAW_BENCHMARK, TOXIFRENCH, RTPLX_FR, HATEDAY)}
        self._identity = {"version": VERSION, "ngram_range": list(self.ngram_range), "C": self.C, "training_files": files}
        self.pipeline = self._load_or_train()

    def identity(self) -> dict:
        return self._identity

    def _cache_path(self) -> Path:
        import platformdirs

        digest = hashlib.sha256(repr(sorted(self._identity.items())).encode()).hexdigest()[:16]
        root = Path(os.environ.get("TOXBENCH_MODELS") or Path(platformdirs.user_cache_dir("toxbench")) / "models")
        return root / f"baseline-{digest}.joblib"

    def _load_or_train(self):
        import joblib

        path = self._cache_path()
        if path.is_file():
            return joblib.load(path)
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        texts, labels = training_set(self.data)
        pipeline = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=self.ngram_range, lowercase=True, sublinear_tf=True, min_df=2),
            LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced"),
        )
        pipeline.fit(texts, labels)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        joblib.dump(pipeline, tmp)
        os.replace(tmp, path)
        return pipeline

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        scores = self.pipeline.predict_proba([r.text for r in requests])[:, 1]
        return [Answer(pred=int(s >= 0.5), score=float(s), raw=f'{{"p_toxic": {float(s):.6f}}}') for s in scores]

    async def answer(self, request: Request) -> Answer:
        return (await asyncio.to_thread(self.answer_batch, [request]))[0]
