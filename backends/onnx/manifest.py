"""The export folder's manifest.json: what each graph takes and gives, and proof of each file.

Written last by :mod:`.export` (only once every graph matched torch), read first by
:mod:`.runtime`, which refuses a folder whose manifest is missing, from another format
version, or whose files are missing, truncated or changed. Pure stdlib: no torch, no ORT.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from layerctl.digests import file_sha256
from layerctl.errors import MissingWeights

FORMAT = "layerctl-onnx"
FORMAT_VERSION = 1
FILENAME = "manifest.json"
GRAPHS = ("transformer", "vae_encoder", "vae_decoder", "text_encoder")
HASH_LIMIT = 1 << 30  # files above 1 GiB are checked by size at load; `verify=True` hashes all
_HINT = "re-run `layerctl export onnx --weights CHECKPOINT -o DIR --force`"


def files_of(root: Path) -> dict[str, dict[str, Any]]:
    """Every file under ``root`` except the manifest, by relative POSIX path."""
    return {
        p.relative_to(root).as_posix(): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != FILENAME
    }


def listed_files(manifest: dict[str, Any]) -> set[str]:
    """The files a manifest names: what ``export onnx --force`` may replace."""
    return set(manifest["files"])


def write(root: Path, manifest: dict[str, Any]) -> None:
    record = {"format": FORMAT, "format_version": FORMAT_VERSION, **manifest}
    record["files"] = files_of(root)
    (root / FILENAME).write_text(json.dumps(record, indent=2) + "\n")


def read(root: Path, verify: bool = False) -> dict[str, Any]:
    """The manifest of export folder ``root``, after checking every file it lists."""
    path = root / FILENAME
    if not root.is_dir():
        raise MissingWeights(f"no ONNX export folder at {root}", hint=_HINT)
    if not path.is_file():
        raise MissingWeights(f"{root} is not a layerctl ONNX export (no {FILENAME})", hint=_HINT)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MissingWeights(f"{path} is unreadable: {exc}", hint=_HINT) from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise MissingWeights(
            f"{path}: format {manifest.get('format')!r} v{manifest.get('format_version')}, "
            f"this layerctl reads {FORMAT!r} v{FORMAT_VERSION}",
            hint=_HINT,
        )
    missing = [g for g in GRAPHS if g not in manifest.get("graphs", {})]
    if missing:
        raise MissingWeights(f"{path} lists no {', '.join(missing)} graph", hint=_HINT)
    for name, expected in manifest.get("files", {}).items():
        _check_file(root, name, expected, verify)
    return manifest


def _check_file(root: Path, name: str, expected: dict[str, Any], verify: bool) -> None:
    path = root / name
    if not path.is_file():
        raise MissingWeights(f"incomplete ONNX export {root}: {name} is missing", hint=_HINT)
    size = path.stat().st_size
    if size != expected["size"]:
        raise MissingWeights(
            f"damaged ONNX export {root}: {name} has {size} bytes, manifest says "
            f"{expected['size']} (truncated or replaced)",
            hint=_HINT,
        )
    if (verify or size <= HASH_LIMIT) and file_sha256(path) != expected["sha256"]:
        raise MissingWeights(
            f"damaged ONNX export {root}: {name} does not match its sha256 in {FILENAME}",
            hint=_HINT,
        )
