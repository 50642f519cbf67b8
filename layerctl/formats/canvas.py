"""Full-canvas layers <-> the cropped tiles PSD and OpenRaster store, shared by both.

Both formats keep a layer as its alpha bounding box plus an offset, so colour under
fully transparent pixels is not stored. Every reader and writer therefore clears it
(:func:`clear_transparent`): ``read(write(stack))`` equals ``stack`` with that
invisible colour set to 0, in every format alike.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from layerctl import budget
from layerctl.errors import BadResult
from layerctl.limits import MAX_LAYERS, MAX_RESULT_PIXELS
from layerctl.stack import RGBA, Layer

if TYPE_CHECKING:
    from PIL import Image

# Readers check sizes a file declares before allocating: one canvas (or one stored tile)
# at most MAX_RESULT_PIXELS, at most MAX_LAYERS layers, all full-canvas layers of a stack
# together within 16 such canvases (1.6 G pixels, 6.4 GB as RGBA), and all of it within
# the memory plan (layerctl.budget) with --max-memory.
MAX_CANVAS_PIXELS = MAX_RESULT_PIXELS
MAX_STACK_PIXELS = 16 * MAX_RESULT_PIXELS


def check_size(
    where: object,
    width: int,
    height: int,
    layers: int = 1,
    max_memory: int | None = None,
    held: int = 0,
) -> None:
    """BadResult unless a ``width``×``height`` canvas with ``layers`` layers fits the
    budgets, with ``held`` bytes more in memory while they are read (a file's encoded
    members)."""
    size = budget.dimensions(width, height)
    if width < 1 or height < 1:
        raise BadResult(f"{where}: no canvas ({size})")
    if layers > MAX_LAYERS:
        count = layers if layers < 10**9 else "over 10^9"
        raise BadResult(f"{where}: {count} layers, over the {MAX_LAYERS} a result may have")
    what = f"{layers} layers of {size}" if layers > 1 else size
    if width * height > MAX_CANVAS_PIXELS or width * height * layers > MAX_STACK_PIXELS:
        raise BadResult(
            f"{where}: {what} is too large to read",
            hint=f"the limits are {budget.human_pixels(MAX_CANVAS_PIXELS)} a layer, "
            f"{budget.human_pixels(MAX_STACK_PIXELS)} in all",
        )
    cost = read_cost(width * height, layers) + held
    budget.check(where, cost, max_memory, f"{what} ", BadResult)


def read_cost(pixels: int, layers: int) -> int:
    """Bytes to read ``layers`` full-canvas layers of ``pixels`` and composite them."""
    per_pixel = budget.READ_BYTES_PER_LAYER_PIXEL * layers + budget.READ_WORKING_BYTES_PER_PIXEL
    return pixels * per_pixel


def clear_transparent(pixels: RGBA) -> RGBA:
    """A copy with RGB set to 0 wherever alpha is 0 (that colour is invisible)."""
    out = pixels.copy()
    out[out[..., 3] == 0] = 0
    return out


def tile(layer: Layer) -> tuple[int, int, RGBA] | None:
    """(left, top, pixels of the alpha bbox), or None for a fully transparent layer."""
    box = layer.bbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return left, top, clear_transparent(layer.pixels[top:bottom, left:right])


def place(size: tuple[int, int], left: int, top: int, pixels: RGBA) -> RGBA:
    """A full (width, height) canvas with ``pixels`` at (left, top), clipped to the canvas.

    Only the tile is cleared (:func:`clear_transparent`): the canvas around it is zeros.
    """
    width, height = size
    canvas = np.zeros((height, width, 4), np.uint8)
    h, w = pixels.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + w, width), min(top + h, height)
    if x1 > x0 and y1 > y0:  # only the tile needs clearing: the rest is zeros already
        canvas[y0:y1, x0:x1] = clear_transparent(pixels[y0 - top : y1 - top, x0 - left : x1 - left])
    return canvas


def with_opacity(pixels: RGBA, opacity: float) -> RGBA:
    """Fold a layer's opacity (0..1) into its alpha, for files from other programs."""
    if not opacity < 1.0:  # also NaN, from a damaged file: treat as opaque
        return pixels
    out = pixels.copy()
    out[..., 3] = np.rint(out[..., 3] * max(opacity, 0.0)).astype(np.uint8)
    return clear_transparent(out)


def png_bytes(image: Image.Image, pnginfo: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **pnginfo)
    return buffer.getvalue()


def tile_png(layer: Layer, pnginfo: dict[str, Any]) -> tuple[int, int, int, int, bytes]:
    """(left, top, width, height, PNG) of a layer's alpha bbox, for formats that place
    pictures; a fully transparent layer is one clear pixel at (0, 0), as no format
    holds an empty picture."""
    from PIL import Image

    cropped = tile(layer)
    left, top, pixels = cropped or (0, 0, np.zeros((1, 1, 4), np.uint8))
    height, width = pixels.shape[:2]
    return left, top, width, height, png_bytes(Image.fromarray(pixels, "RGBA"), pnginfo)


def png_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR, or None when ``data`` does not start as a PNG:
    a picture's size, known before anything is decoded."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
