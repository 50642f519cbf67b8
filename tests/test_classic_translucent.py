"""See-through panels on a textured ground: one opacity and colour lifted, the texture
left on the background (none copied into the panel, no ghost of the panel left)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from layerctl import refine
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, texture

pytest.importorskip("cv2")

PAPER = np.array([225.0, 215.0, 190.0])
BLUE = np.array([40.0, 90.0, 200.0])
INK = (250, 250, 250)
GRAIN = 6.0  # σ of the per-pixel grain (the bench's grounds: 2..7)
PANEL = (slice(50, 170), slice(60, 340))  # rows, cols of the panel (crisp edges)


def shading(shape: tuple[int, int]) -> np.ndarray:
    """The paper's slow shading across the sheet (its smooth model, RGB)."""
    h, w = shape
    shade = (
        6.0 * np.sin(np.linspace(0, 3, w))[None, :] + 4.0 * np.cos(np.linspace(0, 2, h))[:, None]
    )
    return PAPER + shade[..., None]


def paper(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A paper ground: its shading and grey per-pixel grain."""
    grain = np.random.default_rng(seed).standard_normal(shape) * GRAIN
    return shading(shape) + grain[..., None]


def panel_on_paper(opacity: float, text: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(RGBA uint8 image, the paper under it): a BLUE panel at ``opacity`` over paper,
    maybe a white word on it (drawn at 4× and box-filtered: anti-aliased)."""
    ground = paper((220, 400))
    rgb = ground.copy()
    rgb[PANEL] = opacity * BLUE + (1 - opacity) * rgb[PANEL]
    image = np.dstack([np.clip(np.rint(rgb), 0, 255), np.full(rgb.shape[:2], 255)])
    image = image.astype(np.uint8)
    if text:
        big = Image.fromarray(image).resize((1600, 880), Image.Resampling.NEAREST)
        mask = Image.new("L", big.size, 0)
        ImageDraw.Draw(mask).text((110 * 4, 85 * 4), "HELLO", font=_font(), fill=255)
        cover = np.asarray(mask.reduce(4), np.float32)[..., None] / 255.0
        image[..., :3] = np.rint(cover * INK + (1 - cover) * image[..., :3]).astype(np.uint8)
    return image, ground


def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=48 * 4)


def decompose(image: np.ndarray, n: int) -> list[np.ndarray]:
    """The layers as written: the backend's, made lossless against the input."""
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=n))
    return refine.make_lossless(list(layers), image)


def test_the_opacity_and_colour_are_read_off_the_textures_spread() -> None:
    """texture.fit: a = 1 − σ_in / σ_out from neighbour differences, C from the mean.
    Tolerance: ~30,000 pairs each side put a within about 0.01 of the truth (σ of a
    spread from n pairs ≈ 1/√(2n), plus uint8 rounding); C = (I − (1 − a)·U) / a then
    moves by |U − C|·δa / a, ≲ 6 levels at a = 0.5 for |U − C| ≈ 180: 0.03 and 10 give
    room for the shading the smooth model U leaves."""
    for opacity in (0.35, 0.55, 0.75):
        image, _ = panel_on_paper(opacity)
        model = np.zeros((*image.shape[:2], 4), np.float32)
        model[..., :3] = shading(image.shape[:2])  # the ground's smooth model: no grain
        ground = np.ones(image.shape[:2], bool)
        ground[PANEL] = False
        visible = ~ground
        fitted = texture.fit(image, model, ground, (slice(0, 220), slice(0, 400)), visible)
        assert fitted is not None and fitted.texture
        assert abs(fitted.opacity - opacity) <= 0.03
        assert np.abs(fitted.colour - BLUE).max() <= 10.0


def test_an_opaque_card_and_a_flat_ground_are_no_texture_veil() -> None:
    image, _ = panel_on_paper(1.0)
    model = np.zeros((*image.shape[:2], 4), np.float32)
    model[..., :3] = PAPER
    ground = np.ones(image.shape[:2], bool)
    ground[PANEL] = False
    box = (slice(0, 220), slice(0, 400))
    assert texture.fit(image, model, ground, box, ~ground) is None  # nothing shows through
    flat = image.copy()
    flat[ground] = (225, 215, 190, 255)
    assert texture.fit(flat, model, ground, box, ~ground) is None  # no texture to measure


