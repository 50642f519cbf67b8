"""PowerPoint (.pptx): one slide the size of the image, each layer a picture on it.

Written with python-pptx (the ``pptx`` extra): a blank slide of the canvas's size; each
layer a picture of its alpha bounding box, placed there, bottom first (z-order), named
after the layer; groups are PowerPoint group shapes; a hidden layer's shape carries
``hidden="1"``, as PowerPoint's Selection Pane writes it; the package thumbnail
(``docProps/thumbnail.jpeg``) is the composite. Layer opacity is already in each
picture's alpha (layerctl folds opacity into alpha when it reads any format), which
PowerPoint and Impress draw as is. A pixel is 9525 EMU (96 dpi), scaled when the
canvas would not fit PowerPoint's slide limits (1 to 56 inches a side).

The provenance, and the marker by which layerctl knows its own PPTX, is JSON in a
custom document property named ``layerctl`` (``docProps/custom.xml``; PowerPoint shows
it under File > Properties > Custom and keeps it on save).

Reading needs no extra: the zip is read directly, every declared size checked before
anything is inflated (formats/zipped.py), XML parsed without a DTD (safexml.py). Only
pictures and groups, placed 1:1, are taken back; any other shape is refused in one
line, as layerctl does not render slides.
"""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from layerctl import __version__, budget
from layerctl.budget import short_text
from layerctl.errors import BadResult, OutputError
from layerctl.formats.canvas import check_size, place, tile_png, with_opacity
from layerctl.formats.safexml import parse, xml_text
from layerctl.formats.zipped import Members, member
from layerctl.imageio import _short
from layerctl.outputs import json_text
from layerctl.stack import Layer, LayerStack

FORMAT = "layerctl-pptx"
VERSION = 1
PROPERTY = "layerctl"  # the custom document property holding our record
EMU_PER_PX = 9525  # 914400 EMU an inch at 96 px an inch
MIN_SLIDE, MAX_SLIDE = 914_400, 51_206_400  # 1 and 56 inches (ECMA-376 ST_SlideSizeCoordinate)
THUMBNAIL_MAX = 256
_CUSTOM = "docProps/custom.xml"
_FMTID = "{D5CDD505-2E9C-101B-9397-08002B2CF9AE}"  # the fmtid of user-defined properties
_NS = {
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "rel": "http://schemas.openxmlformats.org/package/2006/relationships",
    "cp": "http://schemas.openxmlformats.org/officeDocument/2006/custom-properties",
    "vt": "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes",
}
_HINT = "layerctl reads back its own PPTX slides; it does not render presentations"


