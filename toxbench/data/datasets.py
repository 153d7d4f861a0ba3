"""The dataset registry: one loader per benchmark, plus any user CSV/JSONL given by path.

A dataset is a list of samples with stable ids and an identity (the sha256 of the files it was
built from and the loader's parameters), which goes into every run's id.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toxbench.data.datadir import DataDir, sha256_of
from toxbench.data.spans import SpanDrops, parse_spans, substring_spans
from toxbench.data.tables import Columns, iter_rows, read_samples
from toxbench.errors import DataError
from toxbench.types import Sample

TF = "toxifrench/benchmark/"
# EN is left out: RTP-LX's English file holds no texts (every Prompt is "NA"; RTP-LX does not
# redistribute the English RealToxicityPrompts prompts it was translated from).
RTPLX_LOCALES = {"FR": "fr", "DE": "de", "IT": "it", "ES": "es", "ZH-HANS": "zh-Hans"}
RTPLX_NO_TEXTS = {
    "EN": 'RTP-LX\'s English file has no texts: its 999 Prompt fields are all "NA" (RTP-LX does not '
    "redistribute the English RealToxicityPrompts prompts); for English use jigsaw-en"
}
PLACEHOLDERS = {"na", "n/a", "nan", "null", "none", "-"}
RTPLX_FILE = "rtp-lx/RTP_LX_{}.jsonl"
RTPLX_DEFAULT_SEED = 0


def identity_sha256(identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


@dataclass(frozen=True)
class Dataset:
    name: str
    samples: list[Sample]
    identity: dict = field(repr=False)
    description: str = ""
    notes: tuple[str, ...] = ()  # what loading dropped (spans outside their text, ...), for `data show` and training

    @property
    def has_spans(self) -> bool:
        """Whether the dataset annotates toxic spans (every sample has `spans` not None)."""
        return bool(self.samples) and all(s.spans is not None for s in self.samples)

    @property
    def sha256(self) -> str:
        return identity_sha256(self.identity)

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    files: tuple[str, ...]
    lang: str
    load: Callable[..., list[Sample]]  # (data, drops, **params) for loaders that read spans, else (data)
    spans: bool = False

    def identity(self, data: DataDir, params: dict | None = None) -> dict:
        """What determines the samples: the pinned files' checksums (no file is read), and the
        loader's parameters when given (STATE ToxiCN's span parts)."""
        return {
            "dataset": self.name,
            "files": {rel: data.manifest.get(rel).sha256 for rel in self.files},
            **(params or {}),
        }

    def samples(self, data: DataDir, params: dict | None = None) -> tuple[list[Sample], tuple[str, ...]]:
        """The samples and what loading dropped."""
        if not self.spans:
            return self.load(data), ()
        drops = SpanDrops()
        samples = self.load(data, drops, **(params or {}))
        return samples, drops.notes()


REGISTRY: dict[str, DatasetInfo] = {}


def register(name: str, description: str, files: tuple[str, ...], lang: str = "fr", spans: bool = False):
    def wrap(load: Callable[..., list[Sample]]):
        REGISTRY[name] = DatasetInfo(name, description, files, lang, load, spans)
        return load

    return wrap


@register("toxifrench", "ToxiFrench balanced benchmark (French forum comments)", (TF + "ToxiFrenchBalanced.csv",))
def _toxifrench(data: DataDir) -> list[Sample]:
    return read_samples(
        data.path(TF + "ToxiFrenchBalanced.csv"), Columns(text="content", id="msg_id"), default_lang="fr"
    )


@register("rtplx-fr", "RTP-LX French, the release's balanced 672-row file", (TF + "RTP-LX-french.csv",))
def _rtplx_fr(data: DataDir) -> list[Sample]:
    return read_samples(
        data.path(TF + "RTP-LX-french.csv"), Columns(text="content"), default_lang="fr", id_prefix="rtplx-fr-"
    )


def _jigsaw(text_column: str, lang: str) -> Callable[[DataDir], list[Sample]]:
    def load(data: DataDir) -> list[Sample]:
        path = data.path(TF + "JigsawBilingualBalanced.csv")
        return read_samples(path, Columns(text=text_column, id="msg_id"), default_lang=lang)

    return load


register(
    "jigsaw-en",
    "Jigsaw comments, English originals (same 396 rows as jigsaw-fr)",
    (TF + "JigsawBilingualBalanced.csv",),
    "en",
)(_jigsaw("original_text", "en"))
register(
    "jigsaw-fr",
    "Jigsaw comments, French translation (same 396 rows as jigsaw-en)",
    (TF + "JigsawBilingualBalanced.csv",),
)(_jigsaw("content", "fr"))


@register(
    "hateday-fr", "HateDay French tweets (one tweet appears twice: ids id and id#2)", (TF + "HateDay-french.csv",)
)
def _hateday(data: DataDir) -> list[Sample]:
    path = data.path(TF + "HateDay-french.csv")
    return read_samples(path, Columns(text="content", id="tweet_id"), default_lang="fr", duplicate_ids="suffix")


TSD = "toxic-spans/tsd_{}.csv"
TSD_SPLITS = {"train": 7939, "trial": 690, "test": 2000}


def _toxic_spans(split: str) -> Callable[[DataDir, SpanDrops], list[Sample]]:
    def load(data: DataDir, drops: SpanDrops) -> list[Sample]:
        path = data.path(TSD.format(split))
        samples = []
        for number, (line, row) in enumerate(iter_rows(path)):
            text = row.get("text") or ""
            spans = parse_spans(row.get("spans"), text, f"{path}: line {line}", drops)
            samples.append(
                Sample(
                    id=f"tsd-{split}-{number}", text=text, label=1, lang="en", spans=spans if spans is not None else ()
                )
            )
        return samples

    return load


for _split, _n in TSD_SPLITS.items():
    register(
        f"toxicspans-en:{_split}",
        f"SemEval-2021 Task 5 toxic spans, {_split} ({_n} posts, all toxic; gold character spans)",
        (TSD.format(_split),),
        "en",
        spans=True,
    )(_toxic_spans(_split))

STATE = "state-toxicn/{}.json"
STATE_SPANS = ("argument", "target+argument")


def state_samples(data: DataDir, split: str, drops: SpanDrops, parts: str = "argument") -> list[Sample]:
    """STATE ToxiCN posts: label = `sen_hate`; gold spans = the Argument substrings (with `parts`
    "target+argument", the Target substrings too) of the statements marked `hate`. A non-hateful
    post has no span."""
    path = data.path(STATE.format(split))
    try:
        rows = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a JSON list ({exc}); re-fetch it with `toxbench data fetch --force`") from None
    fields = ("Argument",) if parts == "argument" else ("Target", "Argument")
    samples = []
    for number, row in enumerate(rows):
        text, label = row.get("content"), str(row.get("sen_hate", "")).strip()
        if not isinstance(text, str) or label not in ("0", "1"):
            raise DataError(
                f"{path}: item {number} lacks content or a 0/1 sen_hate; re-fetch it with `toxbench data fetch --force`"
            )
        statements = sorted({key.split(" ")[0] for key in row if key.startswith("Q") and " " in key})
        pieces = [row.get(f"{q} {f}") for q in statements if row.get(f"{q} hateful") == "hate" for f in fields]
        pieces = [p for p in pieces if p not in (None, "", "NULL")]  # NULL: a statement with no target
        spans = substring_spans(text, pieces, f"{path}: item {number} (id {row.get('id')})", drops)
        samples.append(
            Sample(
                id=f"state-{row.get('id', number)}",
                text=text,
                label=int(label),
                lang="zh-Hans",
                spans=spans if label == "1" else (),
            )
        )
    return samples


for _split, _n in {"train": 6424, "test": 1605}.items():
    register(
        f"state-toxicn:{_split}",
        f"STATE ToxiCN {_split} ({_n} Chinese posts; spans = hateful statements' arguments; "
        f"state-toxicn:{_split}:target+argument adds targets)",
        (STATE.format(_split),),
        "zh-Hans",
        spans=True,
    )(lambda data, drops, split=_split, spans="argument": state_samples(data, split, drops, spans))

COLD = "cold/{}.csv"


def _cold(split: str) -> Callable[[DataDir], list[Sample]]:
    def load(data: DataDir) -> list[Sample]:
        # ids by row: the file's unnamed index column repeats within train and dev
        path = data.path(COLD.format(split))
        samples = []
        for number, (line, row) in enumerate(iter_rows(path)):
            label = row.get("label", "").strip()
            if label not in ("0", "1") or not row.get("TEXT"):
                raise DataError(
                    f"{path}: line {line} lacks TEXT or a 0/1 label; re-fetch it with `toxbench data fetch --force`"
                )
            samples.append(Sample(id=f"cold-{split}-{number}", text=row["TEXT"], label=int(label), lang="zh-Hans"))
        return samples

    return load


for _split, _n in {"train": 25726, "dev": 6431, "test": 5323}.items():
    register(
        f"cold:{_split}",
        f"COLD Chinese offensive language, {_split} ({_n} posts; labels only)",
        (COLD.format(_split),),
        "zh-Hans",
    )(_cold(_split))


def rtplx_label(annotations: dict) -> int:
    """The binarisation that reproduces the release's French file: toxic when any harm category
    other than Toxicity has a mean above 1, non-toxic when all of them are exactly 1."""
    others = [float(v) for k, v in annotations.items() if k != "Toxicity"]
    return int(any(v > 1 for v in others))


def rtplx_samples(data: DataDir, locale: str, seed: int = RTPLX_DEFAULT_SEED) -> tuple[list[Sample], str]:
    """All rows of a locale labelled by `rtplx_label`, then a seeded balanced sample (every row of
    the minority class, as many of the majority drawn with `random.Random(seed)`), in file order."""
    key = locale.upper()
    if key in RTPLX_NO_TEXTS:
        raise DataError(f"rtplx:{locale}: {RTPLX_NO_TEXTS[key]}")
    if key not in RTPLX_LOCALES:
        raise DataError(f"unknown RTP-LX locale {locale!r}; use one of FR, DE, IT, ES, ZH-Hans (e.g. rtplx:FR)")
    file_locale = "ZH-Hans" if key == "ZH-HANS" else key
    rel = RTPLX_FILE.format(file_locale)
    path = data.path(rel)
    rows: list[Sample] = []
    for line, row in iter_rows(path):
        try:
            label = rtplx_label(row["Annotations"])
            text = row["Prompt"]
        except (KeyError, TypeError, ValueError):
            raise DataError(
                f"{path}: line {line} lacks Prompt or numeric Annotations; re-fetch the file with `toxbench data fetch --force`"
            ) from None
        rows.append(
            Sample(id=f"rtplx-{file_locale}-{row.get('Index', line)}", text=text, label=label, lang=RTPLX_LOCALES[key])
        )
    toxic = [i for i, s in enumerate(rows) if s.label == 1]
    clean = [i for i, s in enumerate(rows) if s.label == 0]
    minority, majority = (toxic, clean) if len(toxic) <= len(clean) else (clean, toxic)
    chosen = set(minority) | set(random.Random(seed).sample(majority, len(minority)))
    return [s for i, s in enumerate(rows) if i in chosen], rel


def parse_dataset_spec(spec: str) -> tuple[str, dict]:
    """`rtplx:FR` or `rtplx:FR:7` (seed 7) -> ("rtplx", {...}); other names pass through."""
    if spec.lower().startswith("rtplx:"):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[1]:
            raise DataError(
                f"bad RTP-LX dataset {spec!r}; write rtplx:<LOCALE> or rtplx:<LOCALE>:<SEED>, e.g. rtplx:FR"
            )
        try:
            seed = int(parts[2]) if len(parts) == 3 else RTPLX_DEFAULT_SEED
        except ValueError:
            raise DataError(f"bad seed in {spec!r}; the seed is a whole number, e.g. rtplx:FR:7") from None
        locale = parts[1].upper()
        return "rtplx", {"locale": "ZH-Hans" if locale == "ZH-HANS" else locale, "seed": seed}
    if spec.lower().startswith("state-toxicn:") and spec.count(":") == 2:
        name, _, parts = spec.rpartition(":")
        if parts.lower() not in STATE_SPANS:
            raise DataError(
                f"bad STATE ToxiCN spans {parts!r} in {spec!r}; write {name} (arguments) or {name}:target+argument"
            )
        return name, ({} if parts.lower() == "argument" else {"spans": parts.lower()})  # arguments are the default
    return spec, {}


def is_path_spec(spec: str) -> bool:
    return Path(spec).suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson") or Path(spec).exists()


def check_texts(samples: list[Sample], source: str) -> None:
    """Refuse a dataset whose texts are missing or all the same: a model would be scored on nothing."""
    texts = [s.text.strip() for s in samples]
    if len(texts) > 1 and len(set(texts)) == 1:
        raise DataError(
            f"{source}: all {len(texts)} texts are {texts[0][:40]!r}; the text column holds no messages (check the file or --text-col)"
        )
    missing = sum(t.lower() in PLACEHOLDERS for t in texts)
    if texts and missing * 2 > len(texts):
        raise DataError(
            f"{source}: {missing} of {len(texts)} texts are placeholders such as 'NA'; the texts are missing (check the file or --text-col)"
        )


def load_dataset(spec: str, data: DataDir, columns: Columns = Columns(), default_lang: str = "und") -> Dataset:
    """A registered dataset by name (`toxifrench`, `rtplx:FR`, ...) or a user file by path; one
    whose texts are missing or constant is refused."""
    dataset = _load(spec, data, columns, default_lang)
    check_texts(dataset.samples, dataset.name)
    return dataset


def _load(spec: str, data: DataDir, columns: Columns, default_lang: str) -> Dataset:
    name, params = parse_dataset_spec(spec)
    if name == "rtplx":
        samples, rel = rtplx_samples(data, params["locale"], params["seed"])
        locale = params["locale"]
        identity = {"dataset": f"rtplx:{locale}", "files": {rel: data.manifest.get(rel).sha256}, **params}
        return Dataset(
            f"rtplx:{locale}" + (f":{params['seed']}" if params["seed"] != RTPLX_DEFAULT_SEED else ""),
            samples,
            identity,
            "RTP-LX, seeded balanced sample",
        )
    if name in REGISTRY:
        info = REGISTRY[name]
        samples, notes = info.samples(data, params)
        return Dataset(
            ":".join([name, *params.values()]), samples, info.identity(data, params), info.description, notes
        )
    if is_path_spec(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise DataError(
                f"{path}: no such file; give a dataset name ({', '.join(dataset_names())}) or a path to a CSV/JSONL file"
            )
        from toxbench.data.perturb.provenance import read_provenance

        if (derived := read_provenance(path)) is not None:  # a perturbed dataset: its own name, wherever it lies
            samples = read_samples(path, default_lang=default_lang)
            identity = {"derived": derived["name"], "derived_sha256": derived["derived_sha256"]}
            return Dataset(
                derived["name"], samples, identity, f"{derived['source']['dataset']} perturbed ({path.name})"
            )
        drops = SpanDrops()
        samples = read_samples(path, columns, default_lang=default_lang, drops=drops)
        identity = {"file_sha256": sha256_of(path), "columns": columns.identity(), "default_lang": default_lang}
        from toxbench.data.tables import delimiter_note

        read_as = delimiter_note(path, columns.delimiter)
        return Dataset(
            str(spec), samples, identity, f"user file {path.name}", (*([read_as] if read_as else []), *drops.notes())
        )
    raise DataError(f"unknown dataset {spec!r}; known: {', '.join(dataset_names())}, or a path to a CSV/JSONL file")


def dataset_names() -> list[str]:
    return [*REGISTRY, "rtplx:<LOCALE>", "state-toxicn:<SPLIT>:target+argument"]


def samples_by_id(spec: str, data: DataDir) -> dict[str, Sample]:
    """The dataset's samples by id when it can be loaded, else nothing: tables of disagreements and
    the report still show the ids."""
    from toxbench.errors import ToxbenchError

    try:
        return {s.id: s for s in load_dataset(spec, data).samples}
    except (ToxbenchError, OSError):
        return {}


def texts_by_id(spec: str, data: DataDir) -> dict[str, str]:
    """Sample texts by id (see samples_by_id)."""
    return {sid: s.text for sid, s in samples_by_id(spec, data).items()}


def listed_files(data: DataDir) -> list[tuple[str, str, str, str]]:
    """(dataset, description, file, status) for every file a known dataset reads; status is ok,
    missing or mismatch against the pinned checksum."""
    rows = [(name, info.description, rel) for name, info in REGISTRY.items() for rel in info.files]
    locales = ["ZH-Hans" if loc == "ZH-HANS" else loc for loc in RTPLX_LOCALES]
    rows += [(f"rtplx:{loc}", "RTP-LX, seeded balanced sample", RTPLX_FILE.format(loc)) for loc in locales]
    return [(name, description, rel, data.status(rel)) for name, description, rel in rows]


@dataclass(frozen=True)
class Profile:
    """Counts a user checks before running on a dataset."""

    n: int
    toxic: int
    languages: list[tuple[str, int]]

    @property
    def non_toxic(self) -> int:
        return self.n - self.toxic


def profile(dataset: Dataset) -> Profile:
    from collections import Counter

    return Profile(
        len(dataset), sum(s.label == 1 for s in dataset.samples), Counter(s.lang for s in dataset.samples).most_common()
    )


def release_overlap(dataset: Dataset, data: DataDir) -> str | None:
    """For `rtplx:FR`, how many of its texts the release's balanced file (`rtplx-fr`, the one the
    paper's numbers come from) also holds: the same binarisation, but another balanced draw."""
    if not dataset.name.startswith("rtplx:FR"):
        return None
    release = {s.text for s in REGISTRY["rtplx-fr"].load(data)}
    shared = sum(s.text in release for s in dataset.samples)
    return (
        f"{shared} of its {len(dataset)} rows are in the release's balanced file ({len(release)} rows); "
        "the paper's RTP-LX numbers are on that file: use rtplx-fr to compare with them"
    )
