"""Result formats: PSD, OpenRaster, PNG stack, PPTX and SVG, by output suffix or --format.

Each module provides ``write(stack, path)`` (path is a fresh temporary the caller
renames into place) and ``read(path) -> LayerStack``. What a file records is shareable:
the source's path is relative to the working folder when the input lies below it, else
its name alone (never an absolute path), and an ICC profile travels only when it
describes RGB, as every layer does.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from layerctl.errors import BadResult, UsageError
from layerctl.imageio import quiet_decoders
from layerctl.outputs import atomic_output
from layerctl.stack import LayerStack

# --format name -> module
FORMATS = {"psd": "psd", "ora": "ora", "png": "pngstack", "pptx": "pptx", "svg": "svg"}
SUFFIXES = {".psd": "psd", ".psb": "psd", ".ora": "ora", ".pptx": "pptx", ".svg": "svg", "": "png"}
FILE_SUFFIXES = frozenset(suffix for suffix in SUFFIXES if suffix)  # results that are files


def format_for(path: Path, fmt: str | None = None) -> str:
    """The format name for writing ``path``: ``fmt`` if given, else by suffix."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}", hint=f"choose from {', '.join(FORMATS)}")
        named = SUFFIXES.get(path.suffix.lower()) if path.name else None
        if named is not None and named != fmt:  # a file no reader would take for what it is
            wanted = "a folder name (no suffix)" if fmt == "png" else f"a .{fmt} name"
            raise UsageError(
                f"{path}: --format {fmt} does not match the name's suffix",
                hint=f"give {wanted}, or leave --format out",
            )
        return fmt
    suffix = path.suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    if suffix == ".png":
        raise UsageError(
            f"{path}: a .png output would hold one flat image, not layers",
            hint="use a folder name (no suffix) for a PNG stack, .psd, .ora, .pptx or .svg",
        )
    raise UsageError(
        f"{path}: unknown output suffix {suffix!r}", hint="use .psd, .ora, .pptx, .svg or a folder"
    )


def detect(path: Path) -> str:
    """The format of an existing result on disk."""
    if path.is_dir():
        return "png"
    suffix = path.suffix.lower()
    if suffix in SUFFIXES and suffix:
        return SUFFIXES[suffix]
    raise BadResult(f"{path}: not a PSD, OpenRaster, PPTX or SVG file or a PNG-stack folder")


def read_metadata(path: Path, fmt: str | None = None) -> dict[str, Any]:
    """A result's recorded metadata from its header or manifest alone, after checking it is
    whole; BadResult when ``path`` is not a whole result in format ``fmt`` (default: by
    suffix)."""
    if not (path.is_file() or path.is_dir()):
        raise BadResult(f"{path}: not a regular file or folder")
    return module(fmt or detect(path)).read_metadata(path)


def module(fmt: str) -> ModuleType:
    return importlib.import_module(f"layerctl.formats.{FORMATS[fmt]}")


def write(
    stack: LayerStack,
    path: Path,
    fmt: str | None = None,
    force: bool = False,
    inputs: Sequence[Path] = (),
) -> Path:
    """Write ``stack`` to ``path`` atomically; refuse to overwrite without ``force``, and
    to replace what layerctl did not write or what is or holds one of ``inputs``."""
    fmt = format_for(path, fmt)
    check_canvas(path, fmt, stack.size)
    extra = {"big": True} if _is_psb(path, fmt) else {}
    with atomic_output(path, force=force, inputs=inputs) as tmp:
        module(fmt).write(shareable(stack), tmp, **extra)
    return path


def check_canvas(path: Path, fmt: str | None, size: tuple[int, int]) -> None:
    """OutputError when a ``size`` canvas cannot be written to ``path``: a PSD holds
    30 000 px a side, a PSB 300 000. Called before decomposing, so no work is lost."""
    fmt = format_for(path, fmt)
    if fmt == "psd":
        from layerctl.formats import psd

        psd.check_canvas(size, _is_psb(path, fmt))
    elif fmt == "pptx":
        from layerctl.formats import pptx

        pptx.check_canvas(size)


def losses(stack: LayerStack, fmt: str) -> list[str]:
    """One line for each thing in ``stack`` that format ``fmt`` cannot hold as it is:
    names PSD cuts at 255 characters, characters XML (ORA, PPTX, SVG) cannot hold.
    Everything else (order, groups, visibility, provenance, profile) every format keeps."""
    from layerctl.budget import short_text
    from layerctl.formats.psd import MAX_NAME
    from layerctl.formats.safexml import NOT_XML
    from layerctl.outputs import readable

    found = []
    for layer in stack.walk():
        shown = short_text(readable(layer.name))
        if fmt == "psd" and len(readable(layer.name)) > MAX_NAME:
            found.append(f"layer name {shown!r} is cut to {MAX_NAME} characters (PSD's limit)")
        elif fmt in {"ora", "pptx", "svg"} and NOT_XML.search(layer.name):
            found.append(
                f"layer name {shown!r}: {fmt.upper()} cannot hold its control characters "
                "(they become U+FFFD)"
            )
    return found


def _is_psb(path: Path, fmt: str) -> bool:
    return fmt == "psd" and path.suffix.lower() == ".psb"


def shareable(stack: LayerStack) -> LayerStack:
    """``stack`` as a file records it: no absolute source path, no non-RGB profile."""
    from layerctl.imageio import rgb_profile

    metadata = dict(stack.metadata)
    source = metadata.get("source")
    if isinstance(source, dict) and isinstance(source.get("path"), str):
        metadata["source"] = {**source, "path": recorded_path(source["path"])}
    return dataclasses.replace(stack, metadata=metadata, icc_profile=rgb_profile(stack.icc_profile))


def recorded_path(path: str) -> str:
    """``path`` relative to the working folder when below it, else its file name."""
    if not os.path.isabs(path):
        parts = Path(path).parts
        return path if ".." not in parts else Path(path).name
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return Path(path).name


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    """The result at ``path``, refused before decoding when it cannot fit the memory plan
    (layerctl.budget; ``max_memory`` bytes at most) or the readers' budgets (canvas.py)."""
    if not path.exists():
        raise BadResult(f"{path}: no such file or folder")
    if not (path.is_file() or path.is_dir()):  # a FIFO would block the read forever
        raise BadResult(f"{path}: not a regular file or folder")
    quiet_decoders()
    try:
        return module(detect(path)).read(path, max_memory)
    except RecursionError:  # psd-tools needs ~10 frames a level: about 90 levels fit
        raise BadResult(f"{path}: layer groups are nested too deep to read") from None
