"""Same-coloured shapes at two depths stay two elements (issue 13): a palette reuses its
colours, so a disc under a card and a disc on it, close together, are of one colour."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend

pytest.importorskip("cv2")

WHITE, ORANGE, TEAL, INK = (250, 250, 250), (235, 120, 60), (30, 140, 130), (30, 30, 40)


def discs_either_side_of_a_card() -> np.ndarray:
    """A teal disc under an orange card (across its top right corner) and another teal
    disc on the card (across its right edge, lower down) with a dark tag across it,
    drawn at 4× and box-filtered."""
    s = 4
    canvas = Image.new("RGB", (400 * s, 300 * s), WHITE)
    d = ImageDraw.Draw(canvas)
    d.ellipse([230 * s, 20 * s, 330 * s, 120 * s], fill=TEAL)
    d.rectangle([80 * s, 60 * s, 270 * s, 240 * s], fill=ORANGE)
    d.ellipse([225 * s, 150 * s, 315 * s, 240 * s], fill=TEAL)
    d.rectangle([280 * s, 185 * s, 330 * s, 205 * s], fill=INK)
    return np.asarray(canvas.convert("RGBA").reduce(s)).copy()


def test_a_disc_under_a_card_and_one_on_it_are_two_layers_either_side_of_it():
    image = discs_either_side_of_a_card()
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=5))
    assert len(layers) == 5

    def holding(x: int, y: int) -> int:
        """The top layer opaque at (x, y)."""
        return max(i for i, layer in enumerate(layers) if layer[y, x, 3] > 250)

    under, card, on = holding(300, 40), holding(150, 150), holding(300, 170)
    assert under < card < on
    # Each goes on whole under what lies on it: the card under the disc on it, the
    # disc under the card.
    assert layers[card][195, 250, 3] == 255
    assert layers[under][80, 250, 3] == 255
