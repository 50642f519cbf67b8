"""Light app screens: a white card on a page a few levels off white is an element of
its own, not part of the page it sits on."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl import refine
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, segment

pytest.importorskip("cv2")

PAGE = (250, 251, 250)  # a light UI's page: lightness 0.98, five levels under white
CARD = (slice(40, 120), slice(30, 250))  # rows, cols of the white card
AVATAR = (slice(60, 100), slice(50, 90))  # a dark square on the card


def screen() -> np.ndarray:
    """RGBA uint8: a white card holding a dark avatar on the light page, no shadow."""
    image = np.zeros((160, 280, 4), np.uint8)
    image[..., :3] = PAGE
    image[..., 3] = 255
    image[CARD][..., :3] = 255
    image[AVATAR][..., :3] = (40, 60, 90)
    return image


def test_a_white_card_five_levels_off_the_page_is_its_own_layer() -> None:
    """The page has no grain, so five levels of lightening are a designed step, not
    noise: the card is lifted whole and the page behind it stays the page's colour."""
    image = screen()
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=3))
    layers = refine.make_lossless(list(layers), image)
    assert np.abs(layers[0][100, 200, :3].astype(int) - PAGE).max() <= 1  # page behind it
    card = [px for px in layers[1:] if px[110, 240, 3] == 255]
    assert card, "no layer holds the card's corner"
    assert (card[0][CARD][..., 3] == 255).all()  # the whole card, under its avatar too


def test_a_faint_fringe_on_a_transparent_ground_stays_ground() -> None:
    """Elements on transparency keep the wider step: a stroke's anti-aliased fringe of a
    few alpha levels is transparent ground, not a ring of specks beside the stroke."""
    image = np.zeros((120, 160, 4), np.uint8)
    image[..., :3] = 255
    image[40:80, 50:110] = (230, 150, 30, 255)  # an orange block
    image[39, 50:110, 3] = 5  # its faint fringe above it
    f = segment.channels(image)
    background = segment.estimate_background(f, segment.flat_pixels(f))
    assert background.mask[39, 60:100].all()
    assert not background.mask[50, 60:100].any()
