"""Filling unknown pixels smoothly: pull-push pyramids and a low-order trend.

Used to paint the background behind lifted elements and to spread an element's
interior colour into its anti-aliased rim.
"""

from __future__ import annotations

import numpy as np

MODEL_SIDE = 1024  # the background's holes are filled on a grid at most this long


def pull_push(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill pixels where ``known`` is 0 from nearby known pixels, keeping known ones.

    Pull-push interpolation (Gortler et al., "The Lumigraph", SIGGRAPH 1996, §3.4):
    average the known samples down a pyramid, then blend each level with the
    upsampled coarser one by the share of its cell that was known. O(pixels).
    ``values`` is (H, W, C) float32; ``known`` is (H, W) in 0..1 (a soft weight works).
    """
    import cv2

    weight = known.astype(np.float32)
    premul = values.astype(np.float32) * weight[..., None]
    levels = [(premul, weight)]
    while min(levels[-1][1].shape) > 1:
        p, w = levels[-1]
        size = (max(1, (w.shape[1] + 1) // 2), max(1, (w.shape[0] + 1) // 2))
        p = cv2.resize(p, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        levels.append((p, cv2.resize(w, size, interpolation=cv2.INTER_AREA)))
    p, w = levels[-1]
    total = float(w.sum())
    fallback = p.sum(axis=(0, 1)) / total if total > 0 else np.zeros(p.shape[-1], np.float32)
    colour = np.where(w[..., None] > 0, p / np.maximum(w, 1e-12)[..., None], fallback)
    for p, w in reversed(levels[:-1]):
        up = cv2.resize(colour, (w.shape[1], w.shape[0]), interpolation=cv2.INTER_LINEAR)
        up = up.reshape(w.shape[0], w.shape[1], -1)
        share = np.clip(w, 0.0, 1.0)[..., None]
        mean = p / np.maximum(w, 1e-12)[..., None]
        colour = np.where(share > 0, share * mean + (1 - share) * up, up)
    return colour.astype(np.float32)


def smooth_model(
    values: np.ndarray, known: np.ndarray, degree: int = 2, blur: float = 1.5, trend: bool = False
) -> np.ndarray:
    """A smooth estimate of ``values`` everywhere, from the pixels where ``known``.

    A flat design's background is usually a solid colour or a linear/radial gradient,
    which a least-squares degree-2 surface in (x, y) reproduces exactly under any hole;
    what the surface misses (texture, vignettes) is pulled-pushed into the holes and
    lightly blurred, so fine grain does not count as structure. ``trend``: the surface
    alone.
    """
    import cv2

    h, w = known.shape
    mask = known > 0.5
    if not mask.any():
        return np.zeros((h, w, values.shape[-1]), np.float32)
    ys, xs = np.nonzero(mask)
    step = max(1, ys.size // 20000)  # a subsample fits the surface just as well
    ys, xs = ys[::step], xs[::step]
    powers = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    x, y = _unit(xs, w), _unit(ys, h)
    a = np.stack([x**i * y**j for i, j in powers], axis=-1)
    coef, *_ = np.linalg.lstsq(a, values[ys, xs].astype(np.float64), rcond=None)
    # The surface, term by term: a canvas-sized matmul would start BLAS's threads
    # for a 6-wide product, slow and unsteady on a busy machine.
    x = _unit(np.arange(w), w).astype(np.float32)[None]
    y = _unit(np.arange(h), h).astype(np.float32)[:, None]
    surface = np.zeros((h, w, values.shape[-1]), np.float32)
    for (i, j), weights in zip(powers, coef.astype(np.float32), strict=True):
        surface += (x**i * y**j)[..., None] * weights
    if trend:
        return surface
    trend = surface
    residual = values.astype(np.float32) - trend
    scale = min(1.0, MODEL_SIDE / max(h, w))
    if scale < 1.0:  # holes are filled smoothly: a coarser grid does it as well, faster
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        weight = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        small = cv2.resize(residual * mask[..., None], size, interpolation=cv2.INTER_AREA)
        small = small.reshape(size[1], size[0], -1) / np.maximum(weight, 1e-6)[..., None]
        up = cv2.resize(pull_push(small, weight > 0.5), (w, h), interpolation=cv2.INTER_LINEAR)
        np.copyto(residual, up.reshape(h, w, -1), where=~mask[..., None])
    else:
        residual = pull_push(residual, mask)
    if blur > 0:
        residual = cv2.GaussianBlur(residual, (0, 0), blur).reshape(residual.shape)
    return np.add(trend, residual, out=trend)


def _unit(positions: np.ndarray, size: int) -> np.ndarray:
    """Pixel positions along a side of ``size`` mapped onto -1..1."""
    return positions.astype(np.float64) / max(size - 1, 1) * 2 - 1
