"""Trained models by name: each training directory carries a card, `toxbench-model.json`; registering
writes a small file `<registry>/<name>.json` pointing at the directory, so `finetuned:<name>` runs it.
It sits beside the adapters, below finetune/: training writes cards, the `finetuned` adapter reads
them, and neither imports the other.

The card says what inference needs: kind (`causal-cot`: base model + LoRA adapter, generation
parsed by the `cot` parser; `encoder`: a sequence classifier), base model, prompt template, parser,
generation length, and how it was trained. The registry folder is $TOXBENCH_REGISTRY, else
`models/registry` in the user data directory.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from pathlib import Path

from toxbench._util import read_user_text, registry_dir, write_atomic
from toxbench.errors import ToxbenchError

CARD = "toxbench-model.json"
KINDS = ("causal-cot", "encoder")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def write_card(model_dir: Path, card: dict) -> Path:
    return write_atomic(Path(model_dir) / CARD, json.dumps(card, indent=2, ensure_ascii=False, default=str))


def read_card(model_dir: Path) -> dict:
    path = Path(model_dir) / CARD
    if not path.exists():
        raise ToxbenchError(
            f"{model_dir}: no {CARD}; register a directory written by `toxbench finetune sft|dpo|encoder`"
        )
    try:
        card = json.loads(read_user_text(path, "model card"))
    except ValueError as exc:
        raise ToxbenchError(f"{path}: unreadable ({exc})") from None
    if not isinstance(card, dict):
        raise ToxbenchError(
            f"{path}: not a model card (a JSON object); write the directory again with `toxbench finetune`"
        )
    if card.get("kind") not in KINDS:
        raise ToxbenchError(f"{path}: kind {card.get('kind')!r} is not one of {', '.join(KINDS)}")
    return card


def weights_sha256(model_dir: Path) -> str:
    """Checksum of the trained weights, so a retrained model makes new run ids."""
    digest = hashlib.sha256()
    files = sorted(p for p in Path(model_dir).glob("*.safetensors")) or sorted(Path(model_dir).glob("*.bin"))
    if not files:
        raise ToxbenchError(f"{model_dir}: no weights (*.safetensors) next to {CARD}")
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def register(model_dir: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise ToxbenchError(f"model name {name!r}: use letters, digits, '.', '_' or '-' (up to 64)")
    model_dir = Path(model_dir).resolve()
    card = read_card(model_dir)
    entry = {
        "name": name,
        "path": str(model_dir),
        "kind": card["kind"],
        "weights_sha256": weights_sha256(model_dir),
        "registered_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return write_atomic(registry_dir() / f"{name}.json", json.dumps(entry, indent=2))


def lookup(name: str) -> tuple[dict, dict]:
    """(registry entry, card) of a registered model."""
    if not _NAME.match(name):  # a name, never a path: finetuned:../x must not read outside the registry
        raise ToxbenchError(
            f"model name {name!r}: registered names use letters, digits, '.', '_' or '-' (up to 64); "
            "see `toxbench models list`"
        )
    path = registry_dir() / f"{name}.json"
    try:
        entry = json.loads(read_user_text(path, "registry entry"))
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ValueError("no model path")
    except ValueError as exc:
        raise ToxbenchError(
            f"{path}: a damaged registry entry ({exc}); register the model again with "
            f"`toxbench models register DIR --name {name}`"
        ) from None
    except ToxbenchError:
        if path.exists():
            raise
        known = ", ".join(sorted(p.stem for p in registry_dir().glob("*.json"))) or "none"
        raise ToxbenchError(
            f"no registered model {name!r} in {registry_dir()} (registered: {known}); "
            f"run `toxbench models register DIR --name {name}`"
        ) from None
    return entry, read_card(Path(entry["path"]))


def registered() -> list[dict]:
    entries = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            entry = json.loads(read_user_text(path, "registry entry"))
        except ValueError as exc:
            raise ToxbenchError(
                f"{path}: a damaged registry entry ({exc}); register the model again or delete the file"
            ) from None
        if not isinstance(entry, dict):
            raise ToxbenchError(
                f"{path}: a damaged registry entry (not a JSON object); register the model again or delete the file"
            )
        entries.append(entry)
    return entries
