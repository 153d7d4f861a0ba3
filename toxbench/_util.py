"""Small helpers every layer shares, each in one place: where toxbench keeps things (user
directories and the environment variables that move them), writing a file so a crash leaves the
old one or the new one and never half of either, a file's sha256, reading a TOML file into a
pydantic model with a one-line error, and the one wording of a partial run."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from toxbench.errors import ToxbenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Every environment variable toxbench reads (API keys aside: each adapter names its own).
DATA_DIR_ENV = "TOXBENCH_DATA_DIR"  # the data directory
MIRROR_ENV = "TOXBENCH_DATA_MIRROR"  # a base URL that replaces the pinned upstream URLs
OFFLINE_ENV = "TOXBENCH_OFFLINE"  # never download a missing data file
CACHE_ENV = "TOXBENCH_CACHE"  # the response cache's SQLite file
MODELS_ENV = "TOXBENCH_MODELS"  # converted GGUF models and trained baselines
REGISTRY_ENV = "TOXBENCH_REGISTRY"  # registered fine-tuned models
PRICES_ENV = "TOXBENCH_PRICES"  # a price table overriding the shipped one


def user_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("toxbench"))


def data_dir_default() -> Path:
    return user_cache_dir() / "data"


def response_cache_path() -> Path:
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir() / "responses.sqlite")


def models_dir() -> Path:
    return Path(os.environ.get(MODELS_ENV) or user_cache_dir() / "models")


def registry_dir() -> Path:
    import platformdirs

    return Path(os.environ.get(REGISTRY_ENV) or Path(platformdirs.user_data_dir("toxbench")) / "models" / "registry")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: setting it back and forth later would race with other threads


def give_ordinary_mode(tmp: Path | str, target: Path) -> None:
    """Give a temporary file about to replace `target` the permissions an ordinary write of `target`
    would leave: the existing file's, else what the umask allows. Temporary files are made 0600,
    and renaming one into place would keep that. Best effort: a file system that refuses chmod
    keeps the file as it is rather than failing the write."""
    try:
        mode = stat.S_IMODE(Path(target).stat().st_mode)
    except OSError:
        mode = 0o666 & ~_UMASK
    try:
        os.chmod(tmp, mode)
    except OSError:
        pass


def write_atomic(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` through a temporary file in the same directory: fsync, then rename.
    Readers and a crash see the old file or the new one, never a partial one. The file gets the
    mode an ordinary write would give it (the old file's, else the umask's), not the temporary
    file's 0600: a report or a leaderboard is shared with a team or a web server."""
    path = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ToxbenchError(f"{path}: cannot write here ({exc.strerror}); choose a writable location") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        give_ordinary_mode(tmp, path)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ToxbenchError(f"{path}: cannot write it ({exc.strerror}); choose a writable file path") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def writable_dir(path: Path, option: str) -> Path:
    """`path` as a directory this process can write to (created if needed), checked before any
    work so a long command does not fail at its last step; else a one-line error naming the option."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".toxbench-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ToxbenchError(
            f"{path}: cannot write there ({exc.strerror}); give {option} a writable directory"
        ) from None
    return path


def writable_file(path: Path, option: str) -> Path:
    """`path` as a file this process can write (its directory created if needed, and not itself a
    directory), checked before any work; else a one-line error naming the option."""
    path = Path(path)
    if path.is_dir():
        raise ToxbenchError(f"{path}: a directory; give {option} a file path, e.g. {path / 'result.json'}")
    writable_dir(path.parent, option)
    return path


CONFIG_BYTES = 16 << 20  # a TOML, JSON or prompt file: far above any real one
TABLE_BYTES = 4 << 30  # a dataset or a run's records


def read_user_bytes(path: Path | str, what: str, limit: int = CONFIG_BYTES) -> bytes:
    """A file's bytes, refusing in one line what is not a regular file (a FIFO would block forever,
    /dev/zero never ends) and what is larger than `limit`. The file is opened without blocking and
    checked on the open descriptor, so what is read is what was checked."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ToxbenchError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise ToxbenchError(f"{path}: a directory; give a {what}") from None
    except OSError as exc:
        raise ToxbenchError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ToxbenchError(
            f"{path}: a directory; give a {what}"
            if stat.S_ISDIR(info.st_mode)
            else f"{path}: not a regular file (a pipe or a device); give a {what} saved on disk"
        )
    if info.st_size > limit:
        os.close(fd)
        raise ToxbenchError(f"{path}: {info.st_size:,} bytes, more than a {what} may hold ({limit:,}); check the path")
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise ToxbenchError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:  # it grew while read
        raise ToxbenchError(f"{path}: more than a {what} may hold ({limit:,} bytes); check the path")
    return data


