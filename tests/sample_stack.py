"""A small layer stack that exercises every format feature, shared by the format tests."""

from __future__ import annotations

import numpy as np
from PIL import ImageCms

from layerctl.formats.canvas import clear_transparent
from layerctl.stack import Layer, LayerStack

W, H = 29, 19
UNICODE = "Ébène 文字 🎨"


def _patch(rng: np.random.Generator, box: tuple[int, int, int, int]) -> np.ndarray:
    """Random colour everywhere (also under alpha 0), random alpha inside ``box`` only."""
    pixels = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    pixels[..., 3] = 0
    left, top, right, bottom = box
    pixels[top:bottom, left:right, 3] = rng.integers(0, 256, (bottom - top, right - left))
    return pixels


def make_stack(opaque_background: bool = True) -> LayerStack:
    """Unicode names, groups two deep, an empty and a hidden layer, metadata and ICC."""
    rng = np.random.default_rng(7)
    background = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    if opaque_background:
        background[..., 3] = 255
    inner = Layer.group(
        "inner / group",
        [
            Layer("../escape", _patch(rng, (3, 2, 12, 9))),
            Layer("empty", np.zeros((H, W, 4), np.uint8)),
        ],
    )
    outer = Layer.group("Ébène group", [Layer("CON", _patch(rng, (10, 5, 29, 19))), inner])
    hidden = Layer("hidden", _patch(rng, (0, 0, 5, 5)), visible=False)
    layers = [Layer(UNICODE, background), outer, hidden, Layer("top", _patch(rng, (20, 0, 29, 4)))]
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    metadata = {
        "backend": "classic",
        "parameters": {"layers": 4, "prompt": "文字"},
        "seed": 42,
        "source": {"path": "in.png", "sha256": "ab" * 32},
        "layerctl": "0.1.0",
    }
    return LayerStack(layers, metadata, icc)


def tree(stack: LayerStack) -> list[tuple]:
    """Everything a round trip must keep, depth first; invisible colour cleared."""

    def walk(layers: list[Layer], depth: int) -> list[tuple]:
        out = []
        for layer in layers:
            pixels = clear_transparent(layer.pixels).tobytes()
            out.append((depth, layer.name, layer.visible, layer.is_group, pixels))
            out.extend(walk(layer.children, depth + 1))
        return out

    return walk(stack.layers, 0)
