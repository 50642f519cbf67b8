"""Contact sheets: one PNG that shows a whole result at a glance, without an editor.

A sheet has a header, a summary row (original, recomposed image, difference heat map)
and then one tile per layer, bottom first (index 0 is the background), each over a
checkerboard with its index, name and coverage. A group's children follow it on rows
indented by their depth. The layout is computed first and returned, so callers and
tests know where every tile is. Pure Pillow + numpy.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from layerctl.digests import file_sha256
from layerctl.errors import BadResult, LayerctlError
from layerctl.imageio import read_image
from layerctl.outputs import atomic_output
from layerctl.stack import Layer, LayerStack

THUMB_AREA = 180 * 180  # pixels per thumbnail: tall and wide canvases get the same area
THUMB_MAX_SIDE = 360  # ...but no side longer than this, so a 20:1 strip stays on screen
CELL_MIN_WIDTH = 150  # room for a label under a narrow (tall-image) thumbnail
MAX_COLUMNS = 10
# A sheet shows at most this many layer tiles (10 full rows: ~4000 px square at most)
# and indents at most this many levels; a taller stack is cut with a note in the header.
MAX_LAYER_TILES = 100
MAX_INDENT_LEVELS = 8
MARGIN, GAP, INDENT = 12, 10, 28
FONT_SIZE, LINE_HEIGHT = 12, 15
LABEL_HEIGHT = 2 * LINE_HEIGHT + 4
HEADER_HEIGHT = 26
CHECKER = 8  # checkerboard square, in sheet pixels
HEAT_FULL_SCALE = 32.0  # a difference of this many levels (of 255) or more is white-hot

BACKGROUND = (238, 238, 238)
INK = (34, 34, 34)
MUTED = (110, 110, 110)
FRAME = (160, 160, 160)


@dataclass(frozen=True)
class Tile:
    """One picture on the sheet. ``box`` is its image area (left, top, right, bottom)."""

    kind: str  # "original", "composite", "difference" or "layer"
    index: str  # "3", or "2.1" for the first child of group 2; "" for summary tiles
    title: str
    detail: str
    depth: int
    box: tuple[int, int, int, int]
    layer: Layer | None = field(default=None, repr=False, compare=False)


class _Entry(NamedTuple):
    kind: str
    index: str
    title: str
    detail: str
    depth: int
    layer: Layer | None = None


@dataclass(frozen=True)
class Layout:
    """Where everything is: the sheet size, the thumbnail size and every tile."""

    size: tuple[int, int]
    thumb: tuple[int, int]
    header: str
    tiles: list[Tile]

    def layer_tiles(self) -> list[Tile]:
        return [tile for tile in self.tiles if tile.kind == "layer"]

    def tile(self, kind: str) -> Tile | None:
        return next((tile for tile in self.tiles if tile.kind == kind), None)


SUFFIX = ".preview.png"
_MARK = "layerctl-preview"  # a PNG text key: batches never take a sheet for an input


def preview_path(output: str | os.PathLike[str]) -> Path:
    """Where ``decompose --preview`` puts the sheet: ``<output>.preview.png`` beside it."""
    return Path(f"{os.fspath(output)}{SUFFIX}")


def is_preview(path: Path, marked: bool = True) -> bool:
    """Whether ``path`` is a readable PNG carrying our mark (``marked``), by its header."""
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and (_MARK in image.info or not marked)
    except Exception:  # missing, empty or damaged: Pillow raises many types
        return False


def thumb_size(canvas: tuple[int, int]) -> tuple[int, int]:
    """Thumbnail (width, height): the same area for every aspect, capped per side."""
    width, height = canvas
    tw = math.sqrt(THUMB_AREA * width / height)
    th = tw * height / width
    shrink = min(1.0, THUMB_MAX_SIDE / max(tw, th))
    return max(1, round(tw * shrink)), max(1, round(th * shrink))


def layout(stack: LayerStack, *, with_original: bool, header: str | None = None) -> Layout:
    """Place the summary row and one tile per layer (groups' children indented)."""
    if not stack.layers:
        raise BadResult("the result has no layers to preview")
    tw, th = thumb_size(stack.size)
    cell_w, cell_h = max(tw, CELL_MIN_WIDTH), th + LABEL_HEIGHT
    summary = [_Entry("composite", "", "recomposed", "all visible layers", 0)]
    if with_original:
        summary.insert(0, _Entry("original", "", "original", "", 0))
        summary.append(_Entry("difference", "", "difference (levels)", "", 0))
    entries = list(itertools.islice(_entries(stack.layers, 0, ""), MAX_LAYER_TILES + 1))
    cut = len(entries) > MAX_LAYER_TILES
    entries = entries[:MAX_LAYER_TILES]
    # About as tall as wide, in pixels: the sheet stays near square for any aspect.
    count = len(summary) + len(entries)
    columns = min(MAX_COLUMNS, max(1, math.ceil(math.sqrt(count * cell_h / cell_w))))
    tiles: list[Tile] = []
    top = MARGIN + HEADER_HEIGHT
    right = 0
    for row in [*_rows(summary, columns), *_rows(entries, columns)]:
        for col, e in enumerate(row):
            left = MARGIN + e.depth * INDENT + col * (cell_w + GAP) + (cell_w - tw) // 2
            box = (left, top, left + tw, top + th)
            tiles.append(Tile(e.kind, e.index, e.title, e.detail, e.depth, box, e.layer))
            right = max(right, MARGIN + e.depth * INDENT + (col + 1) * cell_w + col * GAP)
        top += cell_h + GAP
    width, height = stack.size
    n = len(stack.leaves())
    header = header or f"{width}×{height} · {n} layer{'s' * (n != 1)}" + _backend(stack)
    if cut:
        shown = sum(1 for _ in stack.walk())
        header += f" · the first {MAX_LAYER_TILES} of {shown} layers and groups shown"
    return Layout((right + MARGIN, top - GAP + MARGIN), (tw, th), header, tiles)


def contact_sheet(
    stack: LayerStack, original: np.ndarray | None = None, header: str | None = None
) -> tuple[Image.Image, Layout]:
    """Draw the sheet for ``stack``; ``original`` (RGBA uint8) adds the difference map."""
    plan = layout(stack, with_original=original is not None, header=header)
    tw, th = plan.thumb
    sheet = Image.new("RGB", plan.size, BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    header_font = _font(13)
    draw.text(
        (MARGIN, MARGIN),
        _fit(plan.header, plan.size[0] - 2 * MARGIN, header_font),
        INK,
        header_font,
    )
    recomposed = stack.composite()
    if original is not None and original.shape[1::-1] != stack.size:
        original = np.asarray(Image.fromarray(original, "RGBA").resize(stack.size))
    for tile in plan.tiles:
        detail = tile.detail
        if tile.kind == "difference" and original is not None:
            picture, detail = _difference(original, recomposed, (tw, th))
        else:
            pixels = {"original": original, "composite": recomposed}.get(tile.kind)
            picture = _on_checker(tile.layer.pixels if tile.layer else pixels, (tw, th))
        sheet.paste(picture, tile.box[:2])
        _draw_tile_frame(draw, tile, detail, tw)
    return sheet, plan


def write_preview(
    stack: LayerStack,
    path: str | os.PathLike[str],
    original: np.ndarray | None = None,
    *,
    force: bool = False,
    header: str | None = None,
    near: Path | None = None,
    inputs: Sequence[Path] = (),
) -> Layout:
    """Write the sheet to ``path`` atomically; without ``original``, use the recorded source.

    ``near`` is the result's path: a relative source path is also tried beside it.
    """
    if original is None:
        original = original_from_metadata(stack, near)
    sheet, plan = contact_sheet(stack, original, header)
    mark = PngInfo()
    mark.add_text(_MARK, "1")
    with atomic_output(path, force=force, inputs=inputs) as tmp:
        sheet.save(tmp, format="PNG", pnginfo=mark)
    return plan


def original_from_metadata(stack: LayerStack, near: Path | None = None) -> np.ndarray | None:
    """The input recorded in the result's metadata, if it still exists and is unchanged.

    Only a file whose sha256 is the recorded one is used: anything else is not the image
    that was split (the difference map would be meaningless), and a crafted result
    naming an outside file without its sha256 must not pull it into the sheet. The file
    is hashed before it is decoded.
    """
    source = stack.metadata.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        return None
    recorded_sha = source.get("sha256")
    if not isinstance(recorded_sha, str) or not source["path"] or "\x00" in source["path"]:
        return None
    recorded = Path(str(source["path"]))
    candidates = [recorded]
    if near is not None and not recorded.is_absolute():  # results record it shareably
        candidates += [near.parent / recorded, near.parent / recorded.name]
    for candidate in candidates:
        try:
            if not candidate.is_file() or file_sha256(candidate) != recorded_sha:
                continue
            return read_image(candidate).pixels
        except (OSError, LayerctlError):
            continue
    return None


def _entries(layers: list[Layer], depth: int, prefix: str) -> Iterator[_Entry]:
    """Tiles depth first; ``depth`` (the indentation) stops at MAX_INDENT_LEVELS."""
    for i, layer in enumerate(layers):
        index = f"{prefix}{i}"
        detail = "empty" if layer.is_empty() else f"{layer.coverage():.1%} coverage"
        if layer.is_group:
            detail += f" · group of {len(layer.children)}"
        if not layer.visible:
            detail += " · hidden"
        yield _Entry("layer", index, f"{index}  {layer.name}", detail, depth, layer)
        if layer.is_group:
            yield from _entries(layer.children, min(depth + 1, MAX_INDENT_LEVELS), f"{index}.")


def _rows(entries: list[_Entry], columns: int) -> Iterator[list[_Entry]]:
    """Consecutive entries of one depth share rows of at most ``columns`` tiles."""
    row: list[_Entry] = []
    for entry in entries:
        if row and (row[0].depth != entry.depth or len(row) == max(1, columns - entry.depth)):
            yield row
            row = []
        row.append(entry)
    if row:
        yield row


def _backend(stack: LayerStack) -> str:
    backend = stack.metadata.get("backend")
    return f" · {backend}" if backend else ""


def _thumbnail(pixels: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """Pillow resizes RGBA in premultiplied space, so transparent edges do not halo."""
    image = Image.fromarray(pixels, "RGBA")
    upscale = size[0] > image.width
    resample = Image.Resampling.NEAREST if upscale else Image.Resampling.LANCZOS
    return image.resize(size, resample, reducing_gap=None if upscale else 3.0)


def _on_checker(pixels: np.ndarray, size: tuple[int, int]) -> Image.Image:
    board = Image.fromarray(_checkerboard(size), "RGB").convert("RGBA")
    return Image.alpha_composite(board, _thumbnail(pixels, size)).convert("RGB")


def _checkerboard(size: tuple[int, int]) -> np.ndarray:
    width, height = size
    ys, xs = np.indices((height, width))
    light = ((ys // CHECKER + xs // CHECKER) % 2 == 0)[..., None]
    return np.where(light, np.uint8(255), np.uint8(214)).repeat(3, axis=2)


def _difference(
    original: np.ndarray, recomposed: np.ndarray, size: tuple[int, int]
) -> tuple[Image.Image, str]:
    """Heat map of the largest premultiplied-RGBA difference, max-pooled to thumbnail size.

    Max pooling (not averaging) keeps a single wrong pixel visible in the thumbnail; a
    square-root scale makes one-level rounding visible while ≥ HEAT_FULL_SCALE saturates.
    """
    diff = _premultiplied(original) - _premultiplied(recomposed)
    levels = np.abs(diff).max(axis=-1)
    pooled = _max_pool(levels, size)
    heat = _heat_colors(np.sqrt(np.clip(pooled / HEAT_FULL_SCALE, 0.0, 1.0)))
    image = Image.fromarray(heat, "RGB").resize(size, Image.Resampling.NEAREST)
    return image, f"max {levels.max():.0f} · mean {levels.mean():.2f}"


def _premultiplied(pixels: np.ndarray) -> np.ndarray:
    alpha = pixels[..., 3:4].astype(np.float32)
    return np.concatenate([pixels[..., :3] * (alpha / 255.0), alpha], axis=-1)


def _max_pool(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = values.shape
    k = max(1, math.ceil(max(width / size[0], height / size[1])))
    padded = np.zeros((math.ceil(height / k) * k, math.ceil(width / k) * k), np.float32)
    padded[:height, :width] = values
    return padded.reshape(padded.shape[0] // k, k, padded.shape[1] // k, k).max(axis=(1, 3))


_HEAT_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_HEAT_COLORS = np.array(
    [[0, 0, 0], [80, 18, 123], [205, 60, 70], [250, 170, 40], [255, 255, 220]], np.float64
)  # black → purple → red → orange → white, after matplotlib's "inferno"


def _heat_colors(values: np.ndarray) -> np.ndarray:
    channels = [np.interp(values, _HEAT_STOPS, _HEAT_COLORS[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def _draw_tile_frame(draw: ImageDraw.ImageDraw, tile: Tile, detail: str, thumb_w: int) -> None:
    left, top, right, bottom = tile.box
    draw.rectangle((left - 1, top - 1, right, bottom), outline=FRAME)
    cell_w = max(thumb_w, CELL_MIN_WIDTH)
    text_left = left - (cell_w - thumb_w) // 2
    title_font, detail_font = _font(FONT_SIZE), _font(FONT_SIZE - 1)
    draw.text((text_left, bottom + 3), _fit(tile.title, cell_w, title_font), INK, title_font)
    y = bottom + 3 + LINE_HEIGHT
    draw.text((text_left, y), _fit(detail, cell_w, detail_font), MUTED, detail_font)
    for level in range(1, tile.depth + 1):  # guide lines tie children to their groups
        x = MARGIN + level * INDENT - INDENT // 2
        draw.line((x, top - GAP // 2, x, bottom + LABEL_HEIGHT), fill=FRAME, width=2)


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where installed (wide Unicode coverage), else Pillow's bundled font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _fit(text: str, width: int, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> str:
    """``text`` cut with an ellipsis so it fits ``width`` pixels; one line only."""
    text = " ".join(text.split())
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
