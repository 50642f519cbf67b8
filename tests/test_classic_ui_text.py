"""Small text on the white cards of a light app screen: every glyph leaves the card,
thin ones included, and the card goes on whole under the words."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl import refine
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, regions, segment

pytest.importorskip("cv2")

PAGE = (247, 247, 248)  # a light UI's page
INK = (30, 30, 36)  # the words' dark ink
CARD = (slice(30, 110), slice(20, 300))  # rows, cols of the white card
THICK = [(slice(55, 75), slice(40 + 16 * k, 46 + 16 * k)) for k in range(4)]  # flat glyphs
THIN = (slice(55, 75), slice(110, 112))  # a glyph two pixels wide: no flat pixel


def screen() -> np.ndarray:
    """RGBA uint8: a white card on the page, holding a word of four glyphs thick
    enough for a flat middle and, ten pixels on, one stroke two pixels wide."""
    image = np.zeros((140, 320, 4), np.uint8)
    image[..., :3] = PAGE
    image[..., 3] = 255
    image[CARD][..., :3] = 255
    for glyph in [*THICK, THIN]:
        image[glyph][..., :3] = INK
    return image


def test_a_thin_glyph_is_no_blend_of_the_card_and_words_far_from_it() -> None:
    """The thin stroke grows into the card (no seed of its own); it is dark ink on
    white, as the card's edge with the other glyphs is, but no glyph lies within a rim's
    reach of it: it is split off the card, not kept there as the card's edge."""
    image = screen()
    f = segment.channels(image)
    flat = segment.flat_pixels(f)
    background = segment.estimate_background(f, flat)
    labels, _ = regions.find_regions(f, flat, background)
    card = labels[CARD][2, 2]
    assert card != 0
    assert not (labels[THIN] == card).any()


def test_the_card_goes_on_whole_under_a_thin_glyph() -> None:
    """No text-shaped hole in the card, no ink speck left in it or on the page."""
    image = screen()
    out = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=3))
    layers = refine.make_lossless(list(out), image)
    assert np.abs(layers[0][CARD][..., :3].astype(int) - PAGE).max() <= 1  # no ink left
    card = [px for px in layers[1:] if px[CARD][2, 2, 3] == 255]
    assert card, "no layer holds the card"
    assert (card[0][CARD][..., 3] == 255).all()  # whole under every glyph
    assert (card[0][CARD][..., :3] >= 250).all()  # white: no ink speck in it
    words = [px for px in layers[1:] if px is not card[0]]
    assert any((px[THIN][..., 3] == 255).all() for px in words)


def test_a_counter_too_small_for_a_seed_shows_the_button_under_the_words() -> None:
    """A white "o" on a dark button, its counter three by two pixels: too small for a
    seed, it grows into the letter, and shows the button's colour, anti-aliased with the
    letter's, far from any edge of the button. It is the button seen through the letter,
    not a glyph of its own."""
    image = np.zeros((80, 140, 4), np.uint8)
    image[..., :3] = PAGE
    image[..., 3] = 255
    image[20:60, 20:120, :3] = (80, 20, 40)  # the button
    image[30:38, 40:49, :3] = 255  # the letter: a ring three pixels thick
    image[33:35, 43:46, :3] = (141, 102, 115)  # its counter: the button, a third white
    image[30:38, 60:66, :3] = 255  # another letter beside it
    f = segment.channels(image)
    flat = segment.flat_pixels(f)
    background = segment.estimate_background(f, flat)
    labels, _ = regions.find_regions(f, flat, background)
    counter = labels[33:35, 43:46]
    assert (counter == counter[0, 0]).all()
    assert counter[0, 0] in (labels[31, 41], labels[25, 25])  # the letter's or the button's


def test_a_glyph_speck_on_a_pill_stays_off_the_card_shadow(monkeypatch) -> None:
    """A small dark glyph on a pill on a card with a soft drop shadow: the glyph is a
    speck of the pill, not of the shadow. The shadow is as dark as ink and its box
    holds the card and all on it, so as a word beside the glyph it took the glyph into
    the shadow's (here its card's) layer."""
    from scipy.ndimage import gaussian_filter

    from layerctl.backends.classic import pipeline

    h, w = 500, 600  # the glyph (112 px) is a speck: under MINOR of the canvas
    image = np.zeros((h, w, 4), np.float32)
    image[..., :3] = PAGE
    image[..., 3] = 255
    cast = np.zeros((h, w), np.float32)
    cast[84:184, 60:340] = 1.0
    shade = 0.25 * gaussian_filter(cast, 6)[..., None]
    image[..., :3] = image[..., :3] * (1 - shade) + np.array(INK) * shade
    image[80:180, 60:340, :3] = 255  # the card
    image[110:134, 250:310, :3] = (234, 172, 139)  # the pill
    image[115:129, 276:284, :3] = INK  # the glyph on it
    seen: dict = {}
    grouped = pipeline._layer_groups

    def spy(found, *args):
        seen["found"], seen["groups"] = found, grouped(found, *args)
        return seen["groups"]

    monkeypatch.setattr(pipeline, "_layer_groups", spy)
    pipeline.decompose(np.rint(image).astype(np.uint8), 8)

    def layer_at(y: int, x: int) -> int:
        (index,) = [
            i
            for i, r in enumerate(seen["found"])
            if regions.recrop(r.visible, r.box, ((slice(0, h)), slice(0, w)))[y, x]
        ]
        return next(g for g, members in enumerate(seen["groups"]) if index in members)

    assert layer_at(122, 280) == layer_at(112, 255)  # the glyph's layer is the pill's


def test_a_field_placeholder_is_no_part_of_the_field_outline() -> None:
    """A white field outlined in grey on the page, grey placeholder words in it: both
    grey pieces are around the field's white surface and the words lie in its box and
    the outline's, as a counter of a letter lies in the letter's and the card's. But the
    field is a surface (its outline fills its box): what its holes hold lies on it."""
    image = np.zeros((140, 320, 4), np.uint8)
    image[..., :3] = PAGE
    image[..., 3] = 255
    muted = (125, 125, 127)
    image[30:110, 20:300, :3] = muted  # the outline, 4 px wide
    image[34:106, 24:296, :3] = 255  # the field
    for k in range(5):  # the placeholder's glyphs
        image[60:76, 50 + 14 * k : 58 + 14 * k, :3] = muted
    f = segment.channels(image)
    flat = segment.flat_pixels(f)
    background = segment.estimate_background(f, flat)
    labels, _ = regions.find_regions(f, flat, background)
    assert labels[31, 100] != labels[68, 53]
