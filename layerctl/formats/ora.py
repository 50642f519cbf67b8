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

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layerctl import __version__
from layerctl.errors import BadResult
from layerctl.formats.canvas import check_size, place, png_bytes, tile_png, with_opacity
from layerctl.formats.safexml import parse, xml_text
from layerctl.formats.zipped import Members, entry, member
from layerctl.imageio import _short
from layerctl.outputs import json_text
from layerctl.stack import Layer, LayerStack

MIMETYPE = b"image/openraster"
ORA_VERSION = "0.0.5"  # the latest published draft of the spec
METADATA = "layerctl.json"
THUMBNAIL_MAX = 256


def write(stack: LayerStack, path: Path) -> None:
    width, height = stack.size
    pnginfo = {"icc_profile": stack.icc_profile} if stack.icc_profile else {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(entry("mimetype", zipfile.ZIP_STORED), MIMETYPE)
        image = ET.Element("image", {"version": ORA_VERSION, "w": str(width), "h": str(height)})
        root = ET.SubElement(image, "stack")
        counter = iter(range(1 << 31))
        _add_layers(archive, root, stack.layers, counter, pnginfo)
        xml = ET.tostring(image, encoding="utf-8", xml_declaration=True)
        archive.writestr(entry("stack.xml"), xml)
        merged = Image.fromarray(stack.composite(), "RGBA")
        archive.writestr(entry("mergedimage.png"), png_bytes(merged, pnginfo))
        merged.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX), Image.Resampling.LANCZOS)
        archive.writestr(entry("Thumbnails/thumbnail.png"), png_bytes(merged, {}))
        meta = {"layerctl": __version__, "metadata": stack.metadata}
        archive.writestr(entry(METADATA), json_text(meta))


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
            "name": xml_text(layer.name),
            "visibility": "visible" if layer.visible else "hidden",
            "opacity": "1.0",
            "composite-op": "svg:src-over",
        }
        if layer.is_group:
            # isolate: the children are composited first, as Layer.group does.
            node = ET.SubElement(parent, "stack", {**attrs, "isolation": "isolate"})
            _add_layers(archive, node, layer.children, counter, pnginfo)
            continue
        # ORA has no empty layer: a fully transparent one is stored as one clear pixel.
        left, top, _, _, png = tile_png(layer, pnginfo)
        src = f"data/layer{next(counter):04d}.png"
        archive.writestr(entry(src), png)
        ET.SubElement(parent, "layer", {**attrs, "src": src, "x": str(left), "y": str(top)})


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    try:
        with zipfile.ZipFile(path) as archive:
            if member(archive, "mimetype").strip() != MIMETYPE:
                raise BadResult(f"{path}: not an OpenRaster file (wrong mimetype)")
            image = parse(member(archive, "stack.xml"), f"{path}: stack.xml")
            size = (int(image.get("w", "0")), int(image.get("h", "0")))
            top = image.find("stack")
            if image.tag != "image" or top is None or size[0] < 1 or size[1] < 1:
                raise BadResult(f"{path}: stack.xml has no canvas size or no stack")
            nodes = len(top.findall(".//layer")) + len(top.findall(".//stack"))
            check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory)
            members = Members(archive, (node.get("src", "") for node in top.iter("layer")))
            check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory, held=members.cost)
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


def _read_stack(
    members: Members, stack: ET.Element, size: tuple[int, int], icc: list[bytes]
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


def _metadata(archive: zipfile.ZipFile) -> dict[str, Any]:
    """Our provenance, or {} for files written by other programs."""
    if METADATA not in archive.namelist():
        return {}
    value = json.loads(member(archive, METADATA)).get("metadata")
    return value if isinstance(value, dict) else {}


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance, reading only the zip's directory, mimetype and layerctl.json (the
    directory is the last thing written, so a cut-off file has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if member(archive, "mimetype").strip() != MIMETYPE:
                raise BadResult(f"{path}: not an OpenRaster file (wrong mimetype)")
            return _metadata(archive)
    except BadResult:
        raise
    except Exception as exc:  # zipfile raises many types on damage
        raise BadResult(f"{path}: not a readable OpenRaster file ({_short(exc)})") from None
