"""Posters: a see-through panel over some elements and under others (bench/synthetic.py's
poster family: shapes and icons, a 30–70 % panel over them, text on top)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageFont

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend
from layerctl.stack import composite

pytest.importorskip("cv2")

SIZE = (200, 150)  # width, height
PANEL = (20, 20, 180, 130)  # x0, y0, x1, y1
WHITE_HALF = (255, 255, 255, 128)  # a white panel at half opacity
NAVY = (40, 60, 160)
SCALE = 4  # supersampling: anti-aliased edges, as renderers draw them


def _ground(left=(200, 120, 60), right=(60, 160, 220)) -> np.ndarray:
    """A linear gradient ground (RGBA uint8): under it a panel's opacity can be read."""
    w, h = SIZE
    t = np.linspace(0.0, 1.0, w * SCALE, dtype=np.float32)[None, :, None]
    rgb = (1 - t) * np.array(left, np.float32) + t * np.array(right, np.float32)
    rgb = np.broadcast_to(rgb, (h * SCALE, w * SCALE, 3))
    alpha = np.full((h * SCALE, w * SCALE, 1), 255.0)
    return np.clip(np.rint(np.concatenate([rgb, alpha], -1)), 0, 255).astype(np.uint8)


def _poster(parts, ground: np.ndarray | None = None) -> np.ndarray:
    """The ground (at SCALE×; _ground's by default) with ``parts`` ((PIL draw method,
    box, RGBA), bottom first) drawn over it, box-filtered down."""
    from PIL import ImageDraw

    canvas = Image.fromarray(_ground() if ground is None else ground, "RGBA")
    for kind, box, fill in parts:
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        if kind == "text":  # box: (x, y, the words)
            font = ImageFont.load_default(size=30 * SCALE)
            draw.text((box[0] * SCALE, box[1] * SCALE), box[2], font=font, fill=fill)
        elif kind == "shadow":  # a blurred ellipse, a drop shadow
            draw.ellipse([v * SCALE for v in box], fill=fill)
            layer = layer.filter(ImageFilter.GaussianBlur(4 * SCALE))
        else:
            getattr(draw, kind)([v * SCALE for v in box], fill=fill)
        canvas = Image.alpha_composite(canvas, layer)
    return np.asarray(canvas.reduce(SCALE)).copy()


def run(image: np.ndarray, n: int) -> list[np.ndarray]:
    return ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=n))


def test_a_shape_wholly_under_a_panel_is_seen_through_it() -> None:
    """A disc wholly inside a white panel at half opacity, its colour one the panel's
    tint makes (every channel at least half white): it lies under the panel, in its own
    colour, and the panel goes on over it, not with a disc-shaped hole."""
    disc = (30, 90, 200, 255)
    image = _poster([("ellipse", (70, 45, 130, 105), disc), ("rectangle", PANEL, WHITE_HALF)])
    layers = run(image, 3)
    assert len(layers) == 3
    _, lower, panel = layers
    assert psnr(composite(layers), image) >= 35.0
    assert lower[75, 100, 3] == 255
    assert np.abs(lower[75, 100, :3].astype(int) - disc[:3]).max() <= 8  # unveiled
    for where in ((75, 100), (30, 40)):  # over the disc and over the ground alike
        assert abs(int(panel[where][3]) - 128) <= 8 and panel[where][:3].min() >= 245


def test_a_shape_the_panel_cannot_tint_lies_on_it() -> None:
    """A dark disc inside a white panel at half opacity: no colour under the panel shows
    darker than half white, so the disc lies on the panel, as it shows."""
    disc = (20, 30, 90, 255)
    image = _poster([("rectangle", PANEL, WHITE_HALF), ("ellipse", (70, 45, 130, 105), disc)])
    _, panel, upper = run(image, 3)
    assert upper[75, 100, 3] == 255
    assert np.abs(upper[75, 100, :3].astype(int) - disc[:3]).max() <= 8
    assert panel[30, 40, 3] > 100


def test_a_shape_seen_through_a_panel_goes_on_under_the_words_across_it() -> None:
    """A bar whose lower half a black panel veils, words across that half: the bar goes
    on under the words as under the panel, with no word-shaped holes in it."""
    bar = (240, 200, 40, 255)
    image = _poster(
        [
            ("rectangle", (60, 10, 140, 80), bar),
            ("rectangle", (20, 50, 180, 140), (0, 0, 0, 128)),
            ("text", (40, 58, "HELLO"), (250, 250, 250, 255)),
        ]
    )
    layers = run(image, 4)
    assert psnr(composite(layers), image) >= 35.0
    lower = next(layer for layer in layers[1:] if layer[30, 100, 3] == 255)
    words = (image[50:80, 60:140, :3].min(axis=-1) >= 200) & (image[50:80, 60:140, 3] == 255)
    assert words.sum() > 100  # the words cross the veiled half of the bar
    assert (lower[50:80, 60:140, 3][words] == 255).all()
    assert np.abs(lower[50:80, 60:140, :3][words].astype(int) - bar[:3]).max() <= 8


def test_a_panel_over_a_drop_shadow_is_one_veil() -> None:
    """A navy panel at 40 % over a disc and its soft shadow, on a gentle gradient: the
    shadow shows through the panel in places, which no one veil explains, yet the rest
    of the panel is one; it is an overlay (the ground through it, alpha 0.4), not an
    opaque shaded card."""
    image = _poster(
        [
            ("shadow", (80, 55, 140, 115), (0, 0, 0, 160)),
            ("ellipse", (70, 45, 130, 105), (230, 220, 90, 255)),
            ("rectangle", PANEL, (*NAVY, 102)),
        ],
        _ground((120, 140, 60), (100, 160, 80)),
    )
    layers = run(image, 4)
    assert psnr(composite(layers), image) >= 30.0  # the shadow through it: not yet its own
    panel = layers[-1]
    for where in ((30, 40), (120, 170)):  # the panel over the ground, far from the shadow
        assert abs(int(panel[where][3]) - 102) <= 10
        assert np.abs(panel[where][:3].astype(int) - NAVY).max() <= 12


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))
