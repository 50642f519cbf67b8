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


LENDER = 0.1  # alpha from which a layer at a pixel takes the opacity the bottom would
CHUNK_PIXELS = 1 << 18  # refined in bands of rows about this large: memory stays bounded


def make_lossless(layers: Sequence[np.ndarray], image: np.ndarray) -> list[np.ndarray]:
    """Adjust ``layers`` (bottom first) so their composite equals ``image``.

    Alpha: foreground layers keep theirs (scaled down only where they are more opaque
    than the input); the bottom layer's alpha is solved so the total equals the input's.
    Colour: where the composite is not yet the input, the residual is spread over the
    layers in proportion to how much each one shows at that pixel (the least-squares
    smallest change), repeated while clipping to 0..255 leaves some of it; pixels that
    already composite to the input are left as they are. Exact up to uint8 rounding
    (≤ 1 per channel). Works on bands of rows, so its memory does not grow with the
    canvas beyond the copies it returns.
    """
    out = [np.array(layer, np.uint8) for layer in layers]
    height, width = image.shape[:2]
    rows = max(1, CHUNK_PIXELS // max(width, 1))
    for top in range(0, height, rows):
        band = slice(top, min(top + rows, height))
        _refine_band([layer[band] for layer in out], image[band])
    return out


def _refine_band(layers: list[np.ndarray], image: np.ndarray) -> None:
    """make_lossless on one band, in place on ``layers`` (views into the results)."""
    alphas = np.stack([layer[..., 3] for layer in layers]).astype(np.float64) / 255.0
    stored = np.rint(_solve_alpha(alphas, image[..., 3] / 255.0) * 255.0)
    for layer, alpha in zip(layers, stored, strict=True):
        layer[..., 3] = alpha
    # Most pixels (the background where it shows, the inside of opaque elements)
    # already composite to the input: only the others are solved, as flat lists.
    ys, xs = np.nonzero(_off_target(layers, image))
    if not ys.size:
        return
    weights = _visibility(stored[:, ys, xs] / 255.0)  # (N, K): how much of each layer shows
    total = weights.sum(axis=0)
    colors = np.stack([layer[ys, xs, :3] for layer in layers]).astype(np.float64)
    target = image[ys, xs, :3].astype(np.float64) * total[:, None]  # premultiplied
    for _ in range(4):
        residual = target - np.einsum("nk,nkc->kc", weights, colors)
        free = (colors > 0) | (residual[None] > 0)
        free &= (colors < 255) | (residual[None] < 0)
        w = weights[..., None] * free
        norm = (w * w).sum(axis=0)
        step = np.divide(residual, norm, out=np.zeros_like(residual), where=norm > 1e-12)
        colors = (colors + w * step[None]).clip(0, 255)
    shown = total > 0
    ys, xs = ys[shown], xs[shown]
    for layer, color in zip(layers, colors[:, shown], strict=True):
        layer[ys, xs, :3] = np.rint(color)


def _off_target(layers: list[np.ndarray], image: np.ndarray) -> np.ndarray:
    """(h, w) bool: where the layers' composite differs from ``image`` in colour.

    Where one opaque layer has nothing visible above it, the composite is that layer's
    colour, compared in uint8; the general float compositor runs on the other pixels.
    """
    from layerctl.stack import composite

    rgb = np.zeros((*image.shape[:2], 3), np.uint8)
    single = np.zeros(image.shape[:2], bool)
    clear = np.ones(image.shape[:2], bool)  # nothing visible above, so far
    for layer in reversed(layers):
        alpha = layer[..., 3]
        top = clear & (alpha == 255)
        np.copyto(rgb, layer[..., :3], where=top[..., None])
        single |= top
        clear &= alpha == 0
    off = (rgb != image[..., :3]).any(axis=-1)
    ys, xs = np.nonzero(~single & (image[..., 3] > 0))
    mixed = composite([layer[ys, xs][:, None] for layer in layers])[:, 0, :3]
    off[ys, xs] = (mixed != image[ys, xs, :3]).any(axis=-1)
    return off & (image[..., 3] > 0)


def _solve_alpha(alphas: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Bottom alpha such that 1 − Π(1 − a_i) equals ``target`` at every pixel."""
    fg = alphas[1:]
    # Where the foreground alone is more opaque than the input, scale it down (bisection
    # on those pixels only: elsewhere the scale is 1).
    over = 1 - np.prod(1 - fg, axis=0) > target
    if over.any():
        part, goal = fg[:, over], target[over]
        lo, hi = np.zeros_like(goal), np.ones_like(goal)
        for _ in range(30):
            mid = (lo + hi) / 2
            too_much = 1 - np.prod(1 - part * mid, axis=0) > goal
            hi = np.where(too_much, mid, hi)
            lo = np.where(too_much, lo, mid)
        fg[:, over] = part * lo
    cover = np.prod(1 - fg, axis=0)  # transparency left by the foreground
    # Where the foreground hides the bottom layer (almost) completely, any alpha gives the
    # same composite: keep the layer's own, so a background is not holed under elements.
    shows = cover > 1 / 512
    solved = np.divide(cover - (1 - target), cover, out=alphas[0].copy(), where=shows)
    # Where the bottom layer holds nothing but a layer above it does (an element's rim
    # on a transparent ground), that layer takes the missing opacity, not the bottom:
    # a layer growing a halo under another's edge would overlap it.
    lend = shows & (alphas[0] == 0) & (solved > 0) & (fg.max(axis=0, initial=0) >= LENDER)
    if lend.any():
        part = fg[:, lend]
        k = part.argmax(axis=0)
        cols = np.arange(part.shape[1])
        others = cover[lend] / (1 - part[k, cols])  # the transparency of the rest
        part[k, cols] = 1 - (1 - target[lend]) / others
        fg[:, lend] = part
        solved[lend] = 0.0
    return np.concatenate([solved.clip(0, 1)[None], fg])


def _visibility(alphas: np.ndarray) -> np.ndarray:
    """w_i = a_i · Π_{j>i}(1 − a_j): the share of layer i in the "over" composite."""
    above = np.ones_like(alphas[0])
    weights = np.empty_like(alphas)
    for i in range(len(alphas) - 1, -1, -1):
        weights[i] = alphas[i] * above
        above = above * (1 - alphas[i])
    return weights
