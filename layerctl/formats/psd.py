"""PSD via psd-tools: an RGBA document, one RLE pixel layer per layer, groups as folders.

Layers are cropped to their alpha bbox with offsets (PSD's own model); a fully
transparent layer is written as a 0×0 layer so its name and place survive; names are
cut at Photoshop's 255 characters. The merged image carries real alpha (psd-tools
writes an all-zero alpha unless ``_merged_alpha`` is set before layers are added), so
readers of the merged image alone (Pillow, ImageMagick's ``[0]``) see the composite;
it is RLE-compressed like the layers (psd-tools' default for it is raw). As Photoshop
does, the merged colour is stored matted over white where the composite is
translucent; ImageMagick un-mattes it (its ``psd:alpha-unblend`` default), Pillow does
not. ``.psb`` names get a real PSB (version 2), the large-document format.

Provenance goes into a plug-in image resource of its own (ID 4000, named
``layerctl``) as JSON; the XMP packet holds only standard properties (CreatorTool):
GIMP, through exiv2, warns "No namespace info available for XMP prefix" on every file
whose XMP uses a namespace exiv2 does not ship, however it is declared. Results of
older versions, with the JSON in XMP, are still read. The ICC resource carries the
input's profile only when it is an RGB one.
"""

from __future__ import annotations

import json
import os
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from layerctl import __version__, budget
from layerctl.budget import human_pixels
from layerctl.errors import BadResult, OutputError
from layerctl.formats import canvas
from layerctl.formats.canvas import check_size, place, tile, with_opacity
from layerctl.imageio import _short, open_psd, to_rgba
from layerctl.outputs import json_text, readable
from layerctl.stack import Layer, LayerStack

XMP_NS = "urn:layerctl:xmp:1.0/"  # where earlier results kept the provenance JSON
PROVENANCE_RESOURCE = 4000  # the first plug-in image resource ID (Adobe's spec)
PROVENANCE_NAME = "layerctl"  # the resource's Pascal name: ours, not another plug-in's
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_XMP = "http://ns.adobe.com/xap/1.0/"
# Photoshop's limits per side: PSD (version 1) and PSB (version 2, "large document").
MAX_SIDE = 30_000
MAX_SIDE_PSB = 300_000
MAX_NAME = 255  # Photoshop's (and psd-tools') limit on a layer name
_XMP_RESOURCE = 1060  # psd_tools.constants.Resource.XMP_METADATA
_XPACKET_ID = "W5M0MpCehiHzreSzNTczkc9d"  # the fixed id XMP spec part 1, 7.3.2 requires


def write(stack: LayerStack, path: Path, big: bool = False) -> None:
    """Write a PSD, or a PSB (version 2) when ``big``."""
    from psd_tools import PSDImage
    from psd_tools.constants import Compression, Resource
    from psd_tools.psd.image_resources import ImageResource

    check_canvas(stack.size, big)
    psd = PSDImage.new("RGBA", stack.size, color=(0, 0, 0, 0), compression=Compression.RLE)
    psd._record.header.version = 2 if big else 1  # psd-tools picks by size alone
    psd._merged_alpha = True  # must precede the first layer, see module docstring
    _add_layers(psd, stack.layers)
    resources = psd.image_resources
    resources[Resource.XMP_METADATA] = ImageResource(key=Resource.XMP_METADATA, data=_xmp())
    resources[PROVENANCE_RESOURCE] = ImageResource(
        key=PROVENANCE_RESOURCE,
        name=PROVENANCE_NAME,
        data=json_text(stack.metadata, indent=None).encode(),
    )
    if stack.icc_profile:
        resources[Resource.ICC_PROFILE] = ImageResource(
            key=Resource.ICC_PROFILE, data=stack.icc_profile
        )
    _set_merged_image(psd, stack.composite())
    psd.save(path)


def check_canvas(size: tuple[int, int], big: bool) -> None:
    """OutputError unless a ``size`` canvas fits a PSD (or a PSB when ``big``)."""
    width, height = size
    limit = MAX_SIDE_PSB if big else MAX_SIDE
    if max(width, height) > limit:
        kind, hint = (
            ("PSB", "write .ora or a PNG-stack folder instead")
            if big
            else ("PSD", "name the output .psb, or write .ora or a PNG-stack folder")
        )
        raise OutputError(
            f"a {kind} holds at most {limit} px a side; this canvas is "
            f"{budget.dimensions(width, height)}",
            hint=hint,
        )