def scale(size: tuple[int, int]) -> int:
    """EMU per pixel: 96 dpi when the slide then fits PowerPoint's limits, else the
    nearest scale that fits; OutputError when no scale does (over 56:1)."""
    low = -(-MIN_SLIDE // min(size))
    high = MAX_SLIDE // max(size)
    if low > high:
        raise OutputError(
            f"a PowerPoint slide cannot have the shape of a {budget.dimensions(*size)} canvas "
            "(its sides must be 1 to 56 inches)",
            hint="write .svg, .psd, .ora or a PNG-stack folder instead",
        )
    return min(max(EMU_PER_PX, low), high)


def check_canvas(size: tuple[int, int]) -> None:
    """OutputError unless a ``size`` canvas fits a slide and python-pptx is installed:
    checked before decomposing, so no work is lost."""
    import importlib.util

    if importlib.util.find_spec("pptx") is None:
        raise OutputError("writing PPTX needs python-pptx", hint="pip install 'layerctl[pptx]'")
    scale(size)


def write(stack: LayerStack, path: Path) -> None:
    check_canvas(stack.size)
    from pptx import Presentation
    from pptx.opc.constants import CONTENT_TYPE, RELATIONSHIP_TYPE
    from pptx.opc.package import Part
    from pptx.opc.packuri import PackURI

    width, height = stack.size
    emu = scale(stack.size)
    pnginfo = {"icc_profile": stack.icc_profile} if stack.icc_profile else {}
    deck = Presentation()
    deck.slide_width, deck.slide_height = width * emu, height * emu
    blank = next(layout for layout in deck.slide_layouts if layout.name == "Blank")
    slide = deck.slides.add_slide(blank)
    _add_layers(slide.shapes, stack.layers, emu, pnginfo)
    deck.core_properties.author = deck.core_properties.last_modified_by = "layerctl"
    source = stack.metadata.get("source")
    title = source.get("path", "") if isinstance(source, dict) else ""
    deck.core_properties.title = xml_text(str(title))[:255]  # python-pptx's limit
    package = deck.part.package
    record = {
        "format": FORMAT,
        "format_version": VERSION,
        "layerctl": __version__,
        "canvas": {"width": width, "height": height},
        "metadata": stack.metadata,
    }
    custom = Part(
        PackURI(f"/{_CUSTOM}"), CONTENT_TYPE.OFC_CUSTOM_PROPERTIES, package, _custom(record)
    )
    package.relate_to(custom, RELATIONSHIP_TYPE.CUSTOM_PROPERTIES)
    thumbnail = next(p for p in package.iter_parts() if p.partname == "/docProps/thumbnail.jpeg")
    thumbnail.blob = _thumbnail(stack.composite())
    deck.save(str(path))


def _add_layers(shapes: Any, layers: list[Layer], emu: int, pnginfo: dict[str, Any]) -> None:
    """Add ``layers`` bottom first (later shapes draw on top)."""
    for layer in layers:
        if layer.is_group:
            shape = shapes.add_group_shape()
            _add_layers(shape.shapes, layer.children, emu, pnginfo)
        else:
            left, top, w, h, png = tile_png(layer, pnginfo)
            shape = shapes.add_picture(io.BytesIO(png), left * emu, top * emu, w * emu, h * emu)
        shape.name = xml_text(layer.name)
        if not layer.visible:
            shape._element._nvXxPr.cNvPr.set("hidden", "1")  # python-pptx has no API for it


def _custom(record: dict[str, Any]) -> bytes:
    """docProps/custom.xml with our record as one text property (ECMA-376 part 1, 22.3)."""
    text = escape(xml_text(json_text(record, indent=None)))
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<Properties xmlns="{_NS["cp"]}" xmlns:vt="{_NS["vt"]}">'
        f'<property fmtid="{_FMTID}" pid="2" name="{PROPERTY}"><vt:lpwstr>{text}</vt:lpwstr>'
        "</property></Properties>"
    ).encode()


def _thumbnail(composite: np.ndarray) -> bytes:
    """The composite over white as a JPEG of at most 256 px, like PowerPoint's own."""
    image = Image.fromarray(composite, "RGBA")
    image.thumbnail((THUMBNAIL_MAX, THUMBNAIL_MAX), Image.Resampling.LANCZOS)
    flat = Image.new("RGB", image.size, "white")
    flat.paste(image, mask=image.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# --- reading ---------------------------------------------------------------------------


def read(path: Path, max_memory: int | None = None) -> LayerStack:
    try:
        with zipfile.ZipFile(path) as archive:
            record = _record(archive, path)
            size = _canvas(record, path)
            slide_name, emu = _slide(archive, path, size)
            slide = parse(member(archive, slide_name), f"{path}: {slide_name}")
            tree = slide.find("p:cSld/p:spTree", _NS)
            if tree is None:
                raise BadResult(f"{path}: the slide has no shapes")
            targets = _rels(archive, slide_name, path)
            pictures = list(tree.iter(f"{{{_NS['p']}}}pic"))
            nodes = len(pictures) + len(list(tree.iter(f"{{{_NS['p']}}}grpSp")))
            check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory)
            sources = [targets.get(_embed(pic), "") for pic in pictures]
            missing = set(sources) - set(archive.namelist())
            if missing:
                shown = short_text(sorted(missing)[0], 40)
                raise BadResult(f"{path}: a picture's image {shown!r} is missing")
            members = Members(archive, sources)
            check_size(path, *size, layers=max(nodes, 1), max_memory=max_memory, held=members.cost)
            reader = _Reader(path, members, targets, size, emu)
            layers = reader.children(tree, (0, 0), 1.0)
    except (BadResult, RecursionError):  # formats.read names deep nesting
        raise
    except Exception as exc:  # zipfile, expat and Pillow raise many types on damage
        raise BadResult(f"{path}: not a readable PPTX ({_short(exc)})") from None
    if not layers:
        raise BadResult(f"{path}: the slide has no layers")
    metadata = record.get("metadata")
    icc = reader.icc
    return LayerStack(
        layers, metadata if isinstance(metadata, dict) else {}, icc[0] if icc else None
    )


