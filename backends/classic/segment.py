"""Finding the background of a flat design and the elements that sit on it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerctl.backends.classic.fill import smooth_model

FLAT_STEP = 10.0  # max neighbour difference (0..255) inside a flat or gradient region
MIN_THRESHOLD = 14.0  # smallest colour distance from the background model that counts
EDGE_MARGIN = 8  # px kept between elements and the pixels the background model learns from
MIN_AREA = 6  # components smaller than this are noise, not elements
SURFACE = 0.001  # share of the canvas from which a flat area counts as a designed surface
JPEG_GRID = 0.04  # how many more zero DCT coefficients the 8×8 grid has than a shifted one
JPEG_BLOCKS = 4000  # 8×8 blocks sampled per grid for that test


@dataclass
class Background:
    mask: np.ndarray  # (H, W) bool: pixels that show the background
    model: np.ndarray  # (H, W, 4) float32 RGBA 0..255: the background behind everything
    threshold: float  # colour distance that separated background from elements
    grain: float  # σ of the background's texture around its smooth model


def channels(image: np.ndarray) -> np.ndarray:
    """RGBA as float32 with colour premultiplied, so transparent pixels look alike."""
    f = image.astype(np.float32)
    f[..., :3] *= f[..., 3:4] / 255.0
    return f


def largest_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max over channels of |a − b| for (…, 4) arrays (cheaper than .max(axis=-1))."""
    d = np.abs(a - b)
    return np.maximum(np.maximum(d[..., 0], d[..., 1]), np.maximum(d[..., 2], d[..., 3]))


def estimate_background(f: np.ndarray, flat: np.ndarray) -> Background:
    """The background region and a smooth model of it under the whole canvas.

    Seed: the flat region touching the most border pixels (designs are framed by their
    background). Then the seed is grown to every pixel within a noise-scaled distance of
    a smooth model fitted to it (so holes in letters and far-apart bits join it), and
    the model is refitted once, away from the elements' edges.
    """
    seed = _border_region(flat)
    model = smooth_model(f, seed)
    residual = largest_difference(f, model)
    noise = float(np.median(residual[seed])) * 1.4826  # MAD → σ for Gaussian grain
    threshold = max(MIN_THRESHOLD, 4.0 * noise)
    mask = _clean(residual < threshold)
    del model, residual  # canvas-sized: freed before the refit allocates its own
    model = smooth_model(f, _away_from_edges(mask))
    mask = _clean(largest_difference(f, model) < threshold)
    return Background(mask, model, threshold, noise)


def compressed(image: np.ndarray) -> bool:
    """Whether ``image`` was JPEG-compressed: on the 8×8 grid JPEG quantised, a busy
    block's high-frequency DCT coefficients are mostly zero; on a grid shifted by four
    pixels they are not (flat designs and photos never tell the two grids apart)."""
    import cv2

    luma = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    luma = luma.astype(np.float32) - 128.0
    shares = [_zero_share(luma[shift:, shift:]) for shift in (0, 4)]
    return None not in shares and shares[0] - shares[1] > JPEG_GRID


def _zero_share(luma: np.ndarray) -> float | None:
    """Share of near-zero high-frequency DCT coefficients in the busy 8×8 blocks."""
    import cv2

    h, w = luma.shape[0] // 8 * 8, luma.shape[1] // 8 * 8
    if not (h and w):  # smaller than one block: nothing to tell
        return None
    blocks = luma[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 8, 8)
    step = max(1, len(blocks) // JPEG_BLOCKS)
    high = np.stack([np.abs(cv2.dct(b)[3:, 3:]).ravel() for b in blocks[::step]])
    busy = high.max(axis=1) > 2.0
    return float((high[busy] < 0.75).mean()) if busy.sum() >= 10 else None


def deblocked(image: np.ndarray) -> np.ndarray:
    """``image`` with JPEG's ringing and block noise smoothed, its edges kept (a
    bilateral filter): the flat areas the regions grow from are flat again. Only for
    analysis; the lossless step makes the layers match the real input."""
    import cv2

    out = image.copy()
    out[..., :3] = cv2.bilateralFilter(np.ascontiguousarray(image[..., :3]), 5, 25, 3)
    return out


def unexplained(flat: np.ndarray, background: Background) -> float:
    """Share of the canvas that is neither background nor a flat surface of some size,
    nor the anti-aliased rim (two pixels) around them.

    Flat graphics are made of a ground and flat or smoothly shaded surfaces with thin
    rims (≲ 0.02 even with small text); a photograph is mostly texture (≳ 0.06).
    """
    import cv2

    surfaces = (flat & ~background.mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(surfaces, connectivity=4)
    big = np.zeros(count, bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= SURFACE * flat.size
    explained = (big[labels] | background.mask).astype(np.uint8)
    explained = cv2.dilate(explained, np.ones((5, 5), np.uint8))
    return 1.0 - float(explained.mean())


def _away_from_edges(mask: np.ndarray) -> np.ndarray:
    """Background pixels a margin away from everything else: soft shadow tails and
    halos just outside elements would otherwise be pushed into the holes."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_MARGIN + 1,) * 2)
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderValue=1).astype(bool)
    return inner if inner.sum() > 0.25 * mask.sum() else mask


def flat_pixels(f: np.ndarray) -> np.ndarray:
    """Pixels that differ from each 4-neighbour by less than FLAT_STEP: not on an edge."""
    step = np.zeros(f.shape[:2], np.float32)
    dx = largest_difference(f[:, 1:], f[:, :-1])
    dy = largest_difference(f[1:], f[:-1])
    step[:, :-1] = np.maximum(step[:, :-1], dx)
    step[:, 1:] = np.maximum(step[:, 1:], dx)
    step[:-1] = np.maximum(step[:-1], dy)
    step[1:] = np.maximum(step[1:], dy)
    return step < FLAT_STEP


def _border_region(flat: np.ndarray) -> np.ndarray:
    import cv2

    flat = flat.astype(np.uint8)
    count, labels = cv2.connectedComponents(flat, connectivity=4)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    border = border[border > 0]
    if count <= 1 or border.size == 0:  # no flat region on the border: use the border itself
        mask = np.zeros(flat.shape, bool)
        mask[[0, -1]] = True
        mask[:, [0, -1]] = True
        return mask
    return labels == np.bincount(border).argmax()


def _clean(mask: np.ndarray) -> np.ndarray:
    """Fold specks of either kind into their surroundings."""
    import cv2

    for value in (False, True):
        part = (mask == value).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < MIN_AREA)
        small = small[small > 0]
        if small.size:
            mask = np.where(np.isin(labels, small), not value, mask)
    return mask
