"""Text across shapes and strokes: which same-coloured pieces are one element."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl.backends.classic import pipeline, regions

pytest.importorskip("cv2")

WHITE, CARD, GROUND = (255, 255, 255), (40, 40, 70), (150, 130, 140)


def _labels(image: np.ndarray) -> np.ndarray:
    f, flat, background = pipeline.ground(image)
    labels, _ = regions.find_regions(f, flat, background)
    return labels


def _canvas() -> np.ndarray:
    image = np.zeros((160, 240, 4), np.uint8)
    image[..., :3] = GROUND
    image[..., 3] = 255
    return image


def test_a_shape_cut_in_two_by_a_band_stays_one_region() -> None:
    """A band across a square leaves two same-coloured pieces whose span the band
    fills: one surface under it."""
    image = _canvas()
    image[30:130, 60:160, :3] = (40, 120, 200)  # the square
    image[70:90, 20:220, :3] = (230, 80, 40)  # the band over it
    labels = _labels(image)
    assert labels[50, 110] and labels[50, 110] == labels[110, 110]


def test_a_disc_inside_a_page_border_of_its_colour_is_no_glyph_beside_it() -> None:
    """Same-coloured pieces close by are one element (the glyphs of a word) only when
    they lie side by side: a disc within a page border's box is its own element."""
    image = _canvas()
    image[8:152, 8:232, :3] = (110, 10, 180)  # the border ...
    image[12:148, 12:228, :3] = GROUND  # ... four pixels wide
    image[30:90, 40:100, :3] = (110, 10, 180)  # a square of its colour inside it
    image[60:100, 150:200, :3] = (240, 200, 40)  # and one of another colour
    labels = _labels(image)
    assert labels[10, 100] and labels[60, 70]
    assert labels[10, 100] != labels[60, 70]


def test_a_word_beside_a_large_patch_of_its_colour_stays_apart() -> None:
    """A small glyph a few pixels from a patch many times its height is no letter of
    it (a caption beside a photograph's dark coat)."""
    image = _canvas()
    image[20:140, 60:120, :3] = CARD  # the tall patch
    image[126:138, 126:134, :3] = CARD  # a glyph beside its foot
    image[126:138, 138:146, :3] = CARD  # and the next
    labels = _labels(image)
    assert labels[80, 90] and labels[130, 130]
    assert labels[80, 90] != labels[130, 130]


def test_a_shape_and_the_stroke_around_it_are_one_layer() -> None:
    """A disc outlined in another colour is one element, as design tools draw it: the
    stroke goes in the disc's layer, not in one of its own; a square beside it keeps
    its own layer."""
    from layerctl.backends.base import BackendSettings, DecomposeRequest
    from layerctl.backends.classic import ClassicBackend

    image = _canvas()
    yy, xx = np.mgrid[:160, :240]
    distance = np.hypot(yy - 80, xx - 70)
    image[distance <= 44, :3] = (40, 90, 230)  # the stroke ...
    image[distance <= 38, :3] = (200, 40, 60)  # ... around the disc
    image[50:110, 150:210, :3] = (240, 200, 40)  # a square apart
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=4))
    stroke = [px for px in layers[1:] if px[80, 70 + 41, 3] > 0]
    assert len(stroke) == 1  # the stroke is in one layer ...
    assert tuple(stroke[0][80, 70]) == (200, 40, 60, 255)  # ... with the disc on top
    assert stroke[0][80, 180, 3] == 0  # the square in another


def test_a_title_across_a_card_and_the_label_on_it_stay_apart() -> None:
    """A title straddling a card's top edge and a label on the card, both white, both
    lie on the card: two elements, not one surface the card cuts (cards with a heading:
    one region put the label in the title's layer, under the card)."""
    image = _canvas()
    image[50:140, 120:200, :3] = CARD  # the card
    image[40:60, 20:190, :3] = WHITE  # the title, across the card's top edge
    image[110:120, 135:185, :3] = WHITE  # the label on the card
    labels = _labels(image)
    assert labels[50, 60] and labels[115, 160]
    assert labels[50, 60] != labels[115, 160]
