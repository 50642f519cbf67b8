"""OpenRaster (.ora), the open layered format of Krita, MyPaint and GIMP 3.

A zip whose first entry is ``mimetype`` (stored, uncompressed: ``image/openraster``),
then ``stack.xml``, one PNG per layer under ``data/`` cropped to its alpha bbox with
``x``/``y`` offsets, ``mergedimage.png`` and ``Thumbnails/thumbnail.png`` (at most
256 px). Spec: https://www.openraster.org/baseline/file-layout-spec.html. ORA lists
the stack TOP first; layerctl's bottom-first order is reversed on the way in and out.
Groups are nested ``<stack>`` elements. Control characters that XML cannot hold become
U+FFFD in layer names (PSD and PNG stacks keep every name exactly). Provenance
metadata goes into an extra entry, ``layerctl.json``, which other programs ignore.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layerctl import __version__, budget
from layerctl.console import counted
from layerctl.errors import BadResult
from layerctl.formats import canvas
from layerctl.formats.canvas import check_size, place, tile, with_opacity
from layerctl.imageio import _short, to_rgba
from layerctl.outputs import json_text
from layerctl.stack import Layer, LayerStack

MIMETYPE = b"image/openraster"
ORA_VERSION = "0.0.5"  # the latest published draft of the spec
METADATA = "layerctl.json"
THUMBNAIL_MAX = 256
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
MAX_TEXT_BYTES = 64 << 20  # stack.xml, mimetype and layerctl.json: far above any real one
# Characters XML 1.0 cannot hold even escaped (https://www.w3.org/TR/xml/#charsets).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def write(stack: LayerStack, path: Path) -> None:
    width, height = stack.size
    pnginfo = {"icc_profile": stack.icc_profile} if stack.icc_profile else {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_entry("mimetype", zipfile.ZIP_STORED), MIMETYPE)
        image = ET.Element("image", {"version": ORA_VERSION, "w": str(width), "h": str(height)})
        root = ET.SubElement(image, "stack")
        counter = iter(range(1 << 31))
        _add_layers(archive, root, stack.layers, counter, pnginfo)
        xml = ET.tostring(image, encoding="utf-8", xml_declaration=True)
        archive.writestr(_entry("stack.xml"), xml)
        merged = Image.fromarray(stack.composite(), "RGBA")
        archive.writestr(_entry("mergedimage.png"), _png(merged, pnginfo))
        merged.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX), Image.Resampling.LANCZOS)
        archive.writestr(_entry("Thumbnails/thumbnail.png"), _png(merged, {}))
        meta = {"layerctl": __version__, "metadata": stack.metadata}
        archive.writestr(_entry(METADATA), json_text(meta))


def _add_layers(
    archive: zipfile.ZipFile,
    parent: ET.Element,
    layers: list[Layer],
    counter: Any,
    pnginfo: dict[str, Any],
) -> None:
    """Add ``layers`` (bottom first) under ``parent`` in ORA's top-first order."""
    for layer in reversed(layers):
        attrs = {
            "name": _NOT_XML.sub("\ufffd", layer.name),
            "visibility": "visible" if layer.visible else "hidden",
            "opacity": "1.0",
            "composite-op": "svg:src-over",
        }
        if layer.is_group:
            # isolate: the children are composited first, as Layer.group does.
            node = ET.SubElement(parent, "stack", {**attrs, "isolation": "isolate"})
            _add_layers(archive, node, layer.children, counter, pnginfo)
            continue
        cropped = tile(layer)
        # ORA has no empty layer: a fully transparent one is stored as one clear pixel.
        left, top, pixels = cropped or (0, 0, np.zeros((1, 1, 4), np.uint8))
        src = f"data/layer{next(counter):04d}.png"
        archive.writestr(_entry(src), _png(Image.fromarray(pixels, "RGBA"), pnginfo))
        ET.SubElement(parent, "layer", {**attrs, "src": src, "x": str(left), "y": str(top)})


