"""The classic backend: N layers, exact-enough composite, soft edges, filled background."""

from __future__ import annotations

import numpy as np
import pytest
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend

from layerctl.stack import composite

pytest.importorskip("cv2")
pytest.importorskip("scipy")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def run(image: np.ndarray, n: int) -> list[np.ndarray]:
    return ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=n))


def test_available_without_importing() -> None:
    ok, why = ClassicBackend.available(BackendSettings())
    assert ok, why


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_n_layers_that_composite_to_the_input(flat_design: np.ndarray, n: int) -> None:
    layers = run(flat_design, n)
    assert len(layers) == n
    assert all(layer.shape == flat_design.shape and layer.dtype == np.uint8 for layer in layers)
    assert psnr(composite(layers), flat_design) >= 40.0


def test_background_is_filled_and_elements_have_soft_edges(flat_design: np.ndarray) -> None:
    background, *rest = run(flat_design, 3)
    assert (background[..., 3] == 255).all()
    # Under the disc the background is the cream paper colour, not red.
    assert np.abs(background[26, 28, :3].astype(int) - [240, 236, 220]).max() <= 3
    alpha = np.concatenate([layer[..., 3].ravel() for layer in rest])
    assert ((alpha > 0) & (alpha < 255)).sum() > 20  # anti-aliased rims are partial


def test_input_alpha_is_kept() -> None:
    image = np.zeros((40, 60, 4), np.uint8)
    image[10:30, 15:45] = (20, 200, 90, 255)
    layers = run(image, 2)
    assert psnr(composite(layers), image) >= 40.0
    assert composite(layers)[0, 0, 3] == 0


def test_default_backend_through_the_api(flat_design: np.ndarray) -> None:
    from layerctl import api

    stack = api.decompose(flat_design, 4, backend="classic")
    assert len(stack) == 4 and stack.metadata["backend"] == "classic"
    assert psnr(stack.composite(), flat_design) >= 40.0
