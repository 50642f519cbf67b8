"""Layer / LayerStack: the one data model every part of layerctl shares.

Layers are full-canvas straight-alpha RGBA uint8 arrays of shape (H, W, 4), ordered
bottom first (index 0 is the background). A layer with children is a group: its pixels
are the composite of its children, kept so that readers and writers never have to
re-derive them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

RGBA = np.ndarray  # (H, W, 4) uint8, straight (not premultiplied) alpha


@dataclass
class Layer:
    name: str
    pixels: RGBA
    children: list[Layer] = field(default_factory=list)
    visible: bool = True

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 4 or self.pixels.dtype != np.uint8:
            raise ValueError(f"layer {self.name!r}: pixels must be (H, W, 4) uint8")

    @classmethod
    def group(cls, name: str, children: Sequence[Layer]) -> Layer:
        """A group whose pixels are the composite of ``children`` (bottom first)."""
        if not children:
            raise ValueError(f"group {name!r} has no children")
        return cls(name, composite([c.pixels for c in children]), list(children))

    @property
    def is_group(self) -> bool:
        return bool(self.children)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        return self.pixels.shape[1], self.pixels.shape[0]

    def bbox(self) -> tuple[int, int, int, int] | None:
        """(left, top, right, bottom) of the pixels with alpha > 0, or None if empty."""
        return alpha_bbox(self.pixels[..., 3])

    def coverage(self) -> float:
        """Share of the canvas this layer covers, weighted by alpha (0..1)."""
        return float(self.pixels[..., 3].mean(dtype=np.float64) / 255.0)

    def is_empty(self) -> bool:
        return not self.pixels[..., 3].any()


@dataclass
class LayerStack:
    """An ordered, bottom-first list of layers on one canvas, plus provenance metadata.

    ``metadata`` holds what a result should remember: backend, parameters, seed, source
    path and sha256. ``icc_profile`` is the input's colour profile, carried to outputs.
    """

    layers: list[Layer]
    metadata: dict[str, Any] = field(default_factory=dict)
    icc_profile: bytes | None = None

    def __post_init__(self) -> None:
        sizes = {layer.size for layer in self.walk()}
        if len(sizes) > 1:
            raise ValueError(f"layers have different canvas sizes: {sorted(sizes)}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the canvas."""
        if not self.layers:
            raise ValueError("empty stack has no size")
        return self.layers[0].size

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def walk(self) -> Iterator[Layer]:
        """Every layer and group, depth first, bottom first."""
        for layer in self.layers:
            yield from _walk(layer)

    def leaves(self) -> list[Layer]:
        """The pixel layers (no groups), bottom first."""
        return [layer for layer in self.walk() if not layer.is_group]

    def composite(self) -> RGBA:
        """The visible layers flattened; every layer hidden: a clear canvas, as editors
        show it (a result read from another program may have no visible layer)."""
        visible = [layer.pixels for layer in self.layers if layer.visible]
        if not visible:
            width, height = self.size
            return np.zeros((height, width, 4), np.uint8)
        return composite(visible)

    def prune_empty(self) -> LayerStack:
        """A copy without fully transparent pixel layers (groups kept while non-empty)."""
        return LayerStack(_prune(self.layers), dict(self.metadata), self.icc_profile)


def _walk(layer: Layer) -> Iterator[Layer]:
    yield layer
    for child in layer.children:
        yield from _walk(child)


def _prune(layers: list[Layer]) -> list[Layer]:
    kept = []
    for layer in layers:
        if layer.is_group:
            children = _prune(layer.children)
            if children:
                kept.append(Layer.group(layer.name, children))
        elif not layer.is_empty():
            kept.append(layer)
    return kept


def alpha_bbox(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), right/bottom exclusive, of alpha > 0; None if empty."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


COMPOSITE_BAND = 1 << 16  # pixels per band of rows: the float temporaries stay in cache


def composite(layers: Sequence[RGBA]) -> RGBA:
    """Straight-alpha Porter–Duff "over", bottom first; matches PIL.Image.alpha_composite.

    Works in float32 with premultiplied accumulation and rounds once at the end, so a
    long stack gains no rounding drift. Runs over bands of rows, skipping a layer where
    the band holds none of it: the same numbers, without canvas-sized float copies.
    """
    if not layers:
        raise ValueError("nothing to composite")
    h, w = layers[0].shape[:2]
    result = np.empty((h, w, 4), np.uint8)
    rows = max(1, COMPOSITE_BAND // max(w, 1))
    for top in range(0, h, rows):
        band = slice(top, top + rows)
        _composite_band([layer[band] for layer in layers], result[band])
    return result


def _composite_band(layers: list[RGBA], result: RGBA) -> None:
    h, w = layers[0].shape[:2]
    out_rgb = np.zeros((h, w, 3), np.float32)  # premultiplied
    out_a = np.zeros((h, w, 1), np.float32)
    for layer in layers:
        alpha = layer[..., 3:4]
        if not alpha.any():  # "over" with alpha 0 leaves every value as it is
            continue
        if alpha.min() == 255:  # and with alpha 1 replaces it (a * 1 + out * 0, exactly)
            out_rgb[:] = layer[..., :3]
            out_a[:] = 1.0
            continue
        a = alpha.astype(np.float32) / 255.0
        keep = 1.0 - a
        out_rgb *= keep  # in place: the same sums as colour * a + out * (1 - a)
        out_rgb += layer[..., :3].astype(np.float32) * a
        out_a *= keep
        out_a += a
    rgb = np.divide(out_rgb, out_a, out=np.zeros_like(out_rgb), where=out_a > 0)
    result[..., :3] = np.clip(np.rint(rgb), 0, 255)
    result[..., 3:] = np.clip(np.rint(out_a * 255.0), 0, 255)
