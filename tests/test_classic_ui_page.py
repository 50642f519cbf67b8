"""The page of a light app screen (issue 13, designs/ui_screens): white bars along its
edges are no page, the faint shadows of cards that reach its edges do not bend the
page's colour, and the open page between elements stays the page."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl.backends.classic import segment

cv2 = pytest.importorskip("cv2")

PAGE = 250.0  # a light UI's page, five levels under white


def canvas(h: int, w: int, value: float = PAGE) -> np.ndarray:
    """Premultiplied opaque RGBA float32, one grey everywhere."""
    f = np.full((h, w, 4), value, np.float32)
    f[..., 3] = 255.0
    return f


def phone() -> np.ndarray:
    """RGBA uint8, 240×480: a white app bar and tab bar, four white cards whose soft
    shadows (15 %) reach into the page along the side edges; drawn at 4×, box-filtered."""
    h, w, s = 480, 240, 4
    big = np.full((h * s, w * s, 3), PAGE, np.float32)
    big[: 40 * s] = 255.0
    big[h * s - 44 * s - 2 :] = 255.0  # its edge half a pixel off the grid
    cards = (66, 158, 250, 342)
    shade = np.zeros((h * s, w * s), np.float32)
    for top in cards:
        cv2.rectangle(shade, (16 * s, (top + 3) * s), ((w - 16) * s, (top + 63) * s), 1.0, -1)
    big *= 1.0 - 0.15 * cv2.GaussianBlur(shade, (0, 0), 4 * s)[..., None]
    for top in cards:
        big[top * s : (top + 60) * s, 16 * s : (w - 16) * s] = 255.0
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = np.rint(cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA))
    return out


def test_an_app_bar_and_a_tab_bar_on_a_light_page_are_no_ground() -> None:
    """The page shows along the side edges only, between the bars, and the cards'
    shadows reach into it there: the bars are elements, the page is ground."""
    f = segment.channels(phone())
    background = segment.estimate_background(f, segment.flat_pixels(f))
    assert not background.mask[:38].any()  # the app bar
    assert not background.mask[-42:].any()  # the tab bar
    assert background.mask[140:150, :4].all() and background.mask[300:330, -4:].all()


def test_a_tab_bar_larger_than_each_strip_of_the_page_is_no_ground() -> None:
    """A coloured app bar leaves the page to show along the side edges only, in two
    strips, each smaller along the edges than a tall white tab bar: the page is the
    colour that holds the most of the edges, not the largest single piece."""
    image = np.full((480, 240, 4), 255, np.uint8)
    image[:, :, :3] = 248
    image[:40, :, :3] = (30, 90, 200)  # the app bar
    image[380:, :, :3] = 255  # the tab bar
    f = segment.channels(image)
    background = segment.estimate_background(f, segment.flat_pixels(f))
    assert not background.mask[382:].any()
    assert background.mask[60:370].all()


def test_white_bars_behind_an_anti_aliased_edge_are_no_page() -> None:
    """A white app bar and tab bar along the top and bottom edges meet the page through
    one anti-aliased row (250, 252, 255): no two neighbours differ by the 3-level step,
    yet the bars are another colour than the page along the left and right edges."""
    f = canvas(400, 160)
    f[:30, :, :3] = 255.0
    f[30, :, :3] = 252.0
    f[-31, :, :3] = 253.0
    f[-30:, :, :3] = 255.0
    band = segment._edge_band(f.shape[:2])
    page = segment._page(f, band)
    assert not page[:30].any() and not page[-30:].any()
    assert page[60:340, :4].all()  # the page along the side edges


def test_card_shadows_at_the_side_edges_do_not_bend_the_page() -> None:
    """The page shows only along the left and right edges (bars above and below), and
    the soft shadows of the cards reach into those bands: the page's surface is still
    its colour across the middle of the screen, not a sag that reads the open page as
    a lighter step."""
    f = canvas(400, 300)
    band = segment._edge_band(f.shape[:2])
    band[:40] = band[-40:] = False  # bars along the top and bottom edges
    dist = np.minimum(np.arange(300), np.arange(300)[::-1]).astype(np.float32)
    darker = np.where(dist >= 4, 4.0 * dist / 12.0, 0.0)  # from 4 px in, darker further in
    for top in range(60, 340, 70):  # the cards' rows
        f[top : top + 40, :, :3] -= darker[None, :, None]
    surface = segment._page_surface(f, band)
    assert np.abs(surface[200, 150, :3] - PAGE).max() <= 1.5


def test_the_open_page_under_a_sagging_model_stays_the_page() -> None:
    """A smooth model that sags a few levels in the middle of a grain-free page reads
    the open page there as a lighter step with no edge; it is the page's very colour,
    and the white card beside it, a real step, stays an element."""
    f = canvas(200, 200)
    f[20:60, 20:180, :3] = 255.0  # a white card
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float32)
    sag = 5.0 * np.exp(-((yy - 140) ** 2 + (xx - 100) ** 2) / (2 * 40.0**2))
    model = f.copy()
    model[..., :3] = PAGE - sag[..., None]
    residual = segment.largest_difference(f, model)
    areas = segment._colour_areas(f)
    mask = segment._ground_mask(f, model, residual, segment.MIN_THRESHOLD, areas)
    assert mask[140, 100] and mask[100:200].all()
    assert not mask[30:50, 30:170].any()
