"""Full-canvas layers <-> the cropped tiles PSD and OpenRaster store, shared by both.

Both formats keep a layer as its alpha bounding box plus an offset, so colour under
fully transparent pixels is not stored. Every reader and writer therefore clears it
(:func:`clear_transparent`): ``read(write(stack))`` equals ``stack`` with that
invisible colour set to 0, in every format alike.
"""

from __future__ import annotations

import numpy as np

from layerctl.stack import RGBA, Layer


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
    """A full (width, height) canvas with ``pixels`` at (left, top), clipped to the canvas."""
    width, height = size
    canvas = np.zeros((height, width, 4), np.uint8)
    h, w = pixels.shape[:2]
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + w, width), min(top + h, height)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = pixels[y0 - top : y1 - top, x0 - left : x1 - left]
    return clear_transparent(canvas)


def with_opacity(pixels: RGBA, opacity: float) -> RGBA:
    """Fold a layer's opacity (0..1) into its alpha, for files from other programs."""
    if opacity >= 1.0:
        return pixels
    out = pixels.copy()
    out[..., 3] = np.rint(out[..., 3] * max(opacity, 0.0)).astype(np.uint8)
    return clear_transparent(out)
