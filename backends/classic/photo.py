"""Designed elements on a photographic ground: headlines, buttons, logo marks.

A photograph has no flat ground to peel elements off, but what a designer sets on one
is still flat: each glyph of a headline, a button, a logo mark is one exact colour (or
a linear gradient) inside a crisp anti-aliased edge. A photograph's own smooth areas
drift by a level or two, and their edges are soft (clipped highlights are the closest
thing, and come alone). So: flat components of the photo that are exact, with a
crisp edge nearly all round, either several of one colour along a row (a line of
text) or one large shape (a button, a logo), are the elements. The photograph,
continued under them from around (pull-push), becomes the ground the pipeline peels
them off, as it does a flat design's; what lies on a shape (a button's label) goes
with it and is found there as on any card. A scrim, tint or translucent bar over the
photograph is no flat colour: it stays in the Background layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerctl.backends.classic.fill import pull_push
from layerctl.backends.classic.regions import SAME_COLOUR, _on_line
from layerctl.backends.classic.segment import MIN_THRESHOLD, Background

GLYPH = 0.00003  # share of the canvas from which a flat component can be a glyph
LEAST = 20  # px: the same, at least (a thin font's stem)
LARGEST = 0.2  # share of the canvas beyond which a flat area is the photograph's own
EXACT = 1.0  # 90th percentile colour deviation (0..255) inside a designed fill
PLANAR = 1.5  # the same around a linear fit, for a shape filled with a gradient
CONTRAST = 16.0  # colour distance two pixels out that marks the edge's far side
CRISP = 0.85  # share of the edge two pixels out that is that far: a designed outline
LOOSE = 0.6  # the same for a glyph that joins a line of crisp ones (low-contrast parts)
SHAPE = 0.003  # share of the canvas from which one crisp component alone is a shape
SHAPE_CRISP = 0.8  # how much of such a lone shape's outline must be crisp
SOLID = 0.85  # share of its convex hull that such a shape fills (buttons, logo marks)
CLIPPED = 1.0  # a channel this near 0 or 255: a colour a photograph clips to
ROW = 0.5  # vertical overlap (share of the shorter) of two glyphs on one line
GAP = 2.0  # horizontal gap (× the shorter glyph's height) between neighbours in a line
HEIGHTS = 2.0  # ratio of heights beyond which two glyphs are not letters of one line
MIXED = 0.9  # share of a hole in a shape that is blends of its colour and one ink: a label
REACH = 24  # px beyond its flat interior that an element's thin parts may reach
MOSTLY = 0.7  # opacity against the photograph around from which a pixel is the element's
# (light details of the photograph beside an element, a whisker, fur, stay below it)
RIM = 1  # px of anti-aliased rim around each element that goes with it
MARGIN = 2  # px further out that the ground under an element is not learned from
CONTEXT = 48  # px around the elements whose photograph is continued under them


def elements_ground(f: np.ndarray, flat: np.ndarray) -> Background | None:
    """The photograph as the ground of the designed elements on it (its mask: where
    it shows; its model: the photograph, continued under the elements), or None when
    nothing designed lies on it (a photograph, to be kept whole)."""
    import cv2

    found, broad = _designed(f, flat)
    if not found.any():
        return None
    found = _rest(f, found, broad)
    near = cv2.dilate(found.astype(np.uint8), _disc(RIM)).astype(bool)
    return Background(~near, _continued(f, found), MIN_THRESHOLD, 0.0, photo=True)


def _continued(f: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``f`` with the photograph continued (pull-push) under ``found`` and its rim."""
    import cv2

    away = cv2.dilate(found.astype(np.uint8), _disc(RIM + MARGIN)).astype(bool)
    box = _box(cv2.dilate(away.astype(np.uint8), _disc(CONTEXT)).astype(bool))
    model = f.copy()
    model[box] = np.where(away[box][..., None], pull_push(f[box], ~away[box]), f[box])
    return model


