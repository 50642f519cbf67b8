"""SVG: each layer an ``<image>`` holding its PNG, for browsers, Figma and Inkscape.

The document has the canvas's ``width``/``height``/``viewBox`` (1 user unit = 1 px).
Each layer is an ``<image>`` at its alpha bounding box, with an embedded
``data:image/png;base64,`` PNG of exactly that size (so renderers draw it 1:1), bottom
first in document order; groups are ``<g>``; ``id``s are made safe and unique from the
names and ``inkscape:label`` keeps each exact name (Inkscape's Objects panel shows it);
a hidden layer gets ``display="none"``. Nothing is referenced outside the file, so it
opens offline. The provenance, and the marker by which layerctl knows its own SVGs, is
JSON in a ``<metadata layerctl:format="layerctl-svg">`` element (text, not a child
element: Inkscape warns about elements it does not know).

Reading takes back only such files: ``<image>`` and ``<g>`` elements, PNG data URIs
(never a file or URL), unscaled and untransformed; an ``opacity`` an editor set is folded
into the layer's alpha, as for PSD and ORA. Anything else is refused in one line:
layerctl does not render vector art. The file is written as a stream, one layer at a
time, so a big stack never sits in memory as one string.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from PIL import Image

from layerctl import __version__, budget
from layerctl.errors import BadResult
from layerctl.formats import canvas
from layerctl.formats.canvas import check_size, place, png_header_size, tile_png, with_opacity
from layerctl.formats.safexml import parse, xml_text
from layerctl.imageio import _short, to_rgba
from layerctl.outputs import json_text
from layerctl.stack import Layer, LayerStack

SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
INKSCAPE = "http://www.inkscape.org/namespaces/inkscape"
OURS = "urn:layerctl:svg:1"
FORMAT = "layerctl-svg"
VERSION = 1
DATA_URI = "data:image/png;base64,"
MAX_ID = 48  # characters of a layer name kept in its id
# SVG text, base64 PNGs included: the PNGs a stack within the pixel limits takes, as
# base64 (4/3), plus markup.
_MAX_BYTES_PER_PIXEL = 8
# Elements that draw nothing; anything else in the SVG namespace draws vector art.
_SILENT = {"metadata", "title", "desc"}
# Properties that would change how a layer draws beyond position, opacity and display.
_DRAWING = {"transform", "clip-path", "mask", "filter", "mix-blend-mode"}


def write(stack: LayerStack, path: Path) -> None:
    width, height = stack.size
    pnginfo = {"icc_profile": stack.icc_profile} if stack.icc_profile else {}
    head = {
        "format": FORMAT,
        "format_version": VERSION,
        "layerctl": __version__,
        "canvas": {"width": width, "height": height},
        "metadata": stack.metadata,
    }
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<svg xmlns="{SVG}" xmlns:xlink="{XLINK}" xmlns:inkscape="{INKSCAPE}" '
            f'xmlns:layerctl="{OURS}" version="1.1" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n'
            f'<metadata id="layerctl" layerctl:format="{FORMAT}">'
            f"{escape(xml_text(json_text(head, indent=None)))}</metadata>\n"
        )
        _write_layers(out, stack.layers, pnginfo, {"layerctl": 1}, 0)  # the metadata's id
        out.write("</svg>\n")


def _write_layers(
    out: TextIO, layers: list[Layer], pnginfo: dict[str, Any], ids: dict[str, int], depth: int
) -> None:
    for layer in layers:
        attrs = f"id={quoteattr(_unique_id(layer.name, ids))} "
        attrs += f"inkscape:label={quoteattr(xml_text(layer.name))}"
        if not layer.visible:
            attrs += ' display="none"'
        indent = "  " * (depth + 1)
        if layer.is_group:
            out.write(f"{indent}<g {attrs}>\n")
            _write_layers(out, layer.children, pnginfo, ids, depth + 1)
            out.write(f"{indent}</g>\n")
            continue
        left, top, w, h, png = tile_png(layer, pnginfo)
        out.write(
            f'{indent}<image {attrs} x="{left}" y="{top}" width="{w}" height="{h}" '
            f'preserveAspectRatio="none" xlink:href="{DATA_URI}'
        )
        out.write(base64.b64encode(png).decode("ascii"))
        out.write('"/>\n')


def _unique_id(name: str, taken: dict[str, int]) -> str:
    """An XML id from ``name``: ASCII letters, digits, ``-`` and ``_``, starting with a
    letter, unique in the document (``-2``, ``-3``, … on repeats). ``taken`` maps each id
    given to the last number tried after it, so 8000 equal names cost no quadratic search."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_name).strip("_")[:MAX_ID] or "layer"
    if not stem[0].isalpha():
        stem = f"layer_{stem}"
    found, number = stem, taken.get(stem, 1)
    while found in taken:
        number += 1
        found = f"{stem}-{number}"
    taken[stem] = number
    taken.setdefault(found, 1)
    return found


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    root, head = _load(path, max_memory)
    size = _canvas(head, path)
    nodes = sum(1 for node in root.iter() if node.tag in {f"{{{SVG}}}image", f"{{{SVG}}}g"})
    check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory)
    pngs = _Pictures(path, root)
    check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory, held=pngs.cost)
    icc: list[bytes] = []
    layers = _read_children(path, pngs, root, size, icc, 1.0)
    if not layers:
        raise BadResult(f"{path}: the SVG has no layers")
    metadata = head.get("metadata")
    return LayerStack(
        layers, metadata if isinstance(metadata, dict) else {}, icc[0] if icc else None
    )


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance, once the whole file is known to be well-formed XML (no PNG decoded)."""
    _, head = _load(path, None)
    metadata = head.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _load(path: Path, max_memory: int | None) -> tuple[ET.Element, dict[str, Any]]:
    """The parsed document and our head record; BadResult unless layerctl wrote it."""
    try:
        length = path.stat().st_size
    except OSError as exc:
        raise BadResult(f"{path}: unreadable ({_short(exc)})") from None
    limit = _MAX_BYTES_PER_PIXEL * canvas.MAX_STACK_PIXELS
    if length > limit:
        raise BadResult(
            f"{path}: {budget.human_bytes(length)}, over the {budget.human_bytes(limit)} "
            "an SVG result may take"
        )
    # The text, its parsed tree (holding the base64 strings) and one decoded PNG.
    budget.check(path, 3 * length, max_memory, "the SVG text ", BadResult)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadResult(f"{path}: unreadable ({_short(exc)})") from None
    root = parse(data, path)
    found = next(
        (m for m in root.findall(f"{{{SVG}}}metadata") if m.get(f"{{{OURS}}}format") == FORMAT),
        None,
    )
    if root.tag != f"{{{SVG}}}svg" or found is None:
        raise BadResult(
            f"{path}: not an SVG written by layerctl",
            hint="layerctl reads back its own layered SVGs; it does not render vector art",
        )
    try:
        head = json.loads(found.text or "")
    except ValueError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise BadResult(f"{path}: its layerctl record is damaged")
    version = head.get("format_version")
    if not isinstance(version, int) or version > VERSION:
        raise BadResult(
            f"{path}: format version {version!r} is newer than this layerctl reads",
            hint="upgrade layerctl",
        )
    return root, head


def _canvas(head: dict[str, Any], where: Path) -> tuple[int, int]:
    size = head.get("canvas")
    try:
        width, height = int(size["width"]), int(size["height"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError, OverflowError):
        raise BadResult(f"{where}: canvas size missing or not numbers") from None
    if width < 1 or height < 1:
        raise BadResult(f"{where}: no canvas")
    return width, height


class _Pictures:
    """Every ``<image>``'s PNG, checked from its header before any is decoded: PNG data
    URIs only, each within the canvas limit and all within the stack limit."""

    def __init__(self, where: Path, root: ET.Element) -> None:
        self.where = where
        decoded = largest = 0
        for node in root.iter(f"{{{SVG}}}image"):
            width, height = self._header(node)
            check_size(f"{where}: image {_label(node)!r}", width, height)
            decoded += width * height
            largest = max(largest, width * height)
        if decoded > canvas.MAX_STACK_PIXELS:
            raise BadResult(
                f"{where}: its layer PNGs decode to {budget.human_pixels(decoded)}, over the "
                f"{budget.human_pixels(canvas.MAX_STACK_PIXELS)} a result may hold"
            )
        self.cost = budget.DECODE.of(largest)

    def _href(self, node: ET.Element) -> str:
        """The base64 text of an image's PNG data URI, whitespace removed (editors wrap it)."""
        href = node.get(f"{{{XLINK}}}href", node.get("href", "")).strip()
        if not href.startswith(DATA_URI):
            shown = href[:40] + ("…" if len(href) > 40 else "")
            raise BadResult(
                f"{self.where}: image {_label(node)!r} points at {shown!r}",
                hint="only embedded data:image/png;base64 pictures are read, never files or URLs",
            )
        return re.sub(r"\s+", "", href[len(DATA_URI) :])

    def _header(self, node: ET.Element) -> tuple[int, int]:
        head = _decode(self._href(node)[:32], self.where, node)
        size = png_header_size(head)
        if size is None:
            raise BadResult(f"{self.where}: image {_label(node)!r} is not a PNG")
        return size

    def pixels(self, node: ET.Element) -> tuple[np.ndarray, bytes | None]:
        data = _decode(self._href(node), self.where, node)
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as png:
                png.load()
                return to_rgba(png), png.info.get("icc_profile")
        except Exception as exc:  # Pillow raises many types on damaged data
            raise BadResult(
                f"{self.where}: image {_label(node)!r} is not a readable PNG ({_short(exc)})"
            ) from None


