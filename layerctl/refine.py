"""From a backend's raw layers to the layers we write: input size, input alpha, exactness.

A generative model's layers only approximate the input. ``make_lossless`` changes them
as little as possible (least squares, per pixel) so that their composite equals the input
to within uint8 rounding, while keeping the input's own alpha.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def to_size(layers: Sequence[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Resize RGBA layers to ``size`` (width, height) in premultiplied space (no halos)."""
    return [layer if layer.shape[1::-1] == size else _resize(layer, size) for layer in layers]


def _resize(layer: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    a = layer[..., 3:4].astype(np.float32) / 255.0
    premul = np.concatenate([layer[..., :3].astype(np.float32) * a, a * 255.0], axis=-1)
    channels = [
        np.asarray(Image.fromarray(premul[..., c]).resize(size, Image.Resampling.LANCZOS))
        for c in range(4)
    ]
    out = np.stack(channels, axis=-1).clip(0, 255)
    alpha = out[..., 3:4] / 255.0
    rgb = np.divide(out[..., :3], alpha, out=np.zeros_like(out[..., :3]), where=alpha > 1e-6)
    result = np.empty(out.shape, np.uint8)
    result[..., :3] = np.rint(rgb.clip(0, 255))
    result[..., 3] = np.rint(out[..., 3])
    return result


def make_lossless(layers: Sequence[np.ndarray], image: np.ndarray) -> list[np.ndarray]:
    """Adjust ``layers`` (bottom first) so their composite equals ``image``.

    Alpha: foreground layers keep theirs (scaled down only where they are more opaque
    than the input); the bottom layer's alpha is solved so the total equals the input's.
    Colour: the residual is spread over the layers in proportion to how much each one
    shows at that pixel (the least-squares smallest change), repeated while clipping to
    0..255 leaves some of it. Exact up to uint8 rounding (≤ 1 per channel).
    """
    alphas = np.stack([layer[..., 3] for layer in layers]).astype(np.float64) / 255.0
    colors = np.stack([layer[..., :3] for layer in layers]).astype(np.float64)
    target_a = image[..., 3].astype(np.float64) / 255.0
    target_rgb = image[..., :3].astype(np.float64)

    alphas = _solve_alpha(alphas, target_a)
    alphas = np.rint(alphas * 255.0) / 255.0  # work with the alphas we will store
    weights = _visibility(alphas)  # (N, H, W): how much of each layer shows
    total = weights.sum(axis=0)
    shown = total > 0
    target = target_rgb * total[..., None]  # premultiplied target colour
    for _ in range(4):
        residual = target - np.einsum("nhw,nhwc->hwc", weights, colors)
        free = (colors > 0) | (residual[None] > 0)
        free &= (colors < 255) | (residual[None] < 0)
        w = weights[..., None] * free
        norm = (w * w).sum(axis=0)
        step = np.divide(residual, norm, out=np.zeros_like(residual), where=norm > 1e-12)
        colors = (colors + w * step[None]).clip(0, 255)
    colors = np.where(shown[None, ..., None], colors, np.stack([c[..., :3] for c in layers]))
    out = np.empty((len(layers), *image.shape), np.uint8)
    out[..., :3] = np.rint(colors)
    out[..., 3] = np.rint(alphas * 255.0)
    return list(out)


def _solve_alpha(alphas: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Bottom alpha such that 1 − Π(1 − a_i) equals ``target`` at every pixel."""
    fg = alphas[1:]
    # Where the foreground alone is more opaque than the input, scale it down (bisection).
    lo, hi = np.zeros_like(target), np.ones_like(target)
    for _ in range(30):
        mid = (lo + hi) / 2
        too_much = 1 - np.prod(1 - fg * mid, axis=0) > target
        hi = np.where(too_much, mid, hi)
        lo = np.where(too_much, lo, mid)
    fg = fg * lo
    cover = np.prod(1 - fg, axis=0)  # transparency left by the foreground
    # Where the foreground hides the bottom layer (almost) completely, any alpha gives the
    # same composite: keep the layer's own, so a background is not holed under elements.
    shows = cover > 1 / 512
    solved = np.divide(cover - (1 - target), cover, out=alphas[0].copy(), where=shows)
    return np.concatenate([solved.clip(0, 1)[None], fg])


def _visibility(alphas: np.ndarray) -> np.ndarray:
    """w_i = a_i · Π_{j>i}(1 − a_j): the share of layer i in the "over" composite."""
    above = np.ones_like(alphas[0])
    weights = np.empty_like(alphas)
    for i in range(len(alphas) - 1, -1, -1):
        weights[i] = alphas[i] * above
        above = above * (1 - alphas[i])
    return weights