def read_metadata(path: Path) -> dict[str, Any]:
    """Our provenance from the zip's directory and docProps/custom.xml alone (the
    directory is written last, so a cut-off file has none)."""
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = _record(archive, path).get("metadata")
    except BadResult:
        raise
    except Exception as exc:  # zipfile raises many types on damage
        raise BadResult(f"{path}: not a readable PPTX ({_short(exc)})") from None
    return metadata if isinstance(metadata, dict) else {}


def _record(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    """Our record from the custom property; BadResult unless layerctl wrote the file."""
    found = None
    if _CUSTOM in archive.namelist():
        props = parse(member(archive, _CUSTOM), f"{path}: {_CUSTOM}")
        for prop in props.findall("cp:property", _NS):
            if prop.get("name") == PROPERTY:
                found = prop.findtext("vt:lpwstr", "", _NS)
    if found is None:
        raise BadResult(f"{path}: not a PPTX written by layerctl", hint=_HINT)
    try:
        record = json.loads(found)
    except ValueError:
        record = None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise BadResult(f"{path}: its layerctl record is damaged")
    version = record.get("format_version")
    if not isinstance(version, int) or version > VERSION:
        raise BadResult(
            f"{path}: format version {version!r} is newer than this layerctl reads",
            hint="upgrade layerctl",
        )
    return record


def _canvas(record: dict[str, Any], where: Path) -> tuple[int, int]:
    size = record.get("canvas")
    try:
        width, height = int(size["width"]), int(size["height"])  # type: ignore[index]
    except (TypeError, KeyError, ValueError, OverflowError):
        raise BadResult(f"{where}: canvas size missing or not numbers") from None
    check_size(where, width, height)
    return width, height


def _rels(archive: zipfile.ZipFile, part: str, where: Path) -> dict[str, str]:
    """A part's internal relationships, ``{Id: member name}``; external ones are refused."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", f"{name}.rels")
    if rels_name not in archive.namelist():
        return {}
    found = {}
    for rel in parse(member(archive, rels_name), f"{where}: {rels_name}"):
        if rel.get("TargetMode") == "External":
            raise BadResult(
                f"{where}: {part} links to {rel.get('Target', '')[:40]!r} outside the file",
                hint=_HINT,
            )
        target = rel.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        found[rel.get("Id", "")] = posixpath.normpath(resolved)
    return found


def _slide(archive: zipfile.ZipFile, path: Path, size: tuple[int, int]) -> tuple[str, int]:
    """The member name of the presentation's one slide, and the EMU per pixel its size
    gives against the canvas of the record."""
    main = "ppt/presentation.xml"
    presentation = parse(member(archive, main), f"{path}: {main}")
    ids = presentation.findall("p:sldIdLst/p:sldId", _NS)
    if len(ids) != 1:
        raise BadResult(f"{path}: {len(ids)} slides; layerctl writes one", hint=_HINT)
    target = _rels(archive, main, path).get(ids[0].get(f"{{{_NS['r']}}}id", ""))
    if target is None or target not in archive.namelist():
        raise BadResult(f"{path}: the slide is missing")
    found = presentation.find("p:sldSz", _NS)
    cx, cy = (_int(found.get(key) if found is not None else None, path) for key in ("cx", "cy"))
    emu = cx // size[0]
    if emu < 1 or (cx, cy) != (emu * size[0], emu * size[1]):
        raise BadResult(
            f"{path}: the slide is not the size of its {budget.dimensions(*size)} canvas"
        )
    return target, emu


def _int(text: str | None, where: Path) -> int:
    try:
        if text is None or len(text) > 20:
            raise ValueError
        return int(text)
    except ValueError:
        raise BadResult(f"{where}: a position or size is not a number") from None


def _embed(pic: ET.Element) -> str:
    blip = pic.find("p:blipFill/a:blip", _NS)
    return blip.get(f"{{{_NS['r']}}}embed", "") if blip is not None else ""


class _Reader:
    """Shapes back into layers: pictures placed 1:1, groups moved but not scaled."""

    def __init__(
        self,
        where: Path,
        members: Members,
        targets: dict[str, str],
        size: tuple[int, int],
        emu: int,
    ) -> None:
        self.where, self.members, self.targets = where, members, targets
        self.size, self.emu = size, emu
        self.icc: list[bytes] = []

    def children(self, parent: ET.Element, shift: tuple[int, int], opacity: float) -> list[Layer]:
        """The layers of a shape tree or group, bottom first; ``shift`` (EMU) moves them
        from the group's child space to the slide's."""
        layers = []
        for node in parent:
            kind = node.tag.rsplit("}", 1)[-1]
            if kind in {"nvGrpSpPr", "grpSpPr", "extLst"}:
                continue
            info = node.find("*/p:cNvPr", _NS)
            name = info.get("name", "") if info is not None else ""
            if kind == "grpSp":
                offset = self._group_shift(node, name)
                inner = (shift[0] + offset[0], shift[1] + offset[1])
                children = self.children(node, inner, opacity)
                if children:
                    layer = Layer.group(name, children)
                else:  # a group emptied in PowerPoint
                    layer = Layer(name, np.zeros((self.size[1], self.size[0], 4), np.uint8))
            elif kind == "pic":
                layer = Layer(name, self._picture(node, name, shift, opacity))
            else:
                raise BadResult(
                    f"{self.where}: the slide holds a <p:{kind}>, which layerctl cannot read",
                    hint=_HINT,
                )
            layer.visible = info is None or info.get("hidden") not in {"1", "true"}
            layers.append(layer)
        return layers

    def _xfrm(self, node: ET.Element, name: str) -> ET.Element:
        xfrm = node.find("p:grpSpPr/a:xfrm", _NS)
        if xfrm is None:
            xfrm = node.find("p:spPr/a:xfrm", _NS)
        if xfrm is None:
            raise BadResult(f"{self.where}: shape {name!r} has no position")
        if (
            xfrm.get("rot", "0") != "0"
            or xfrm.get("flipH") in {"1", "true"}
            or xfrm.get("flipV") in {"1", "true"}
        ):
            raise BadResult(f"{self.where}: shape {name!r} is rotated or flipped", hint=_HINT)
        return xfrm

    def _pair(self, xfrm: ET.Element, tag: str, keys: tuple[str, str]) -> tuple[int, int]:
        found = xfrm.find(tag, _NS)
        if found is None:
            raise BadResult(f"{self.where}: a shape lacks its {tag}")
        return _int(found.get(keys[0]), self.where), _int(found.get(keys[1]), self.where)

    def _group_shift(self, node: ET.Element, name: str) -> tuple[int, int]:
        xfrm = self._xfrm(node, name)
        off, ext = self._pair(xfrm, "a:off", ("x", "y")), self._pair(xfrm, "a:ext", ("cx", "cy"))
        child_off = self._pair(xfrm, "a:chOff", ("x", "y"))
        child_ext = self._pair(xfrm, "a:chExt", ("cx", "cy"))
        if ext != child_ext:
            raise BadResult(f"{self.where}: group {name!r} is scaled", hint=_HINT)
        return off[0] - child_off[0], off[1] - child_off[1]

    def _picture(
        self, node: ET.Element, name: str, shift: tuple[int, int], opacity: float
    ) -> np.ndarray:
        src = self.targets.get(_embed(node), "")
        pixels, profile = self.members.pixels(src)
        if not self.icc and profile:
            self.icc.append(profile)
        crop = node.find("p:blipFill/a:srcRect", _NS)
        if crop is not None and any(crop.get(k, "0") != "0" for k in ("l", "t", "r", "b")):
            raise BadResult(f"{self.where}: picture {name!r} is cropped", hint=_HINT)
        xfrm = self._xfrm(node, name)
        x, y = self._pair(xfrm, "a:off", ("x", "y"))
        cx, cy = self._pair(xfrm, "a:ext", ("cx", "cy"))
        height, width = pixels.shape[:2]
        if (round(cx / self.emu), round(cy / self.emu)) != (width, height):
            raise BadResult(
                f"{self.where}: picture {name!r} is drawn at another size than its image "
                f"({width}x{height})",
                hint=_HINT,
            )
        left, top = round((x + shift[0]) / self.emu), round((y + shift[1]) / self.emu)
        alpha = node.find("p:blipFill/a:blip/a:alphaModFix", _NS)
        if alpha is not None:  # transparency set in PowerPoint's Picture Format pane
            opacity *= _int(alpha.get("amt", "100000"), self.where) / 100_000
        return with_opacity(place(self.size, left, top, pixels), opacity)