def _rest(f: np.ndarray, found: np.ndarray, broad: np.ndarray) -> np.ndarray:
    """``found`` with the parts of the elements too thin to hold flat pixels of their
    own (a thin font's curves and bars, sharp corners): pixels more the element's
    colour than the photograph's around (opacity MOSTLY against it), reached from its
    flat interior through such pixels within REACH. Alone they would stay on the
    ground as pieces of letters."""
    import cv2

    away = cv2.dilate(found.astype(np.uint8), _disc(REACH)).astype(bool)
    box = _box(away)
    crop, mine, away = f[box], found[box], away[box]
    under = pull_push(crop, ~away)
    diff = pull_push(crop, mine) - under
    contrast = (diff * diff).sum(axis=-1)
    alpha = ((crop - under) * diff).sum(axis=-1) / np.maximum(contrast, 1e-6)
    near = (alpha >= MOSTLY) & (contrast >= CONTRAST**2) & away & ~(broad[box] & ~mine)
    near = near.astype(np.uint8)
    grown = mine.astype(np.uint8)
    for _ in range(REACH):
        step = cv2.dilate(grown, np.ones((3, 3), np.uint8)) & near | grown
        if int(step.sum()) == int(grown.sum()):
            break
        grown = step
    out = found.copy()
    out[box] |= grown.astype(bool)
    return out


def _box(mask: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of ``mask`` (not empty)."""
    rows, cols = (np.flatnonzero(mask.any(axis=k)) for k in (1, 0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _disc(radius: int) -> np.ndarray:
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)


def _designed(f: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canvas bools: the flat interiors of the designed elements (with a shape's
    label), and the flat areas too broad (over LARGEST) to be anything's but the
    photograph's own, which no element's thin part reaches into."""
    import cv2

    height, width = flat.shape
    size = height * width
    least = max(LEAST, GLYPH * size)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(flat.astype(np.uint8), connectivity=4)
    candidates, rest = _candidates(f, labels, stats, least, LARGEST * size)
    if rest:  # glyphs that a smooth area of the photograph ran into
        merged = np.isin(labels, rest) & flat
        candidates += _exact_parts(f, merged, least, LARGEST * size)
    broad = np.zeros(len(stats), bool)
    broad[1:] = stats[1:, 4] > LARGEST * size
    accepted = _lines(candidates) | {
        k for k, c in enumerate(candidates) if c.area >= SHAPE * size and _shape(c)
    }
    found = np.zeros(flat.shape, bool)
    for k in accepted:
        c = candidates[k]
        found[c.box] |= c.mask
        if c.area >= SHAPE * size:
            found[c.box] |= _labels(f[c.box][..., :3], c.mask, c.fitted)
    return found, broad[labels] & ~found


def _candidates(
    f: np.ndarray, labels: np.ndarray, stats: np.ndarray, least: float, most: float
) -> tuple[list[_Candidate], list[int]]:
    """(the designed-looking components of ``labels``, the indices of the others of at
    least ``least`` px: too large, at the canvas edge or no crisp plane)."""
    height, width = labels.shape
    x, y, w, h, area = (stats[1:, k] for k in range(5))
    inside = (x > 0) & (y > 0) & (x + w < width) & (y + h < height)
    found, rest = [], []
    for i in np.flatnonzero(area >= least) + 1:
        seen = _describe(f, labels, i, stats[i]) if inside[i - 1] and area[i - 1] <= most else None
        if seen is not None:
            found.append(seen)
        else:
            rest.append(int(i))
    return found, rest


def _exact_parts(f: np.ndarray, where: np.ndarray, least: float, most: float) -> list[_Candidate]:
    """Candidates among the pixels ``where`` held by plateaus of one exact colour whose
    inner pixels (all four neighbours that colour too) number ``least`` or more: white
    letters laid across a pale, smooth part of the photograph join it in one flat area
    (steps of a few levels through their anti-aliased rims), but their fill is one
    exact colour; the photograph's smooth areas drift through a level every few pixels."""
    import cv2
    from scipy.ndimage import grey_dilation

    rgb = np.clip(np.rint(f[..., :3]), 0, 255).astype(np.int32)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    inner = where.copy()
    inner[1:] &= code[1:] == code[:-1]
    inner[:-1] &= code[:-1] == code[1:]
    inner[:, 1:] &= code[:, 1:] == code[:, :-1]
    inner[:, :-1] &= code[:, :-1] == code[:, 1:]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        inner.astype(np.uint8), connectivity=4
    )
    if count == 1 or stats[1:, 4].max() < least:
        return []
    # each plateau with its border pixels of its colour (the 3×3 max of labels apart)
    grown = grey_dilation(labels, size=(3, 3))
    ys, xs = np.nonzero(labels)
    colour = np.zeros(count, np.int32)
    colour[labels[ys, xs]] = code[ys, xs]
    labels = np.where((grown > 0) & (code == colour[grown]), grown, labels)
    return _candidates(f, labels, stats, least, most)[0]


