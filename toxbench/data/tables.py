"""Read a CSV or JSONL table of labelled texts into samples, validating as it goes.

Used for the built-in datasets and for users' own files alike, so both get the same checks:
encoding, required columns, label values, empty texts, duplicate ids. Every failure is one line
that names the file, the line and the fix.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from toxbench._util import TABLE_BYTES, read_user_bytes
from toxbench.data.spans import SpanDrops, parse_spans
from toxbench.errors import DataError, ToxbenchError
from toxbench.types import Sample

csv.field_size_limit(1 << 30)

TEXT_COLUMNS = ("text", "content")
LABEL_COLUMNS = ("label",)
ID_COLUMNS = ("id",)
LANG_COLUMNS = ("lang",)
SPANS_COLUMNS = ("spans",)


@dataclass(frozen=True)
class Columns:
    """Which columns hold what; None means "use the first default name present"."""

    text: str | None = None
    label: str | None = None
    id: str | None = None
    lang: str | None = None
    spans: str | None = None
    delimiter: str | None = None  # a .csv/.tsv file's field separator; None: read from its header

    def __post_init__(self) -> None:
        if self.delimiter is not None:
            object.__setattr__(self, "delimiter", delimiter_arg(self.delimiter))

    def identity(self) -> dict:
        """The column choices for a dataset identity; `spans` and `delimiter` only when named, so
        files read before they existed keep their identity (the file's checksum already covers its
        contents)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("spans", "delimiter") or v}


def delimiter_arg(value: str) -> str:
    """`--delimiter`: one character, or `tab`."""
    chosen = "\t" if value in ("tab", "\\t") else value
    if len(chosen) != 1 or chosen in ('"', "\n", "\r"):
        raise DataError(f"--delimiter {value!r}: give one character (for example ';' or '|'), or tab")
    return chosen


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON may escape one; UTF-8 cannot encode it


def text_id(text: str, prefix: str = "") -> str:
    """A stable id for data without ids: the first 12 hex digits of the text's sha1."""
    return prefix + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def decode(path: Path) -> str:
    """The file as text; a bad byte is reported with its line number."""
    try:
        data = read_user_bytes(path, "data file (.csv, .tsv or .jsonl)", TABLE_BYTES)
    except ToxbenchError as exc:
        raise DataError(str(exc)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8"
        ) from None


DELIMITERS = (",", ";", "\t", "|")


def sniff_delimiter(text: str, suffix: str) -> str:
    """The field separator of a .csv/.tsv file, read from its header: the candidate that splits the
    header into the most columns (a tie keeps the file type's own: a comma for .csv, a tab for
    .tsv). Spreadsheets in French locales write `;`."""
    default = "\t" if suffix == ".tsv" else ","
    header = next(iter(text.splitlines()), "")
    widths = {d: len(next(csv.reader([header], delimiter=d), [])) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: (widths[d], d == default))
    return best if widths[best] > widths[default] else default


