"""PNG stack: a folder of full-canvas PNGs, ``composite.png`` and ``manifest.json``.

Layout, bottom first::

    00-Background.png
    01-Layer 1.png
    02-Sky.png            a group: the composite of its children, for viewers
    02-Sky/00-Cloud.png   the group's children, numbered again from 00
    02-Sky/01-Sun.png
    composite.png
    manifest.json

``manifest.json`` lists every layer and group depth first (a parent before its
children) with its exact name, ``file`` (relative, POSIX), bbox, coverage, ``parent``
(index into the same list, or null) and visibility, plus the canvas size, the format
version, the writing layerctl version and the stack's provenance metadata (backend,
parameters, seed, source path and sha256). File names are made safe for every common
file system; the exact name lives only in the manifest.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layerctl import __version__
from layerctl.errors import BadResult
from layerctl.formats.canvas import check_size, clear_transparent
from layerctl.imageio import _short, to_rgba
from layerctl.outputs import json_text
from layerctl.stack import Layer, LayerStack

MANIFEST = "manifest.json"
COMPOSITE = "composite.png"
FORMAT = "layerctl-pngstack"
VERSION = 1
MAX_NAME_CHARS = 64
# UTF-8 bytes: with the "NN-" prefix and ".png" well inside NAME_MAX (255 bytes on Linux
# and macOS, 255 UTF-16 units on Windows) even for names made of 4-byte characters.
MAX_NAME_BYTES = 128
MAX_MANIFEST_BYTES = 64 << 20  # ~100 000 layers; a bigger manifest.json is not ours
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*\ud800-\udfff]+')  # and lone surrogates
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(10)}


def safe_name(name: str) -> str:
    """``name`` as one file-name component that is valid on Linux, macOS and Windows.

    Drops path separators, control and reserved characters, leading/trailing dots and
    spaces (so never ``.`` or ``..``), avoids Windows device names, and keeps at most
    ``MAX_NAME_CHARS`` characters and ``MAX_NAME_BYTES`` bytes.
    """
    text = unicodedata.normalize("NFC", name)
    text = _UNSAFE.sub("_", text).strip(" .")[:MAX_NAME_CHARS]
    text = text.encode()[:MAX_NAME_BYTES].decode(errors="ignore").rstrip(" .")
    if not text:
        return "layer"
    if text.split(".")[0].upper() in _RESERVED:
        return f"_{text}"
    return text


def write(stack: LayerStack, path: Path) -> None:
    path.mkdir(parents=True)
    pnginfo = {"icc_profile": stack.icc_profile} if stack.icc_profile else {}
    entries: list[dict[str, Any]] = []
    _write_layers(stack.layers, path, Path(), None, entries, pnginfo)
    Image.fromarray(stack.composite(), "RGBA").save(path / COMPOSITE, **pnginfo)
    width, height = stack.size
    manifest = {
        "format": FORMAT,
        "format_version": VERSION,
        "layerctl": __version__,
        "canvas": {"width": width, "height": height},
        "composite": COMPOSITE,
        "metadata": stack.metadata,
        "layers": entries,
    }
    (path / MANIFEST).write_text(json_text(manifest) + "\n", encoding="utf-8")


def listed_files(manifest: dict[str, Any]) -> set[str]:
    """The files a manifest names (layers and composite): what ``--force`` may replace."""
    return {entry["file"] for entry in manifest["layers"]} | {manifest["composite"]}


def _write_layers(
    layers: list[Layer],
    root: Path,
    folder: Path,
    parent: int | None,
    entries: list[dict[str, Any]],
    pnginfo: dict[str, Any],
) -> None:
    digits = max(2, len(str(len(layers) - 1)))
    for number, layer in enumerate(layers):
        stem = f"{number:0{digits}d}-{safe_name(layer.name)}"
        rel = folder / f"{stem}.png"
        Image.fromarray(clear_transparent(layer.pixels), "RGBA").save(root / rel, **pnginfo)
        entries.append(
            {
                "name": layer.name,
                "file": rel.as_posix(),
                "bbox": layer.bbox(),
                "coverage": round(layer.coverage(), 6),
                "parent": parent,
                "visible": layer.visible,
            }
        )
        if layer.is_group:
            (root / folder / stem).mkdir()
            _write_layers(layer.children, root, folder / stem, len(entries) - 1, entries, pnginfo)


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    manifest_path = path / MANIFEST
    manifest = _load_manifest(manifest_path)
    size, entries = _check_manifest(manifest, manifest_path, max_memory)
    root = path.resolve()
    icc: list[bytes] = []
    decoded: dict[str, np.ndarray] = {}  # one file behind several entries is decoded once
    pixels = []
    for entry in entries:
        rel = entry["file"]
        if rel in decoded:
            pixels.append(decoded[rel].copy())  # each layer owns its array
        else:
            decoded[rel] = _read_png(root, rel, size, icc)
            pixels.append(decoded[rel])
    children: dict[int | None, list[Layer]] = {}  # by parent index; None: the top level
    # Entries come parents first: build them last to first, so children exist first.
    for index in reversed(range(len(entries))):
        entry = entries[index]
        kids = children.pop(index, [])[::-1]
        layer = Layer(entry["name"], pixels[index], kids, bool(entry.get("visible", True)))
        children.setdefault(entry.get("parent"), []).append(layer)
    top = children.get(None, [])[::-1]
    metadata = manifest.get("metadata")
    return LayerStack(top, metadata if isinstance(metadata, dict) else {}, icc[0] if icc else None)


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance from the manifest, once every file it names is there (no pixels read)."""
    manifest_path = path / MANIFEST
    manifest = _load_manifest(manifest_path)
    _, entries = _check_manifest(manifest, manifest_path)
    for rel in [entry["file"] for entry in entries] + [COMPOSITE]:
        file = path / rel
        if not file.is_file() or file.stat().st_size == 0:
            raise BadResult(f"{path}: layer file {rel!r} is missing")
    metadata = manifest.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _load_manifest(path: Path) -> Any:
    """The parsed manifest; a FIFO, a huge file or JSON nested too deep is BadResult."""
    if not path.exists():
        raise BadResult(f"{path.parent}: no {MANIFEST}", hint="not a layerctl PNG stack")
    if not path.is_file() or path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BadResult(f"{path}: not a regular file of at most {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        # "\ud800" escapes decode to lone surrogates, which no writer could write back.
        json.dumps(manifest, ensure_ascii=False).encode()
        return manifest
    except (OSError, ValueError, RecursionError) as exc:
        raise BadResult(f"{path}: unreadable ({_short(exc)})") from None


def _check_manifest(
    manifest: Any, where: Path, max_memory: int | None = None
) -> tuple[tuple[int, int], list[dict[str, Any]]]:
    """The canvas size and layer entries, or BadResult naming what is wrong."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadResult(f"{where}: not a layerctl PNG-stack manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > VERSION:
        raise BadResult(
            f"{where}: format version {version!r} is newer than this layerctl reads",
            hint="upgrade layerctl",
        )
    canvas = manifest.get("canvas")
    try:
        size = (int(canvas["width"]), int(canvas["height"]))
    except (TypeError, KeyError, ValueError, OverflowError):
        raise BadResult(f"{where}: canvas size missing or not numbers") from None
    entries = manifest.get("layers")
    if size[0] < 1 or size[1] < 1 or not isinstance(entries, list) or not entries:
        raise BadResult(f"{where}: no canvas or no layers")
    check_size(where, *size, layers=len(entries), max_memory=max_memory)
    for index, entry in enumerate(entries):
        ok = (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and isinstance(entry.get("file"), str)
            and (entry.get("parent") is None or _is_index(entry["parent"], index))
        )
        if not ok:
            raise BadResult(f"{where}: layer entry {index} is malformed")
    return size, entries


def _is_index(value: Any, before: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < before


def _read_png(root: Path, rel: str, size: tuple[int, int], icc: list[bytes]) -> np.ndarray:
    """One full-canvas layer PNG inside ``root``; collects the first ICC profile seen."""
    if "\x00" in rel:
        raise BadResult(f"{root}: layer file {rel!r} is not a valid path")
    file = (root / rel).resolve()
    if not file.is_relative_to(root) or file == root:
        raise BadResult(f"{root}: layer file {rel!r} lies outside the folder")
    if file.exists() and not file.is_file():  # a folder, or a FIFO that would block the read
        raise BadResult(f"{root}: layer file {rel!r} is not a regular file")
    try:
        with Image.open(file) as image:
            if image.size != size:  # before load(): the header alone may declare anything
                raise BadResult(
                    f"{file}: {image.width}x{image.height}, but the canvas is {size[0]}x{size[1]}"
                )
            image.load()
            if not icc and image.info.get("icc_profile"):
                icc.append(image.info["icc_profile"])
            return clear_transparent(to_rgba(image))
    except FileNotFoundError:
        raise BadResult(f"{root}: layer file {rel!r} is missing") from None
    except BadResult:
        raise
    except Exception as exc:  # Pillow raises many types on damaged files
        raise BadResult(f"{file}: not a readable PNG ({_short(exc)})") from None
