"""Zip containers (OpenRaster, PPTX): members written the same on any day, and read
back only after what they declare is checked, so a zip bomb costs nothing.

zipfile stops inflating a member at its declared size (and checks the CRC), so refusing
declared sizes over a limit bounds the memory one member can take; the layer PNGs a
file points at are sized from their headers, all of them together, before any is
decoded (:class:`Members`).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable

import numpy as np
from PIL import Image

from layerctl import budget
from layerctl.errors import BadResult
from layerctl.formats import canvas
from layerctl.formats.canvas import check_size, png_header_size
from layerctl.imageio import to_rgba

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
MAX_TEXT_BYTES = 64 << 20  # an XML or JSON member: far above any real one
# A member over 1 MiB that inflates over 1000x is a bomb: deflate's limit is 1032:1,
# reached only by a run of one repeated byte; PNGs barely deflate again, and XML with
# 100 000 identical layer elements deflates 340x. (The declared-size limit is what
# bounds memory; this names the bomb as one.)
MAX_RATIO = 1000
_RATIO_FROM = 1 << 20


def entry(name: str, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A member dated ZIP's epoch with fixed permissions: the same layers give the same
    bytes on any day (zip's default is the time of writing)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    return info


def member(archive: zipfile.ZipFile, name: str, limit: int = MAX_TEXT_BYTES) -> bytes:
    """One entry's bytes, refused before inflating when it declares more than ``limit``
    or an implausible compression ratio."""
    info = archive.getinfo(name)
    check_declared(archive, info, limit)
    return archive.read(info)


def check_declared(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> None:
    if info.file_size > limit:
        raise BadResult(
            f"{archive.filename}: {info.filename} unpacks to {budget.human_bytes(info.file_size)}, "
            f"over the {budget.human_bytes(limit)} limit"
        )
    ratio = info.file_size // max(info.compress_size, 1)
    if info.file_size > _RATIO_FROM and ratio > MAX_RATIO:
        raise BadResult(
            f"{archive.filename}: {info.filename} unpacks to {ratio} times its packed size, "
            f"over the {MAX_RATIO}x a real file has (a zip bomb?)"
        )


def png_limit() -> int:
    """The most bytes a layer PNG within the canvas limit can take (RGBA + PNG overhead)."""
    return 5 * canvas.MAX_CANVAS_PIXELS + (1 << 20)


class Members:
    """The layer PNGs a file points at, sized from their headers before any is
    decoded: all references together decode to at most MAX_STACK_PIXELS, and one PNG
    referenced by several layers is decoded once (a 1x1 PNG behind 16 layers, or one
    big PNG behind thousands, costs one decode)."""

    def __init__(self, archive: zipfile.ZipFile, sources: Iterable[str]) -> None:
        self.archive = archive
        self.references: dict[str, int] = {}
        for src in sources:
            self.references[src] = self.references.get(src, 0) + 1
        self.sizes = {src: self._header(src) for src in self.references}
        decoded = sum(w * h for w, h in self.sizes.values())
        if decoded > canvas.MAX_STACK_PIXELS:
            raise BadResult(
                f"{archive.filename}: its layer PNGs decode to "
                f"{budget.human_pixels(decoded)}, over the "
                f"{budget.human_pixels(canvas.MAX_STACK_PIXELS)} a result may hold"
            )
        repeated = sum(w * h for src, (w, h) in self.sizes.items() if self.references[src] > 1)
        largest = max((w * h for w, h in self.sizes.values()), default=0)
        # Kept: the repeated ones (RGBA); passing: the largest one while it is decoded.
        self.cost = 4 * repeated + budget.DECODE.of(largest)
        self.decoded: dict[str, tuple[np.ndarray, bytes | None]] = {}

    def _header(self, src: str) -> tuple[int, int]:
        """A member's size from its PNG header alone (streamed: nothing else is inflated),
        checked before it is decoded (data shorter than the header says fails the decode)."""
        info = self.archive.getinfo(src)
        check_declared(self.archive, info, png_limit())
        with self.archive.open(info) as stream:
            size = png_header_size(stream.read(24))
        if size is None:  # another image format, in a file from another program
            with self.archive.open(info) as stream, Image.open(stream) as image:
                size = image.size
        check_size(f"{self.archive.filename}: {src}", *size)
        return size

    def pixels(self, src: str) -> tuple[np.ndarray, bytes | None]:
        """(RGBA pixels, ICC profile) of one member, decoded once if referenced again."""
        if src in self.decoded:
            return self.decoded[src]
        with Image.open(io.BytesIO(member(self.archive, src, png_limit()))) as png:
            png.load()
            found = (to_rgba(png), png.info.get("icc_profile"))
        if self.references[src] > 1:
            self.decoded[src] = found
        return found