def delimiter_note(path: Path, chosen: str | None = None) -> str | None:
    """What `data show` says of a table whose separator is not its file type's own: given
    (`--delimiter`) or detected from the header; None for an ordinary one."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv"):
        return None
    if chosen is not None:
        return f"read as {chosen!r}-separated (--delimiter)"
    found = sniff_delimiter(decode(path), suffix)
    if found == ("\t" if suffix == ".tsv" else ","):
        return None
    return f"read as {found!r}-separated (detected from the header; --delimiter names another)"


def iter_rows(path: Path, delimiter: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line number where the row starts, row) for a .csv/.tsv or .jsonl/.ndjson file."""
    text = decode(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: line {number} is not valid JSON ({exc.msg}); fix or remove that line"
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {number} is not a JSON object; write one object per line")
            for key, value in row.items():
                if (isinstance(value, str) and LONE_SURROGATE.search(value)) or LONE_SURROGATE.search(str(key)):
                    raise DataError(
                        f"{path}: line {number}, field {key!r} holds a lone surrogate escape (\\ud800-\\udfff), which no UTF-8 "
                        "text can hold; fix the escape or remove that line"
                    )
            yield number, row
    elif suffix in (".csv", ".tsv"):
        delimiter = delimiter or sniff_delimiter(text, suffix)
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        if not reader.fieldnames:
            raise DataError(f"{path}: the file is empty; it needs a header row and at least one row")
        start = reader.line_num + 1
        for row in reader:
            if None in row:
                raise DataError(
                    f"{path}: line {start} has more fields than the header (separator {delimiter!r}); quote texts "
                    "that contain it"
                )
            yield start, row
            start = reader.line_num + 1
    else:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .csv, .tsv or .jsonl")


def parse_label(value: object) -> int | None:
    """0/1 in the spellings tables use (1, "1", "1.0", True, "true"); anything else is None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value) if value in (0, 1) else None
    if isinstance(value, str):
        token = value.strip().lower()
        if token in ("1", "1.0", "1.", "true"):
            return 1
        if token in ("0", "0.0", "0.", "false"):
            return 0
    return None


def _pick(
    columns: list[str],
    chosen: str | None,
    defaults: tuple[str, ...],
    required: bool,
    what: str,
    option: str,
    path: Path,
) -> str | None:
    if chosen is not None:
        if chosen not in columns:
            raise DataError(
                f"{path}: no column {chosen!r} for the {what} (columns: {', '.join(columns)}); check {option}"
            )
        return chosen
    for name in defaults:
        if name in columns:
            return name
    if required:
        raise DataError(
            f"{path}: no {what} column (looked for {', '.join(repr(d) for d in defaults)}; columns: "
            f"{', '.join(columns)}); name it with {option}"
        )
    return None


def read_samples(
    path: Path,
    columns: Columns = Columns(),
    *,
    default_lang: str = "und",
    id_prefix: str = "",
    duplicate_ids: str = "error",
    drops: SpanDrops | None = None,
) -> list[Sample]:
    """Validated samples from a table. duplicate_ids: "error", or "suffix" (keep both as id, id#2).
    A `spans` column (or `columns.spans`) gives gold character spans; what falls outside its text
    is dropped and counted in `drops`."""
    rows = iter_rows(path, columns.delimiter)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: no rows; the file needs at least one labelled text")
    names = list(first[1].keys())
    text_col = _pick(names, columns.text, TEXT_COLUMNS, True, "text", "--text-col", path)
    label_col = _pick(names, columns.label, LABEL_COLUMNS, True, "label", "--label-col", path)
    id_col = _pick(names, columns.id, ID_COLUMNS, False, "id", "--id-col", path)
    lang_col = _pick(names, columns.lang, LANG_COLUMNS, False, "language", "--lang-col", path)
    spans_col = _pick(names, columns.spans, SPANS_COLUMNS, False, "spans", "--spans-col", path)
    drops = drops if drops is not None else SpanDrops()

    samples: list[Sample] = []
    seen: dict[str, int] = {}
    repeats: dict[str, int] = {}

    def take(line: int, row: dict) -> None:
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: line {line}: empty text in column {text_col!r}; remove the row or fill it")
        raw_label = row.get(label_col)
        label = parse_label(raw_label)
        if label is None:
            shown = (
                "missing"
                if raw_label is None or (isinstance(raw_label, float) and math.isnan(raw_label))
                else repr(raw_label)
            )
            raise DataError(
                f"{path}: line {line}: label {shown} in column {label_col!r} is not 0 or 1; use 1 for toxic, 0 for non-toxic"
            )
        sid = str(row[id_col]).strip() if id_col and row.get(id_col) not in (None, "") else text_id(text)
        sid = id_prefix + sid
        if sid in seen:
            if duplicate_ids == "suffix" or not id_col:
                repeats[sid] = repeats.get(sid, 1) + 1
                sid = f"{sid}#{repeats[sid]}"
            else:
                raise DataError(f"{path}: line {line}: id {sid!r} already used on line {seen[sid]}; ids must be unique")
        seen[sid] = line
        lang = str(row[lang_col]).strip() if lang_col and row.get(lang_col) else default_lang
        spans = parse_spans(row.get(spans_col), text, f"{path}: line {line}", drops) if spans_col else None
        samples.append(Sample(id=sid, text=text, label=label, lang=lang, spans=spans))

    take(*first)
    for line, row in rows:
        take(line, row)
    return samples


COMMENT_ID_COLUMNS = ("id", "msg_id")


@dataclass(frozen=True)
class Comment:
    """One unlabelled text to annotate, with the whole row it came from (moderation metadata
    such as `deleted` or `banned`, any labels) for the queue and the annotated table."""

    id: str
    text: str
    line: int
    row: dict


def read_comments(
    path: Path, text_col: str | None = None, id_col: str | None = None
) -> tuple[list[Comment], str | None]:
    """(comments, the id column or None) from a CSV/JSONL table, checked like labelled tables: a
    missing text column, an empty text or a repeated id is a one-line error naming the line. Without
    an id column, a comment's id is its text's hash (`text_id`), so the same text is refused twice."""
    rows = iter_rows(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: no rows; the file needs a header row and at least one comment")
    names = list(first[1].keys())
    text_col = _pick(names, text_col, TEXT_COLUMNS, True, "text", "--text-col", path)
    id_col = _pick(names, id_col, COMMENT_ID_COLUMNS, False, "id", "--id-col", path)
    comments: list[Comment] = []
    seen: dict[str, int] = {}
    for line, row in [first, *rows]:
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{path}: line {line}: empty text in column {text_col!r}; remove the row or fill it")
        cid = str(row[id_col]).strip() if id_col and row.get(id_col) not in (None, "") else text_id(text)
        if cid in seen:
            what = f"id {cid!r}" if id_col else "the same text"
            raise DataError(f"{path}: line {line}: {what} already on line {seen[cid]}; each comment must appear once")
        seen[cid] = line
        comments.append(Comment(cid, text, line, row))
    return comments, id_col