@dataclass
class _Candidate:
    """A flat component on its padded box, and how designed it looks."""

    box: tuple[slice, slice]
    mask: np.ndarray  # bool crop: the component
    colour: np.ndarray  # its median RGB (premultiplied, 0..255)
    fitted: np.ndarray  # its fill as drawn: that colour, or a linear ramp over the crop
    exact: bool  # one colour to within EXACT
    crisp: float  # share of its edge two pixels out that is CONTRAST off its colour

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _describe(f: np.ndarray, labels: np.ndarray, index: int, stat) -> _Candidate | None:
    """The component ``index`` as a candidate, or None when its edge is not crisp."""
    import cv2

    x, y, w, h, _ = stat
    pad = RIM + 2
    box = (
        slice(max(0, y - pad), min(labels.shape[0], y + h + pad)),
        slice(max(0, x - pad), min(labels.shape[1], x + w + pad)),
    )
    mask = labels[box] == index
    crop = f[box][..., :3]
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    inner = inner if inner.sum() >= 10 else mask
    colour = np.median(crop[inner], axis=0)
    exact = _deviation(crop[inner] - colour) <= EXACT
    fitted = colour if exact else _plane(crop, inner)
    planar = exact or _deviation(crop[inner] - fitted[inner]) <= PLANAR
    if not planar:
        return None
    grown = [cv2.dilate(mask.astype(np.uint8), _disc(r)).astype(bool) for r in (1, 2)]
    ring = grown[1] & ~grown[0]
    far = crop[ring] - (fitted if exact else fitted[ring])
    crisp = float((np.abs(far).max(axis=-1) >= CONTRAST).mean()) if ring.any() else 0.0
    if crisp < LOOSE:
        return None
    return _Candidate(box, mask, colour, fitted, exact, crisp)


def _deviation(residual: np.ndarray) -> float:
    """90th percentile over pixels of the largest channel deviation."""
    return float(np.percentile(np.abs(residual).max(axis=-1), 90))


