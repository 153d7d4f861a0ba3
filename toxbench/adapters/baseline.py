"""The offline baseline: character n-gram TF-IDF + logistic regression (scikit-learn).

Trained on annotated material that is in no benchmark: the 500 human-labelled ToxiFrench
comments of `cot/agreement_checking.csv` (`annotator's conclusion`) and the French Jigsaw
translations of `cot/subset_jigsaw_annotated.csv` labelled by the benchmark's own rule (toxic when
any of Jigsaw's six labels is 1), without the 396 ids of the Jigsaw benchmark, without any text that
appears in a benchmark or nearly copies one, and with each text once. The fitted model is cached by the checksums of its training files and its settings, so only
the first run trains. Needs no key and no download: `toxbench run` uses it when no model is given.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from toxbench._util import models_dir, write_atomic
from toxbench.adapters.base import Adapter, Capabilities
from toxbench.adapters.registry import register
from toxbench.data.annotated import annotated_rows, files_identity
from toxbench.types import Answer, Request

VERSION = 3  # bump when the features or the training set's rule change (3: near copies of benchmark texts left out)


def training_set(data) -> tuple[list[str], list[int]]:
    """Texts and labels of the annotated rows that are in no benchmark (toxbench.data.annotated)."""
    rows = annotated_rows(data)
    return [r.text for r in rows], [r.label for r in rows]


@register("baseline")
class Baseline(Adapter):
    preparing = "loading the model, or training it on first use (about a quarter of a minute)"
    kind = "classifier"
    capabilities = Capabilities(concurrency=4, batching=True, batch_size=256, scores=True)
    description = "char n-gram TF-IDF + logistic regression trained on non-benchmark annotations (offline)"

    def __init__(
        self, model: str = "tfidf-char-lr", data=None, ngram_min: int = 2, ngram_max: int = 5, C: float = 4.0
    ) -> None:
        """`--model-arg` keys of `baseline:`.

        Args:
            ngram_min: Shortest character n-gram of the TF-IDF features.
            ngram_max: Longest character n-gram.
            C: Inverse regularisation strength of the logistic regression.
        """
        from toxbench.data.datadir import DataDir

        self.model = model
        self.data = data or DataDir()
        self.ngram_range, self.C = (int(ngram_min), int(ngram_max)), float(C)
        files = files_identity(self.data)
        self._identity = {
            "version": VERSION,
            "ngram_range": list(self.ngram_range),
            "C": self.C,
            "training_files": files,
        }
        self.pipeline = self._load_or_train()

    def identity(self) -> dict:
        return self._identity

    def _cache_path(self) -> Path:
        digest = hashlib.sha256(repr(sorted(self._identity.items())).encode()).hexdigest()[:16]
        return models_dir() / f"baseline-{digest}.joblib"

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
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=self.ngram_range, lowercase=True, sublinear_tf=True, min_df=2
            ),
            LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced"),
        )
        pipeline.fit(texts, labels)
        blob = io.BytesIO()
        joblib.dump(pipeline, blob)
        write_atomic(path, blob.getvalue())
        return pipeline

    def answer_batch(self, requests: list[Request]) -> list[Answer]:
        scores = self.pipeline.predict_proba([r.text for r in requests])[:, 1]
        return [Answer(pred=int(s >= 0.5), score=float(s), raw=f'{{"p_toxic": {float(s):.6f}}}') for s in scores]
