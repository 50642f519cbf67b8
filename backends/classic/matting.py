"""Soft alpha for an element lifted off what lies under it, by colour unblending.

At an anti-aliased edge a pixel is I = a·F + (1 − a)·U: F the element's own colour
(spread outwards from its interior), U the colour under it (the background model).
Projecting I − U onto F − U gives a (the closed-form two-colour matting step of
Chuang et al., "A Bayesian approach to digital matting", CVPR 2001, with known F and
U); the element's colour is then unblended as F' = U + (I − U) / a, so that compositing
the layer over U gives back I.
"""

from __future__ import annotations

import numpy as np

MIN_CONTRAST = 12.0  # below this |F − U| the projection is noise: trust the mask instead
MIN_UNBLEND = 0.1  # below this alpha, unblended colour is too noisy: use F


def lift(
    image: np.ndarray, under: np.ndarray, own: np.ndarray, mask: np.ndarray, core: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Alpha (0..1) and straight colour (0..255) of an element over ``under``.

    ``image``, ``under`` and ``own`` (the element's colour, everywhere) are
    premultiplied RGBA float crops (see segment.channels); ``mask`` marks the
    element's pixels and ``core`` those surely covered by it (alpha 1).
    """
    diff = own - under
    contrast = (diff * diff).sum(axis=-1)
    projected = ((image - under) * diff).sum(axis=-1) / np.maximum(contrast, 1e-6)
    alpha = np.where(contrast > MIN_CONTRAST**2, projected, 1.0)
    alpha = np.where(core, 1.0, np.clip(alpha, 0.0, 1.0)) * mask
    safe = np.maximum(alpha, MIN_UNBLEND)[..., None]
    unblended = under + (image - under) / safe
    rgba = np.where((alpha >= MIN_UNBLEND)[..., None], unblended, own)
    rgba = np.clip(rgba, 0.0, 255.0)
    # Premultiplied RGBA (by the pixel's own opacity) back to straight colour and alpha.
    opacity = rgba[..., 3:4] / 255.0
    colour = np.where(opacity > 1e-3, rgba[..., :3] / np.maximum(opacity, 1e-3), 0.0)
    return alpha * opacity[..., 0], np.clip(colour, 0.0, 255.0)


def thin_core(image: np.ndarray, under: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """For hairlines with no flat interior: the pixels farthest from what lies under."""
    distance = np.abs(image - under).max(axis=-1) * mask
    return mask & (distance >= 0.7 * distance.max())
