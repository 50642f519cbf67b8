"""See-through panels on a textured ground (paper, canvas weave, grain, noise).

Over a texture T a panel of colour C at opacity a shows I = a·C + (1 − a)·T: the
texture goes on under it, scaled by (1 − a). The difference of two neighbouring
pixels cancels C and the texture's slow shading alike, so the spread of those
differences inside the panel over their spread on the ground around it is (1 − a),
whatever C is; C then follows from the mean, C = (I − (1 − a)·U) / a with U the
ground's smooth model. On a flat ground nothing varies to measure (veil.py's tests
work there instead).
"""

from __future__ import annotations

import numpy as np

from layerctl.backends.classic import regions, veil
from layerctl.backends.classic.veil import Veil

GRAINY = 1.5  # σ (0..255) of the ground's neighbour differences from which it has a texture
RING = 24  # px around a region in which the ground's texture is measured
MARGIN = 2  # px of a region's edges (outline and holes) left out of its texture measure
MIN_PIXELS = 400  # neighbour pairs each side needs for a spread worth trusting
TRIM = 98.0  # percentile of |difference| above which a pair is an edge, not texture
QUANTISED = 2.0 / 36.0  # variance that uint8 rounding adds to a difference of means of RGB
OPACITY = (0.15, 0.9)  # a panel this see-through or less is one; more is opaque
SAME = 0.85  # share of the ground's texture spread from which a part is more of the ground
SHOWS = 0.1  # transparency above a ground below which it is hidden, not unveiled
SMOOTH = 3.0  # px: the blur that averages a texture's grain away, keeping a shadow's falloff
FALLOFF = veil.MIN_FALLOFF  # std of that blurred opacity above which it falls off
GAMUT = 12.0  # how far (0..255) outside 0..255 a fitted colour may fall (fit error)


def grainy(spread: float | None) -> bool:
    """Whether a ground whose neighbour differences spread this much has a texture."""
    return spread is not None and spread >= GRAINY * np.sqrt(2.0)


def spread(rgb: np.ndarray, mask: np.ndarray) -> float | None:
    """Robust σ of the differences between neighbouring pixels both in ``mask``
    (mean of R, G, B; edges trimmed, uint8 rounding taken out), or None when too few."""
    grey = rgb[..., :3].astype(np.float32).mean(axis=-1)
    pairs = [
        (grey[:, 1:] - grey[:, :-1])[mask[:, 1:] & mask[:, :-1]],
        (grey[1:] - grey[:-1])[mask[1:] & mask[:-1]],
    ]
    d = np.abs(np.concatenate(pairs))
    if d.size < MIN_PIXELS:
        return None
    d = d[d <= np.percentile(d, TRIM)]
    return float(np.sqrt(max(float(np.mean(d * d)) - QUANTISED, 0.0)))


def ground_beyond(source: np.ndarray, flat: np.ndarray, ground: np.ndarray) -> np.ndarray:
    """Flat parts on the canvas's edge outside ``ground`` (canvas bool), of some size
    (segment.SURFACE), whose texture is the ground's own (its spread in ``source`` at
    least SAME of the ground's; a panel over it leaves (1 − a) of it, an opaque
    element none): the ground beyond an element that spans the canvas, which its
    smooth model, learnt on one side, strays from by more than the threshold."""
    import cv2

    from layerctl.backends.classic.segment import SURFACE

    found = np.zeros_like(ground)
    own = spread(source, ground)
    if not grainy(own):
        return found
    _, parts, stats, _ = cv2.connectedComponentsWithStats(
        (flat & ~ground).astype(np.uint8), connectivity=4
    )
    edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    for i in edge[edge > 0]:
        x, y, w, h, area = stats[i]
        if area < SURFACE * flat.size:
            continue
        part = parts[y : y + h, x : x + w] == i
        theirs = spread(source[y : y + h, x : x + w], part)
        if theirs is not None and theirs >= SAME * own:
            found[y : y + h, x : x + w] |= part
    return found