def _decode(text: str, where: Path, node: ET.Element) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadResult(f"{where}: image {_label(node)!r} has damaged base64 data") from None


def _read_children(
    where: Path,
    pngs: _Pictures,
    parent: ET.Element,
    size: tuple[int, int],
    icc: list[bytes],
    opacity: float,
) -> list[Layer]:
    """The layers under ``parent``, bottom first (document order); ``opacity`` is the
    product of the enclosing groups' opacities."""
    layers = []
    for node in parent:
        kind = node.tag.rsplit("}", 1)[-1]
        if not node.tag.startswith(f"{{{SVG}}}") or kind in _SILENT:
            continue  # another program's own elements (sodipodi:namedview) draw nothing
        style = _style(node)
        drawing = _DRAWING & (set(node.attrib) | set(style))
        if kind not in {"image", "g"} or drawing:
            what = f"<{kind}>" if not drawing else f"{sorted(drawing)[0]} on {_label(node)!r}"
            raise BadResult(
                f"{where}: holds {what}, which layerctl cannot read back",
                hint="layerctl reads back its own layered SVGs; it does not render vector art",
            )
        alpha = opacity * _number(style.get("opacity", node.get("opacity", "1")), where, node)
        name = _label(node)
        if kind == "g":
            children = _read_children(where, pngs, node, size, icc, alpha)
            if children:
                layer = Layer.group(name, children)
            else:  # a group emptied in an editor
                layer = Layer(name, np.zeros((size[1], size[0], 4), np.uint8))
        else:
            pixels, profile = pngs.pixels(node)
            if not icc and profile:
                icc.append(profile)
            layer = Layer(name, with_opacity(_placed(where, node, size, pixels), alpha))
        display = style.get("display", node.get("display", "inline"))
        layer.visible = display.strip() != "none" and node.get("visibility") != "hidden"
        layers.append(layer)
    return layers