def _set_merged_image(psd: Any, merged: np.ndarray) -> None:
    """Store our composite as the merged image (psd-tools mats it over white, as Photoshop).

    psd-tools would re-render it on save() with its general compositor, ~10× slower
    than ours (and importing SciPy); clearing its "edited" flag keeps ours.
    """
    from psd_tools.api.numpy_io import encode_image_data

    alpha = merged[..., 3:].astype(np.float32) / 255.0
    color = merged[..., :3].astype(np.float32) / 255.0  # encode_image_data mats it over white
    record = psd._record
    record.image_data.set_data(encode_image_data(psd, color, alpha), record.header)
    psd._updated = False


def _add_layers(parent: Any, layers: list[Layer]) -> None:
    """Append ``layers`` bottom first under ``parent`` (the document or a group)."""
    from psd_tools.constants import BlendMode, Compression

    for layer in layers:
        if layer.is_group:
            # NORMAL (isolated) matches Layer.group: the children are composited first.
            node = parent.create_group(name="Group", blend_mode=BlendMode.NORMAL)
            _add_layers(node, layer.children)
        else:
            cropped = tile(layer)
            left, top, pixels = cropped if cropped else (0, 0, None)
            image = (
                Image.fromarray(pixels, "RGBA") if pixels is not None else Image.new("RGBA", (0, 0))
            )
            node = parent.create_pixel_layer(
                image, name="Layer", left=left, top=top, compression=Compression.RLE
            )
        # Set after creation: a non-MacRoman name given at creation crashes save(),
        # while the setter also writes the Unicode name block (checked with psd-tools 1.26).
        node.name = readable(layer.name)[:MAX_NAME]
        node.visible = layer.visible


def _xmp() -> bytes:
    """An XMP packet with standard properties only (see the module docstring)."""
    ET.register_namespace("x", "adobe:ns:meta/")
    ET.register_namespace("rdf", _RDF)
    ET.register_namespace("xmp", _XMP)
    root = ET.Element("{adobe:ns:meta/}xmpmeta")
    rdf = ET.SubElement(root, f"{{{_RDF}}}RDF")
    desc = ET.SubElement(rdf, f"{{{_RDF}}}Description", {f"{{{_RDF}}}about": ""})
    ET.SubElement(desc, f"{{{_XMP}}}CreatorTool").text = f"layerctl {__version__}"
    body = ET.tostring(root, encoding="unicode")
    return f'<?xpacket begin="\ufeff" id="{_XPACKET_ID}"?>{body}<?xpacket end="w"?>'.encode()