def fit(source: np.ndarray, model: np.ndarray, ground: np.ndarray, box, visible) -> Veil | None:
    """The see-through colour of the region ``visible`` (a crop at ``box``) that lets
    the ground's texture show through, or None (no texture to measure, or the region
    is opaque). ``source`` is the canvas (uint8 RGBA, texture intact), ``model`` the
    ground's smooth model (float RGBA), ``ground`` the canvas mask of the ground."""
    import cv2

    wide = regions.grown(box, RING, ground.shape)
    inside = regions.recrop(visible, box, wide).astype(np.uint8)
    side = 2 * MARGIN + 1
    near = cv2.dilate(inside, np.ones((2 * RING + 1,) * 2, np.uint8)).astype(bool)
    outside = near & ~cv2.dilate(inside, np.ones((side, side), np.uint8)).astype(bool)
    outside &= cv2.erode(ground[wide].astype(np.uint8), np.ones((side, side), np.uint8)) > 0
    inner = cv2.erode(inside, np.ones((side, side), np.uint8)).astype(bool)
    crop = source[wide]
    around, within = spread(crop, outside), spread(crop, inner)
    if not grainy(around) or within is None:
        return None
    a = 1.0 - within / around
    if not OPACITY[0] < a < OPACITY[1]:
        return None
    seen = crop[inner][:, :3].astype(np.float64).mean(axis=0)
    under = model[wide][inner][:, :3].astype(np.float64).mean(axis=0)
    colour = (seen - (1.0 - a) * under) / a
    if colour.min() < -GAMUT or colour.max() > 255.0 + GAMUT:
        return None
    if _falls_off(crop, model[wide], inside, colour):
        return None
    return Veil(np.clip(colour, 0.0, 255.0), a, texture=True)


def _falls_off(crop: np.ndarray, model: np.ndarray, inside: np.ndarray, colour) -> bool:
    """Whether the opacity that the texture's local mean (blurred past its grain, away
    from the region's edges) shows varies over the region, as a soft shadow's does:
    one opacity is no answer for it."""
    import cv2

    side = 2 * int(3 * SMOOTH) + 1
    inner = cv2.erode(inside, np.ones((side, side), np.uint8)).astype(bool)
    if inner.sum() < MIN_PIXELS:
        return False
    mean = cv2.GaussianBlur(crop[..., :3].astype(np.float32), (0, 0), SMOOTH)[inner]
    under = model[..., :3][inner]
    diff = colour.astype(np.float32) - under
    a = ((mean - under) * diff).sum(axis=-1) / np.maximum((diff * diff).sum(axis=-1), 1.0)
    return float(a.std()) > FALLOFF


def flatten(alpha: np.ndarray, visible: np.ndarray, fitted: Veil) -> np.ndarray:
    """The alpha of a see-through panel: its one opacity inside, its lifted alpha (no
    higher) only on its anti-aliased outline, where the texture under it would
    otherwise show up as speckled opacity."""
    import cv2

    side = 2 * MARGIN + 1
    inner = cv2.erode(visible.astype(np.uint8), np.ones((side, side), np.uint8)).astype(bool)
    return np.where(inner, fitted.opacity, np.minimum(alpha, fitted.opacity)) * visible


def unveil(layers: list[np.ndarray], source: np.ndarray, where: np.ndarray) -> None:
    """Paint the bottom layer of ``layers`` (uint8 RGBA, bottom first), at ``where``
    (canvas bool: under see-through panels), with the ground that the layers above
    leave showing: (I − F) / t, F the premultiplied composite of those layers and t
    the transparency they leave. The texture goes on unveiled under the panels (the
    step that makes the layers lossless would otherwise spread it over the panels
    too), no ghost of them left; where they hide it (t < SHOWS) it stays as it was."""
    ys, xs = np.nonzero(where)
    if not ys.size:
        return
    box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    over = np.zeros((*where[box].shape, 3), np.float32)
    left = np.ones(where[box].shape, np.float32)
    for layer in layers[1:]:
        a = layer[box][..., 3].astype(np.float32) / 255.0
        over = over * (1.0 - a)[..., None] + layer[box][..., :3] * a[..., None]
        left *= 1.0 - a
    ground = (source[box][..., :3] - over) / np.maximum(left, SHOWS)[..., None]
    paint = where[box] & (left >= SHOWS)
    layers[0][box][..., :3][paint] = np.rint(np.clip(ground[paint], 0.0, 255.0)).astype(np.uint8)