def _placed(where: Path, node: ET.Element, size: tuple[int, int], pixels: np.ndarray) -> Any:
    """``pixels`` on the canvas at the image's x, y; refused when drawn at another size."""
    height, width = pixels.shape[:2]
    shown = [_number(node.get(key, "0"), where, node) for key in ("width", "height")]
    if [round(value) for value in shown] != [width, height]:
        raise BadResult(
            f"{where}: image {_label(node)!r} is drawn at another size than its PNG "
            f"({width}x{height})",
            hint="layerctl reads pictures placed 1:1, as it writes them",
        )
    x, y = (round(_number(node.get(key, "0"), where, node)) for key in ("x", "y"))
    return place(size, x, y, pixels)


def _number(text: str, where: Path, node: ET.Element) -> float:
    try:
        value = float(text.strip().removesuffix("px"))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > 1e9:
        raise BadResult(f"{where}: {_label(node)!r} has a value that is not a number")
    return value


def _style(node: ET.Element) -> dict[str, str]:
    """The ``style`` attribute's declarations (Inkscape writes display and opacity there)."""
    found = {}
    for part in node.get("style", "").split(";"):
        key, _, value = part.partition(":")
        if key.strip():
            found[key.strip()] = value.strip()
    return found


def _label(node: ET.Element) -> str:
    """The layer's exact name (an empty one too), else its id."""
    return node.get(f"{{{INKSCAPE}}}label", node.get("id", ""))
