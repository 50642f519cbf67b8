"""Pieces of a gradient ground between elements stay ground (issue 13, synthetic/gradients
#3): the ground's model learns a margin away from the elements, so in a narrow channel
between two of them, or under a radial gradient's middle, it is extrapolated and off by
more than the threshold. Such a piece, reached from the ground by flat steps alone and
smooth with it, is ground; a soft shadow's body, flat-connected too, is not."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, segment

cv2 = pytest.importorskip("cv2")

CENTRE = (75, 100)  # the radial gradient's middle (row, column) on a 150×200 canvas


BRIGHT = ((220, 120, 160), (60, 20, 50))  # pink in the middle to dark purple at the corners
DARK = ((40, 60, 120), (230, 200, 150))  # navy in the middle to sand at the corners


def radial(colours: tuple = BRIGHT, h: int = 150, w: int = 200) -> np.ndarray:
    """RGBA uint8: a radial gradient from the first colour at CENTRE to the second."""
    y, x = np.mgrid[:h, :w].astype(np.float32)
    r = np.hypot(x - CENTRE[1], y - CENTRE[0]) / np.hypot(w / 2, h / 2)
    r = np.clip(r, 0, 1)[..., None]
    rgb = np.array(colours[0], np.float32) * (1 - r) + np.array(colours[1], np.float32) * r
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = np.rint(rgb)
    return out


def two_cards(channel: int, colours: tuple = BRIGHT) -> np.ndarray:
    """The gradient with two cards side by side, a 4 px channel of ground between them
    from column ``channel``; the left card hides the gradient's middle."""
    image = radial(colours)
    image[35:115, 40:channel, :3] = (240, 220, 40)
    image[35:115, channel + 4 : 185, :3] = (30, 140, 150)
    return image


def ground(image: np.ndarray) -> np.ndarray:
    f = segment.channels(image)
    return segment.estimate_background(f, segment.flat_pixels(f)).mask


@pytest.mark.parametrize(("channel", "colours"), [(116, BRIGHT), (98, BRIGHT), (116, DARK)])
def test_a_channel_of_gradient_ground_between_two_cards_is_ground(
    channel: int, colours: tuple
) -> None:
    """Near the hidden middle (116) the model misses the channel by up to 35 levels;
    through the bright middle itself (98) its colour peaks there and nowhere the model
    saw. (Through a dark middle, a cone's apex, no degree-2 surface fits the channel.)"""
    mask = ground(two_cards(channel, colours))
    middle = mask[35:115, channel + 1 : channel + 3]  # the anti-aliased sides are rims
    assert middle.mean() > 0.95


def test_the_channel_joins_no_card_layer() -> None:
    """End to end: the channel stays in the background, so the cards' layers do not
    overlap through it."""
    image = two_cards(116)
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=3))
    above = np.max([layer[..., 3] for layer in layers[1:]], axis=0)
    assert (above[35:115, 117:119] < 16).mean() > 0.95


def soft_shadow(opacity: float = 0.2) -> np.ndarray:
    """A linear gradient ground with a card casting a soft black shadow (blur σ 6)."""
    h, w = 150, 200
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :, None]
    rgb = np.array((70, 150, 200), np.float32) * (1 - x) + np.array((200, 110, 60)) * x
    rgb = np.broadcast_to(rgb, (h, w, 3)).copy()
    shade = np.zeros((h, w), np.float32)
    shade[50:110, 70:140] = 1.0
    rgb *= 1.0 - opacity * cv2.GaussianBlur(shade, (0, 0), 6)[..., None]
    rgb[40:100, 60:130] = (250, 250, 250)
    out = np.full((h, w, 4), 255, np.uint8)
    out[..., :3] = np.rint(rgb)
    return out


def test_a_soft_shadow_on_a_gradient_stays_off_the_ground() -> None:
    """A faint (20 %) shadow's body below and right of the card darkens the ground as a
    black veil whose falloff has no edge, and one smooth surface with the ground around
    it would explain it: still no piece of the ground (taken as one, all of it was)."""
    mask = ground(soft_shadow())
    assert mask[102:108, 80:125].mean() < 0.75  # under the card
    assert mask[60:95, 131:137].mean() < 0.75  # right of it


def test_a_darker_or_lighter_veil_reads_as_one() -> None:
    under = np.tile(np.array([[180.0, 90.0, 60.0, 255.0]], np.float32), (10, 1))
    shade, glow, off = under.copy(), under.copy(), under.copy()
    shade[:, :3] *= 0.8  # a black veil at 20 %
    glow[:, :3] += 0.2 * (255.0 - glow[:, :3])  # a white one
    off[:, :3] += (-8.0, -17.0, -7.0)  # a gradient's colour the model missed
    assert segment._veil_like(shade, under) and segment._veil_like(glow, under)
    assert not segment._veil_like(off, under)