def _entry(name: str, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A member dated ZIP's epoch with fixed permissions: the same layers give the same
    bytes on any day (zip's default is the time of writing)."""
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = compression
    info.external_attr = 0o644 << 16
    return info


def _png(image: Image.Image, pnginfo: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **pnginfo)
    return buffer.getvalue()


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    try:
        with zipfile.ZipFile(path) as archive:
            if _member(archive, "mimetype", MAX_TEXT_BYTES).strip() != MIMETYPE:
                raise BadResult(f"{path}: not an OpenRaster file (wrong mimetype)")
            image = ET.fromstring(_member(archive, "stack.xml", MAX_TEXT_BYTES))
            size = (int(image.get("w", "0")), int(image.get("h", "0")))
            top = image.find("stack")
            if image.tag != "image" or top is None or size[0] < 1 or size[1] < 1:
                raise BadResult(f"{path}: stack.xml has no canvas size or no stack")
            nodes = len(top.findall(".//layer")) + len(top.findall(".//stack"))
            check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory)
            members = _Members(archive, top)
            budget.check(
                path,
                canvas.read_cost(size[0] * size[1], max(nodes, 1)) + members.cost,
                max_memory,
                f"{counted(nodes, 'layer')} of {budget.dimensions(*size)} ",
                BadResult,
            )
            icc: list[bytes] = []
            layers = _read_stack(members, top, size, icc)
            metadata = _metadata(archive)
    except (BadResult, RecursionError):  # formats.read names deep nesting
        raise
    except KeyError as exc:
        raise BadResult(f"{path}: damaged OpenRaster file ({exc.args[0]})") from None
    except Exception as exc:  # zipfile, expat and Pillow raise many types on damage
        raise BadResult(f"{path}: not a readable OpenRaster file ({_short(exc)})") from None
    if not layers:
        raise BadResult(f"{path}: the OpenRaster file has no layers")
    return LayerStack(layers, metadata, icc[0] if icc else None)


class _Members:
    """The layer PNGs ``stack.xml`` points at, sized from their headers before any is
    decoded: all references together decode to at most MAX_STACK_PIXELS, and one PNG
    referenced by several layers is decoded once (a 1x1 PNG behind 16 layers, or one
    big PNG behind thousands, costs one decode)."""

    def __init__(self, archive: zipfile.ZipFile, top: ET.Element) -> None:
        self.archive = archive
        self.references: dict[str, int] = {}
        for node in top.iter("layer"):
            src = node.get("src", "")
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
        _check_declared(self.archive, info, _png_limit())
        with self.archive.open(info) as stream, Image.open(stream) as png:
            check_size(f"{self.archive.filename}: {src}", *png.size)
            return png.size

    def pixels(self, src: str) -> tuple[np.ndarray, bytes | None]:
        """(RGBA pixels, ICC profile) of one member, decoded once if referenced again."""
        if src in self.decoded:
            return self.decoded[src]
        with Image.open(io.BytesIO(_member(self.archive, src, _png_limit()))) as png:
            png.load()
            found = (to_rgba(png), png.info.get("icc_profile"))
        if self.references[src] > 1:
            self.decoded[src] = found
        return found


def _read_stack(
    members: _Members, stack: ET.Element, size: tuple[int, int], icc: list[bytes]
) -> list[Layer]:
    """The bottom-first layers of one ``<stack>`` element."""
    layers = []
    for node in reversed(list(stack)):
        if node.tag not in {"layer", "stack"}:
            continue  # <text>, <filter>, … from other programs carry no pixels we read
        name = node.get("name", "")
        opacity = float(node.get("opacity", "1"))
        if node.tag == "stack":
            children = _read_stack(members, node, size, icc)
            if children:
                layer = Layer.group(name, children)
            else:  # an empty group from another program
                layer = Layer(name, np.zeros((size[1], size[0], 4), np.uint8))
        else:
            pixels, profile = members.pixels(node.get("src", ""))
            if not icc and profile:
                icc.append(profile)
            x, y = int(node.get("x", "0")), int(node.get("y", "0"))
            layer = Layer(name, with_opacity(place(size, x, y, pixels), opacity))
        layer.visible = node.get("visibility", "visible") != "hidden"
        layers.append(layer)
    return layers


def _member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """One entry's bytes, refused before inflating when it declares more than ``limit``.

    zipfile stops inflating at the declared size (and checks the CRC), so checking the
    declared size bounds the memory a zip bomb can take.
    """
    info = archive.getinfo(name)
    _check_declared(archive, info, limit)
    return archive.read(info)


def _check_declared(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> None:
    if info.file_size > limit:
        raise BadResult(
            f"{archive.filename}: {info.filename} unpacks to {budget.human_bytes(info.file_size)}, "
            f"over the {budget.human_bytes(limit)} limit"
        )


def _png_limit() -> int:
    """The most bytes a layer PNG within the canvas limit can take (RGBA + PNG overhead)."""
    return 5 * canvas.MAX_CANVAS_PIXELS + (1 << 20)


def _metadata(archive: zipfile.ZipFile) -> dict[str, Any]:
    """Our provenance, or {} for files written by other programs."""
    if METADATA not in archive.namelist():
        return {}
    value = json.loads(_member(archive, METADATA, MAX_TEXT_BYTES)).get("metadata")
    return value if isinstance(value, dict) else {}


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance, reading only the zip's directory, mimetype and layerctl.json (the
    directory is the last thing written, so a cut-off file has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if _member(archive, "mimetype", MAX_TEXT_BYTES).strip() != MIMETYPE:
                raise BadResult(f"{path}: not an OpenRaster file (wrong mimetype)")
            return _metadata(archive)
    except BadResult:
        raise
    except Exception as exc:  # zipfile raises many types on damage
        raise BadResult(f"{path}: not a readable OpenRaster file ({_short(exc)})") from None
