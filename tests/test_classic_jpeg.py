"""JPEG'd flat designs: what JPEG itself does to a design (smeared edges, ringing,
block noise) must not change which elements the classic backend finds."""

from __future__ import annotations

import io

import numpy as np
import pytest

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, segment

pytest.importorskip("cv2")
Image = pytest.importorskip("PIL.Image")

GROUND = (220, 230, 235)  # a light page
CARD = (11, 19, 43)  # a navy card on it
PHOTO = (19, 20, 21)  # a dark avatar half on the card: 22 levels off it, in blue
SIZE = (240, 320)


def jpeg(rgb: np.ndarray, quality: int = 85, subsampling: int = 2) -> np.ndarray:
    """``rgb`` through a JPEG encoder (4:2:0 by default, as most encoders), as RGBA."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGBA"))


def profile_card(quality: int = 85, subsampling: int = 2) -> np.ndarray:
    """A dark disc (an avatar) over the top edge of a navy card on a light page."""
    ys, xs = np.mgrid[: SIZE[0], : SIZE[1]]
    rgb = np.zeros((*SIZE, 3), np.uint8)
    rgb[:] = GROUND
    rgb[(ys >= 80) & (ys < 200) & (xs >= 40) & (xs < 280)] = CARD
    rgb[(ys - 80) ** 2 + (xs - 160) ** 2 < 45**2] = PHOTO
    return jpeg(rgb, quality, subsampling)


def test_a_jpeg_edge_of_a_few_tens_of_levels_parts_two_flat_areas() -> None:
    """JPEG smears the disc's 22-level step onto the card over several pixels, each
    under the flat test's step: the disc's flat pixels and the card's must not be one
    connected flat area (they would be one region, one layer)."""
    import cv2

    image = profile_card()
    assert segment.compressed(image)
    flat = segment.flat_pixels(segment.channels(segment.deblocked(image)), smeared=True)
    _, parts = cv2.connectedComponents(flat.astype(np.uint8), connectivity=4)
    assert parts[110, 160] and parts[190, 50]  # the disc's middle, the card's corner
    assert parts[110, 160] != parts[190, 50]


def test_a_jpeg_gradient_stays_flat() -> None:
    """A designed gradient rises by under a level per pixel: no ramp of an edge."""
    ramp = np.linspace(30, 230, SIZE[1]).astype(np.uint8)
    rgb = np.repeat(np.broadcast_to(ramp[None, :, None], (*SIZE, 1)), 3, axis=-1)
    image = jpeg(np.ascontiguousarray(rgb), quality=75)
    flat = segment.flat_pixels(segment.channels(segment.deblocked(image)), smeared=True)
    assert flat[8:-8, 8:-8].mean() > 0.99


@pytest.mark.parametrize(("quality", "subsampling"), [(75, 2), (85, 2), (85, 0)])
def test_a_dark_avatar_on_a_navy_card_is_its_own_layer_after_jpeg(
    quality: int, subsampling: int
) -> None:
    """The disc is lifted as a layer of its own, not joined to the card: the card's
    layer does not hold the disc's middle, the disc's does not hold the card's corner."""
    image = profile_card(quality, subsampling)
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=3))
    disc = [k for k, px in enumerate(layers) if k and px[110, 160, 3] > 200]
    card = [k for k, px in enumerate(layers) if k and px[190, 50, 3] > 200]
    assert disc and card
    assert disc[-1] not in card
