"""The classic decomposition: background, elements with soft edges, layers."""

from __future__ import annotations

import numpy as np
from layerctl.backends.classic import group, matting, segment


def decompose(image: np.ndarray, layers: int) -> list[np.ndarray]:
    """``layers`` full-canvas RGBA uint8 layers, bottom first, that composite to ``image``.

    Layer 0 is the background, painted in behind everything lifted off it. Elements
    (connected pieces of foreground) are grouped into the other ``layers - 1``; when
    there are fewer elements than that, the spare layers are empty and come last (top).
    """
    import cv2

    h, w = image.shape[:2]
    f = segment.channels(image)
    background = segment.estimate_background(image)
    found = segment.elements(background)
    touching = cv2.dilate(background.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    alphas, colours, features = [], [], []
    for element in found:
        rows, cols = element.box
        alpha, colour = matting.lift(
            f[rows, cols],
            background.model[rows, cols],
            element.mask,
            element.mask & touching[rows, cols],
        )
        alphas.append(alpha)
        colours.append(colour)
        features.append(_features(element, alpha, colour, (h, w)))
    out = [_background_layer(image, background)]
    slots = layers - 1
    if slots > 0:
        groups = group.group(np.array(features).reshape(len(found), -1), slots) if found else []
        for members in groups:
            layer = np.zeros((h, w, 4), np.float32)
            for i in members:
                rows, cols = found[i].box
                region = found[i].mask
                layer[rows, cols, :3][region] = colours[i][region]
                layer[rows, cols, 3][region] = alphas[i][region] * 255.0
            out.append(_to_uint8(layer))
        out.extend(np.zeros((h, w, 4), np.uint8) for _ in range(slots - len(groups)))
    elif found:  # one layer asked for: it is the image itself
        out[0] = image.copy()
    return out


def _background_layer(image: np.ndarray, background: segment.Background) -> np.ndarray:
    """The input where the background shows, its smooth model under the elements."""
    model = background.model
    opacity = model[..., 3:4] / 255.0
    straight = np.where(opacity > 1e-3, model[..., :3] / np.maximum(opacity, 1e-3), 0.0)
    filled = np.concatenate([straight, model[..., 3:4]], axis=-1)
    layer = np.where(background.mask[..., None], image.astype(np.float32), filled)
    return _to_uint8(layer)


def _features(element: segment.Element, alpha: np.ndarray, colour: np.ndarray, size) -> np.ndarray:
    rows, cols = element.box
    weight = alpha * element.mask
    total = max(float(weight.sum()), 1e-6)
    mean = (colour * weight[..., None]).sum(axis=(0, 1)) / total / 255.0
    ys, xs = np.nonzero(element.mask)
    diagonal = float(np.hypot(*size))
    centre = np.array([(ys.mean() + rows.start) / diagonal, (xs.mean() + cols.start) / diagonal])
    return np.concatenate([mean, centre])


def _to_uint8(layer: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(layer), 0, 255).astype(np.uint8)