def _plane(crop: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The least-squares linear ramp (per channel) through ``crop`` at ``known``, over the
    whole crop: a gradient fill as drawn."""
    ys, xs = np.nonzero(known)
    step = max(1, ys.size // 4000)
    ys, xs = ys[::step], xs[::step]
    a = np.stack([np.ones(ys.size), xs, ys], axis=-1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(a, crop[ys, xs].astype(np.float64), rcond=None)
    gy, gx = np.mgrid[: crop.shape[0], : crop.shape[1]]
    return (coef[0] + gx[..., None] * coef[1] + gy[..., None] * coef[2]).astype(np.float32)


def _shape(c: _Candidate) -> bool:
    """Whether a lone candidate is a designed shape: crisp nearly all round and, when
    its colour is clipped (a channel at 0 or 255, as a photograph's blown highlight or
    crushed shadow is), solid too: its outline (label holes filled) filling SOLID of
    its convex hull, as a button or a logo mark does; a highlight is ragged."""
    import cv2
    from scipy.ndimage import binary_fill_holes

    if c.crisp < SHAPE_CRISP:
        return False
    if not ((c.colour <= CLIPPED) | (c.colour >= 255 - CLIPPED)).any():
        return True
    filled = binary_fill_holes(c.mask)
    hull = cv2.convexHull(cv2.findNonZero(filled.astype(np.uint8)))
    return float(filled.sum()) >= SOLID * cv2.contourArea(hull)


def _lines(candidates: list[_Candidate]) -> set[int]:
    """Indices of exact candidates in lines of text: neighbours along a row of one
    colour, two or more of them crisp all round."""
    glyphs = [k for k, c in enumerate(candidates) if c.exact]
    parent = {k: k for k in glyphs}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for n, a in enumerate(glyphs):
        for b in glyphs[n + 1 :]:
            if _neighbours(candidates[a], candidates[b]):
                parent[root(a)] = root(b)
    crisp: dict[int, int] = {}
    for k in glyphs:
        crisp[root(k)] = crisp.get(root(k), 0) + (candidates[k].crisp >= CRISP)
    lines = {k for k in glyphs if crisp[root(k)] >= 2}
    boxes: dict[int, list[int]] = {}
    for k in lines:
        (rows, cols), line = candidates[k].box, boxes.setdefault(root(k), [])
        edges = [rows.start, rows.stop, cols.start, cols.stop]
        line[:] = [
            min(a, b) if n % 2 == 0 else max(a, b)
            for n, (a, b) in enumerate(zip(line or edges, edges, strict=True))
        ]
    for k in set(glyphs) - lines:  # an i's dot, a full stop: small, inside the line's box
        (rows, cols), c = candidates[k].box, candidates[k]
        for r, (top, bottom, left, right) in boxes.items():
            same = np.abs(c.colour - candidates[r].colour).max() <= SAME_COLOUR / 2
            if (
                same
                and top <= rows.start
                and rows.stop <= bottom
                and left <= cols.start
                and cols.stop <= right
            ):
                lines.add(k)
                break
    return lines


def _neighbours(a: _Candidate, b: _Candidate) -> bool:
    """Whether two glyphs are one colour, side by side on one row."""
    if np.abs(a.colour - b.colour).max() > SAME_COLOUR / 2:
        return False
    (ra, ca), (rb, cb) = a.box, b.box
    overlap = min(ra.stop, rb.stop) - max(ra.start, rb.start)
    shorter = min(ra.stop - ra.start, rb.stop - rb.start)
    taller = max(ra.stop - ra.start, rb.stop - rb.start)
    gap = max(ca.start, cb.start) - min(ca.stop, cb.stop)
    return taller <= HEIGHTS * shorter and overlap >= ROW * shorter and gap <= GAP * shorter


def _labels(crop: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """The holes in a shape's ``mask`` that are a label on it: blends of the shape's
    ``fill`` (one colour, or a gradient's colour at each pixel of the crop) and one ink
    (the pixel farthest from it), not the photograph showing through. Crop bool."""
    import cv2
    from scipy.ndimage import binary_fill_holes

    holes = binary_fill_holes(mask) & ~mask
    count, parts = cv2.connectedComponents(holes.astype(np.uint8), connectivity=8)
    out = np.zeros(mask.shape, bool)
    for part in range(1, count):
        hole = parts == part
        pixels = crop[hole]
        colour = fill if fill.ndim == 1 else fill[hole]
        ink = pixels[np.abs(pixels - colour).max(axis=-1).argmax()]
        if _on_line(pixels, colour, ink).mean() >= MIXED:
            out |= hole
    return out