def read_user_text(path: Path | str, what: str, limit: int = CONFIG_BYTES) -> str:
    """`read_user_bytes` decoded as UTF-8 (a byte-order mark dropped); a bad byte is one line naming the file and its line."""
    data = read_user_bytes(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ToxbenchError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x}); re-save the file as UTF-8"
        ) from None


def confined(base: Path, ref: str, what: str) -> Path:
    """`base / ref` when it stays inside `base` (after resolving `..` and links), else a one-line
    refusal: a file named inside a shared config must not read, or write, anywhere else."""
    base = Path(base).resolve()
    target = (base / ref).resolve()
    if Path(ref).is_absolute() or not target.is_relative_to(base):
        raise ToxbenchError(f"{what} {ref!r} points outside {base}; name a file inside that folder")
    return target


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet read a cell as a formula (OWASP)


def _formula_like(text: str) -> bool:
    body = text.lstrip("'")
    if not body.startswith(FORMULA_START):
        return False
    try:
        float(body)
        return False  # a number such as -0.25 is a number, not a formula
    except ValueError:
        return True


def csv_cell(value: object) -> object:
    """A value for a CSV that people open in a spreadsheet: a text that would start a formula
    (`=`, `+`, `-`, `@`, tab, carriage return) gets a leading `'`, OWASP's rule, so a comment like
    `=HYPERLINK(...)` stays text. `csv_uncell` takes the quote off again, exactly."""
    return "'" + value if isinstance(value, str) and _formula_like(value) else value


def csv_uncell(value: str) -> str:
    """The text `csv_cell` was given."""
    return value[1:] if isinstance(value, str) and value.startswith("'") and _formula_like(value[1:]) else value


def csv_for_people(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A CSV (header, then rows) with every cell through `csv_cell`: the one writer of every CSV
    toxbench writes for people (leaderboards, annotation tables and queues, matrices)."""
    import csv
    import io

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in header])
    writer.writerows([csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def folder_name(text: str) -> str:
    """`text` as one file or folder name that stays where it is put: every character but letters,
    digits, '.', '_' and '-' becomes '-', and no leading dot (so never `..`)."""
    return re.sub(r"[^\w.-]", "-", text).lstrip(".") or "-"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_toml(path: Path, what: str) -> dict:
    """A TOML file as a dict; a missing or malformed file is a one-line error naming it."""
    text = read_user_text(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ToxbenchError(f"{path}: not valid TOML ({exc})") from None


Model = TypeVar("Model")


def validate(model: type[Model], raw: dict, where: str) -> Model:
    """`model.model_validate(raw)`, with every problem on one line: `where: field: message; ...`."""
    from pydantic import ValidationError

    try:
        return model.model_validate(raw)  # type: ignore[attr-defined]
    except ValidationError as exc:
        # a model-level check has no field: its message alone, without pydantic's "Value error, " prefix
        problems = "; ".join(
            (f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "") + _message(model, e) for e in exc.errors()
        )
        raise ToxbenchError(f"{where}: {problems}") from None


def _message(model, error: dict) -> str:
    """pydantic's message, said for a user: an unknown key lists the keys its section takes
    (pydantic's own is "Extra inputs are not permitted")."""
    if error["type"] == "extra_forbidden":
        section = _section(model, error["loc"][:-1])
        return f"unknown key; known: {', '.join(section.model_fields)}" if section else "unknown key"
    return error["msg"].removeprefix("Value error, ")


def _section(model, loc: tuple):
    """The pydantic model that holds the key at `loc` (list indices skipped), or None."""
    from typing import get_args

    def model_in(annotation):
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            return annotation
        return next((found for arg in get_args(annotation) if (found := model_in(arg))), None)

    current = model if hasattr(model, "model_fields") else None
    for part in loc:
        if current is None or isinstance(part, int):
            continue
        field = current.model_fields.get(part)
        current = model_in(field.annotation) if field else None
    return current


def load_toml_model(path: Path, model: type[Model], what: str) -> Model:
    """A TOML file validated into a pydantic model, or a one-line error naming the file."""
    return validate(model, read_toml(path, what), str(path))


def partial_note(recorded: int, expected: int) -> str:
    """The note of a run holding records for fewer samples than it set out to (a published file
    that covers part of a dataset): one wording, so the replay that finds it and the leaderboard
    that ranks the run apart say it once."""
    return f"covers {recorded} of {expected} samples (partial run)"
