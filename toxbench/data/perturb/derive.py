"""Derived datasets: a dataset's samples through a chain of transforms, written as JSONL (same ids,
gold labels and languages; texts disguised; gold spans dropped, since they no longer point at the
text) with a provenance record beside it. The same source, chain and seed give the same bytes, which
`regenerate` checks."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from toxbench import __version__
from toxbench._util import TABLE_BYTES, folder_name, read_user_text, write_atomic
from toxbench.data.datadir import DataDir
from toxbench.data.datasets import Dataset, load_dataset
from toxbench.data.perturb.provenance import provenance_path, read_provenance
from toxbench.data.perturb.transforms import TRANSFORMS, Step, chain_name, parse_chain, perturb_text, tables_sha256
from toxbench.errors import DataError

DEFAULT_DIR = Path("perturbed")


@dataclass(frozen=True)
class Derived:
    path: Path  # the JSONL file: give it to any command as a dataset
    name: str  # what runs, leaderboards and reports call it
    n: int
    changed: int  # texts the chain changed; the others are the source's, word for word
    record: dict


def derived_name(source: str, steps: list[Step], seed: int) -> str:
    return f"{source}~{chain_name(steps)}~s{seed}"


def derive(dataset: Dataset, steps: list[Step], seed: int, out_dir: Path = DEFAULT_DIR) -> Derived:
    """Write the derived dataset of `dataset` (and its provenance) under out_dir."""
    content, record = build(dataset, steps, seed)
    return write(content, record, out_dir)


def build(dataset: Dataset, steps: list[Step], seed: int) -> tuple[bytes, dict]:
    """The derived dataset's bytes and provenance record, nothing written."""
    rows, unchanged = [], []
    for sample in dataset.samples:
        text, changed = perturb_text(steps, sample.text, seed, sample.id)
        if not changed:
            unchanged.append(sample.id)
        rows.append({"id": sample.id, "text": text, "label": sample.label, "lang": sample.lang})
    content = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    name = derived_name(dataset.name, steps, seed)
    record = {
        "name": name,
        "source": {"dataset": dataset.name, "sha256": dataset.sha256, "n": len(dataset.samples)},
        "transforms": [
            {"name": s.transform.name, "rate": s.rate, "version": s.transform.version, "kind": s.transform.kind}
            for s in steps
        ],
        "tables_sha256": tables_sha256(),
        "seed": seed,
        "derived_sha256": hashlib.sha256(content).hexdigest(),
        "n": len(rows),
        "changed": len(rows) - len(unchanged),
        "unchanged_ids": unchanged,
        "toxbench": __version__,
    }
    return content, record


def write(content: bytes, record: dict, out_dir: Path) -> Derived:
    path = Path(out_dir) / f"{folder_name(record['name'])}.jsonl"
    write_atomic(path, content)
    write_atomic(provenance_path(path), json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return Derived(path, record["name"], record["n"], record["changed"], record)


def derive_spec(spec: str, chain: str, seed: int, data: DataDir, out_dir: Path = DEFAULT_DIR) -> Derived:
    """`toxbench perturb DATASET --transform CHAIN --seed S`."""
    return derive(load_dataset(spec, data), parse_chain(chain), seed, out_dir)


def regenerate(record_path: Path, data: DataDir, source: str | None = None) -> Derived:
    """The derived dataset a provenance record describes, written again beside the record and
    checked byte for byte; `source` is where the source dataset is when it was a file that moved."""
    record_path = Path(record_path)
    text = read_user_text(record_path, "provenance record", TABLE_BYTES)
    try:
        record = json.loads(text)
        wanted_source, steps_spec = (
            record["source"],
            ",".join(f"{t['name']}@{t['rate']:g}" for t in record["transforms"]),
        )
        seed = int(record["seed"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"{record_path}: not a provenance record toxbench wrote ({type(exc).__name__}: {exc})"
        ) from None
    dataset = load_dataset(source or wanted_source["dataset"], data)
    if dataset.sha256 != wanted_source["sha256"]:
        raise DataError(
            f"{record_path}: the source {dataset.name!r} is not the one it was derived from (another checksum); "
            "give the original file with --source"
        )
    for t in record["transforms"]:
        if TRANSFORMS.get(t["name"]) is None or TRANSFORMS[t["name"]].version != t["version"]:
            raise DataError(f"{record_path}: transform {t['name']} version {t['version']} is not this toxbench's")
    content, rebuilt = build(dataset, parse_chain(steps_spec), seed)
    if rebuilt["derived_sha256"] != record["derived_sha256"]:
        raise DataError(
            f"{record_path}: regenerated, the dataset differs from the one recorded (its rule tables changed: "
            f"{'same' if rebuilt['tables_sha256'] == record.get('tables_sha256') else 'other'} tables); nothing written"
        )
    derived = write(content, record, record_path.parent)
    read_provenance(derived.path)
    return derived