def test_a_translucent_panel_on_paper_is_one_layer_and_the_paper_goes_on_under_it() -> None:
    opacity = 0.55
    image, truth = panel_on_paper(opacity)
    layers = decompose(image, 4)
    assert len(layers) == 2
    ground, panel = layers
    inside = np.zeros(image.shape[:2], bool)
    inside[PANEL] = True
    core = inside.copy()
    core[PANEL] = False
    core[55:165, 65:335] = True
    alpha = panel[..., 3][core] / 255.0
    assert abs(float(np.median(alpha)) - opacity) <= 0.03
    assert float(alpha.std()) <= 0.01  # one opacity: no grain copied into the alpha
    colour = panel[..., :3][core].astype(float)
    assert np.abs(colour.mean(axis=0) - BLUE).max() <= 10.0
    assert colour.std(axis=0).max() <= 2.0  # one colour: no grain copied into it
    # Under the panel the paper goes on: its grain as strong as outside, its mean
    # the paper's (no blue ghost), close to the paper that was really there.
    under = ground[..., :3][core].astype(float)
    outside = ground[..., :3][~inside].astype(float)
    assert texture.spread(ground, core) == pytest.approx(texture.spread(ground, ~inside), rel=0.15)
    assert np.abs(under.mean(axis=0) - outside.mean(axis=0)).max() <= 4.0
    assert np.abs(under - truth[core]).mean() <= 4.0


def test_text_on_a_translucent_panel_is_lifted_whole() -> None:
    image, _ = panel_on_paper(0.6, text=True)
    layers = decompose(image, 4)
    mask = Image.new("L", (1600, 880), 0)
    ImageDraw.Draw(mask).text((110 * 4, 85 * 4), "HELLO", font=_font(), fill=255)
    glyphs = np.asarray(mask.reduce(4)) == 255
    assert glyphs.sum() > 500
    holders = [i for i, layer in enumerate(layers[1:], 1) if (layer[..., 3][glyphs] == 255).any()]
    assert len(holders) == 1  # every letter in one layer
    text = layers[holders[0]]
    assert (text[..., 3][glyphs] >= 250).mean() > 0.98  # whole, opaque
    assert (text[..., :3][glyphs] >= 240).all(axis=-1).mean() > 0.95  # white, not blue
    panels = [layer for layer in layers[1:] if layer is not text]
    assert any(abs(np.median(p[..., 3][105:115, 70:100]) / 255 - 0.6) <= 0.04 for p in panels)


def test_the_ground_on_both_sides_of_a_panel_from_edge_to_edge_is_one_background() -> None:
    """A panel from the top edge to the bottom one cuts the ground in two; where one
    side is shaded in a way the model learnt on the other cannot foresee (lighter
    towards its edge), the part with the ground's own grain is still ground, not an
    element."""
    h, w = 240, 480
    x, y = np.linspace(0, 1, w)[None, :], np.linspace(0, 1, h)[:, None]
    shade = 16.0 / (1 + np.exp(-(x - 0.8) / 0.03)) * np.exp(-(((y - 0.5) / 0.3) ** 2))
    grain = np.random.default_rng(1).standard_normal((h, w)) * GRAIN
    rgb = PAPER + (shade + grain)[..., None]
    band = (slice(0, h), slice(160, 300))
    rgb[band] = 0.5 * BLUE + 0.5 * rgb[band]
    image = np.dstack([np.clip(np.rint(rgb), 0, 255), np.full((h, w), 255)]).astype(np.uint8)
    layers = decompose(image, 4)
    assert len(layers) == 2
    panel = layers[1][..., 3]
    assert not panel[:, :150].any() and not panel[:, 310:].any()
    assert abs(float(np.median(panel[band])) / 255 - 0.5) <= 0.03