def _metadata(provenance: bytes | None, xmp: bytes | None) -> dict[str, Any]:
    """Our provenance from its resource, else from the XMP packet of an older result;
    {} when absent or written by someone else."""
    try:
        if provenance:
            value = json.loads(provenance.decode("utf-8", "replace"))
        elif xmp:
            packet = xmp.decode("utf-8", "replace").split("?>", 1)[-1].rsplit("<?", 1)[0]
            found = ET.fromstring(packet).find(f".//{{{XMP_NS}}}provenance")
            value = json.loads(found.text) if found is not None and found.text else {}
        else:
            return {}
    except (ET.ParseError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    from psd_tools.constants import Resource

    try:
        psd = open_psd(path.read_bytes())
        size = psd.size
        _check_sizes(path, psd, max_memory)
        layers = [_read_layer(node, size) for node in psd]
        resources = psd.image_resources
        xmp = resources.get_data(Resource.XMP_METADATA)
        icc = resources.get_data(Resource.ICC_PROFILE)
        ours = resources.get(PROVENANCE_RESOURCE)
        provenance = ours.data if ours is not None and ours.name == PROVENANCE_NAME else None
    except (BadResult, RecursionError):  # formats.read names deep nesting
        raise
    except Exception as exc:  # psd-tools raises many types on damaged or foreign files
        raise BadResult(f"{path}: not a readable PSD ({_short(exc)})") from None
    if not layers:
        raise BadResult(f"{path}: the PSD has no layers", hint="it is a flat image, not a result")
    return LayerStack(layers, _metadata(provenance, xmp), bytes(icc) if icc else None)


def _check_sizes(path: Path, psd: Any, max_memory: int | None) -> None:
    """The canvas, the layer count and every layer's own rectangle, and all of them
    together, before decoding any."""
    nodes = list(psd.descendants())
    check_size(path, *psd.size, layers=len(nodes), max_memory=max_memory)
    decoded = 0
    for index, node in enumerate(nodes):
        if node.kind == "pixel":
            width, height = max(node.width, 1), max(node.height, 1)
            check_size(f"{path}: layer {index}", width, height)
            decoded += width * height
    if decoded > canvas.MAX_STACK_PIXELS:
        raise BadResult(
            f"{path}: its layers decode to {human_pixels(decoded)}, over the "
            f"{human_pixels(canvas.MAX_STACK_PIXELS)} a result may hold"
        )


def _read_layer(node: Any, size: tuple[int, int]) -> Layer:
    """One psd-tools layer as a full-canvas Layer; groups keep their children."""
    width, height = size
    name = node.name.rstrip("\x00")  # Krita ends Unicode names with a NUL
    children = [_read_layer(child, size) for child in node] if node.is_group() else []
    if children:
        layer = Layer.group(name, children)
    elif node.is_group():  # an empty folder from another program
        layer = Layer(name, np.zeros((height, width, 4), np.uint8))
    else:
        if node.kind == "pixel":
            image = node.topil(apply_icc=False)
            left, top = node.left, node.top
        else:  # type, shape, smart object, …: let psd-tools render it on the canvas
            image = node.composite(viewport=(0, 0, width, height), apply_icc=False)
            left, top = 0, 0
        if image is None or not (image.width and image.height):
            pixels = np.zeros((height, width, 4), np.uint8)
        else:
            pixels = place(size, left, top, to_rgba(image))
        layer = Layer(name, with_opacity(pixels, node.opacity / 255))
    layer.visible = bool(node.visible)
    return layer


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance from the header alone, once the file is known to be whole: every
    section's length and the merged image fit the file. No layer is decoded.

    Layout: Adobe's "Photoshop File Formats Specification", sections in file order.
    """
    try:
        with path.open("rb") as f:
            end = os.fstat(f.fileno()).st_size
            header = f.read(26)
            if len(header) < 26 or header[:4] != b"8BPS" or header[4:6] not in {b"\0\1", b"\0\2"}:
                raise BadResult(f"{path}: not a PSD")
            psb = header[5] == 2
            channels, height, width, depth = struct.unpack(">H2IH", header[12:24])
            _skip(f, _number(f, 4), end)  # colour mode data
            found = _resources(f, _number(f, 4), end)
            _skip(f, _number(f, 8 if psb else 4), end)  # layer and mask information
            compression = _number(f, 2)
            if compression == 0:  # raw
                need = channels * height * width * max(depth // 8, 1)
            elif compression == 1:  # RLE: a byte count per row and channel, then the rows
                width_of_count = 4 if psb else 2
                table = channels * height * width_of_count
                _skip(f, 0, end, table)
                counts = f.read(table)
                need = sum(struct.unpack(f">{channels * height}{'I' if psb else 'H'}", counts))
            else:
                need = 0
            _skip(f, 0, end, need)
    except (OSError, struct.error) as exc:
        raise BadResult(f"{path}: not a whole PSD ({_short(exc)})") from None
    return _metadata(found.get((PROVENANCE_RESOURCE, PROVENANCE_NAME)), found.get(_XMP_RESOURCE))


def _number(f: Any, size: int) -> int:
    data = f.read(size)
    if len(data) != size:
        raise struct.error("truncated")
    return int.from_bytes(data, "big")


def _skip(f: Any, length: int, end: int, then: int = 0) -> None:
    """Seek ``length`` bytes on, failing when it, plus ``then`` more, passes the end."""
    if f.tell() + length + then > end:
        raise struct.error("truncated")
    f.seek(length, os.SEEK_CUR)


def _resources(f: Any, length: int, end: int) -> dict[Any, bytes]:
    """Our provenance, as ``{(ID, name): data}``, and the XMP packet, as ``{ID: data}``,
    among the image resources of ``length`` bytes that start here."""
    stop = f.tell() + length
    if stop > end:
        raise struct.error("truncated")
    found: dict[Any, bytes] = {}
    while f.tell() + 12 <= stop:
        f.read(4)  # "8BIM"
        key = _number(f, 2)
        size = _number(f, 1)
        name = f.read(size).decode("mac_roman")
        f.seek((size + 1) % 2, os.SEEK_CUR)  # a Pascal string padded to even
        size = _number(f, 4)
        start = f.tell()
        if key in {_XMP_RESOURCE, PROVENANCE_RESOURCE} and start + size <= stop:
            found[key if key == _XMP_RESOURCE else (key, name)] = f.read(size)
        f.seek(start + size + size % 2)
    f.seek(stop)
    return found
