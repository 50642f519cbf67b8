"""Seeing through: regions that are a semi-transparent colour over what lies under them.

A drop shadow is black at a varying opacity; an overlay card is one colour at one
opacity. Both leave I = a·K + (1 − a)·U at every pixel (U: what lies under). Two
tests find them, each needing evidence the opaque reading lacks:

* a fixed black or white K with a per-pixel a that agrees across R, G and B and
  varies over the region (a shadow's soft falloff) or lies over a coloured U (where
  three channels agreeing is no coincidence);
* one a and K for the whole region, from the per-channel regression I = (1 − a)·U +
  a·K, when U varies under it (an overlay on a gradient or texture) and the three
  slopes agree.

An opaque flat colour (the region's own colour hardly varies) is never a veil.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

FLAT_STD = 2.0  # a region whose colour varies less than this is read as opaque
MIN_CONTRAST = 30.0  # channels where |K − U| is smaller say nothing about a
MAX_SPREAD = 0.06  # how far R, G and B may disagree on a
MIN_FALLOFF = 0.05  # std of a that shows a soft (shadow-like) falloff
FLAT_A = 0.03  # |a − median a| of the pixels that make up a flat core
MAX_FLAT_CORE = 0.5  # share of flat-core pixels above which a varying a is only a rim
STRONG = 0.5  # opacity of a strong shadow, for which MIN_FALLOFF and FLAT_A are set
SOLID_A = 0.85  # opacity no soft shadow or glow reaches: the solid body of an element
MAX_SOLID = 0.1  # share of pixels at SOLID_A or more above which a "falloff" is rims
STEEP = 0.15  # median change of a per pixel above which a "falloff" is an element's rims
MIN_CHROMA = 40.0  # under a coloured U, R, G and B agreeing on a is evidence enough
MIN_UNDER_STD = 4.0  # std of U that lets the regression see through
TRIM = 3.0  # × the median error of a first fit: pixels beyond it are left out of a veil's fit
MIN_KEPT = 0.8  # share of a region that must be the one veil the regression fits
MAX_RESIDUAL = 4.0  # rms error (0..255) of a fitted veil, plus 1.5 σ of the texture
ACROSS_ERROR = 3 * MAX_RESIDUAL  # most RGB error of a veil's colour read across an edge


@dataclass(frozen=True)
class Veil:
    colour: np.ndarray  # (3,) straight RGB 0..255
    opacity: float  # typical a (median)
    falloff: bool = False  # a varies over it: a soft shadow, which lies under its shape
    texture: bool = False  # the ground's texture shows through it (texture.fit): one a inside


def fit(image: np.ndarray, under: np.ndarray, grain: float = 0.0) -> Veil | None:
    """A veil explaining ``image`` over ``under`` ((n, 3) RGB 0..255), or None.

    ``grain`` is the σ of the background's texture, which the smooth ``under`` lacks.
    """
    if len(image) < 8 or image.std(axis=0).max() < FLAT_STD:
        return None
    return _fixed_colour(image, under) or _regression(image, under, MAX_RESIDUAL + 1.5 * grain)


def _fixed_colour(image: np.ndarray, under: np.ndarray) -> Veil | None:
    for k in (0.0, 255.0):
        den = k - under
        valid = np.abs(den) > MIN_CONTRAST
        if (valid.sum(axis=1) >= 2).mean() < 0.9:  # agreement needs two channels to agree
            continue
        a = np.where(valid, (image - under) / np.where(valid, den, 1.0), np.nan)
        with warnings.catch_warnings():  # a pixel no channel speaks for stays NaN: no veil
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nanmax(a, axis=1) - np.nanmin(a, axis=1)
            mean = np.nanmean(a, axis=1)
        chromatic = np.median(np.ptp(under, axis=1)) > MIN_CHROMA
        if np.percentile(spread, 90) > MAX_SPREAD or not (_soft(mean) or chromatic):
            continue
        if not 0.02 < np.median(mean) < 0.95 or mean.min() < -0.05 or mean.max() > 1.02:
            continue
        return Veil(np.full(3, k), float(np.median(mean)), _soft(mean))
    return None


def _soft(a: np.ndarray) -> bool:
    """Whether opacity ``a`` falls off over the region, as a blurred shadow's does.

    Dark text or a black shape over a light ground also reads as black at one opacity,
    its anti-aliased rim giving a some spread; but most of its pixels sit at that one
    opacity (a flat core), while a shadow's crescent is falloff almost throughout (small
    text is all rim too: see ``steep``). Nor does a blurred shadow or glow reach a
    solid body: dark text's glyphs, all rim at the median, still do. The spread and the
    core are measured against the shadow's own strength: a UI card's shadow at 0.15
    falls off as much, for its strength, as a poster's at 0.5.
    """
    scale = min(1.0, float(np.percentile(a, 95)) / STRONG)
    core = np.abs(a - np.median(a)) < FLAT_A * scale
    solid = np.mean(a >= SOLID_A)
    return bool(
        a.std() >= MIN_FALLOFF * scale and core.mean() < MAX_FLAT_CORE and solid < MAX_SOLID
    )


def _regression(image: np.ndarray, under: np.ndarray, tolerance: float) -> Veil | None:
    """One a and K from the per-channel fit image = (1 − a)·under + a·K, over the
    pixels the first fit explains (within TRIM × their median error): a drop shadow
    under a panel, or a crumb of a rim in it, is no part of the veil, and least squares
    would bend to it. Most of the region (MIN_KEPT) must be the one veil."""
    if under.std(axis=0).max() < MIN_UNDER_STD:
        return None
    channels = [c for c in range(3) if under[:, c].std() >= MIN_UNDER_STD / 2]
    design = np.stack([under, np.ones_like(under)], axis=-1)  # (n, 3, 2)
    errors = np.zeros(len(image))
    for c in channels:
        coef, *_ = np.linalg.lstsq(design[:, c], image[:, c], rcond=None)
        np.maximum(errors, np.abs(design[:, c] @ coef - image[:, c]), out=errors)
    keep = errors <= max(TRIM * float(np.median(errors)), 1.0)
    if keep.mean() < MIN_KEPT:
        return None
    image, under, design = image[keep], under[keep], design[keep]
    slopes, residual = [], []
    for c in channels:
        coef, *_ = np.linalg.lstsq(design[:, c], image[:, c], rcond=None)
        slopes.append(coef[0])
        residual.append(np.sqrt(np.mean((design[:, c] @ coef - image[:, c]) ** 2)))
    if not slopes or np.ptp(slopes) > MAX_SPREAD or max(residual) > tolerance:
        return None
    a = 1.0 - float(np.mean(slopes))
    if not 0.1 < a < 0.9:
        return None
    # With one shared a, K follows from every channel's intercept b = a·K.
    k = (image - (1 - a) * under).mean(axis=0) / a
    return Veil(np.clip(k, 0, 255), a)


def across(over_a: np.ndarray, under_a: np.ndarray, over_b: np.ndarray, under_b: np.ndarray):
    """The veil seen over two colours: ``over_a`` = a·K + (1 − a)·``under_a`` and
    likewise for b (mean RGB 0..255 of two neighbouring regions and of what lies under
    each), or None. An overlay that crosses a shape's edge gives two such equations
    per channel, so (1 − a) = (over_a − over_b) / (under_a − under_b) must agree
    across channels even where nothing under it varies."""
    den = under_a - under_b
    valid = np.abs(den) > MIN_CONTRAST
    if valid.sum() < 2:
        return None
    keep = (over_a - over_b)[valid] / den[valid]
    if np.ptp(keep) > MAX_SPREAD:
        return None
    a = 1.0 - float(keep.mean())
    if not 0.1 < a < 0.9:
        return None
    k_a = (over_a - (1 - a) * under_a) / a
    k_b = (over_b - (1 - a) * under_b) / a
    if np.abs(k_a - k_b).max() > ACROSS_ERROR or k_a.min() < -10 or k_a.max() > 265:
        return None
    return Veil(np.clip((k_a + k_b) / 2, 0, 255), a)


def neutral(over: np.ndarray, under: np.ndarray) -> np.ndarray | None:
    """The black or white K that one opacity over ``under`` turns into ``over`` (mean
    RGB 0..255) with R, G and B agreeing, or None: a shadow's flat middle reads so."""
    for k in (0.0, 255.0):
        den = k - under
        valid = np.abs(den) > MIN_CONTRAST
        if valid.sum() < 2:
            continue
        a = (over - under)[valid] / den[valid]
        if np.ptp(a) <= MAX_SPREAD and 0.02 < a.mean() < 0.95:
            return np.full(3, k)
    return None


def steep(image: np.ndarray, under: np.ndarray, mask: np.ndarray, fitted: Veil) -> bool:
    """Whether the opacity of ``fitted`` over ``mask`` ((h, w) crops; image and under
    RGB 0..255) changes in steps of a pixel or two, as an element's anti-aliased rims
    do, not gently, as a blurred glow's falloff does, nor not at all, as a flat
    overlay's: light text on a dark ground reads as white at some opacity, all rim when
    it is small, and dark text across a shape as black over both. (A drop shadow's thin
    crescent can be as steep: black veils that fall off are not asked.)"""
    den = fitted.colour - under
    valid = np.abs(den) > MIN_CONTRAST
    a = np.where(valid, (image - under) / np.where(valid, den, 1.0), 0.0).sum(axis=-1)
    a /= np.maximum(valid.sum(axis=-1), 1)
    a[~mask] = 0.0
    rows, cols = np.gradient(a)
    return float(np.median(np.hypot(rows, cols)[mask])) > STEEP
