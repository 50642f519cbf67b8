"""``-n auto``: the colour-cluster rule of layerctl.auto."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from layerctl.auto import suggest_layers


def _canvas(colour=(240, 236, 220)) -> np.ndarray:
    image = np.zeros((60, 80, 4), np.uint8)
    image[...] = (*colour, 255)
    return image


def test_flat_regions_count_and_soft_edges_do_not(flat_design):
    assert suggest_layers(flat_design) == 3  # background, disc, bar (anti-aliased edges)


def test_a_gradient_is_one_layer():
    image = _canvas()
    image[..., 0] = np.linspace(100, 180, 80).astype(np.uint8)[None, :]  # a smooth ramp
    image[20:40, 30:50, :3] = (20, 200, 60)
    assert suggest_layers(image) == 2


def test_clamped_between_two_and_max_layers():
    image = _canvas()
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]):
        image[5 + 12 * i : 15 + 12 * i, 10:70, :3] = colour
    assert suggest_layers(image, 8) == 5
    assert suggest_layers(image, 3) == 3
    assert suggest_layers(_canvas()) == 2  # one colour still gives two layers
    assert suggest_layers(np.zeros((8, 8, 4), np.uint8)) == 2  # fully transparent


def test_transparent_pixels_are_ignored():
    image = _canvas((200, 0, 0))
    image[:, :40, 3] = 0  # half the canvas is transparent, whatever its colour
    image[:, :40, :3] = (0, 0, 255)
    assert suggest_layers(image) == 2


def test_classic_finds_the_count_itself(flat_design):
    """A backend that never pads (classic) is asked for ``--max-layers`` and keeps what
    it finds; the count is not a shortfall to report."""
    from layerctl.decomposer import Decomposer
    from layerctl.imageio import InputImage

    source = InputImage(flat_design, Path("design.png"), "0" * 64)
    stack = Decomposer.open("classic", layers="auto", max_layers=6)(source)
    assert [layer.name for layer in stack.layers] == ["Background", "Shape 1", "Shape 2"]
    assert stack.metadata["parameters"]["layers"] == 6
    assert stack.metadata["notes"] == []
