"""Which region lies on which, and how far each one reaches under the ones above it.

Where two regions meet, the one on top shows its whole outline and the one below is
cut by it, so the lower one's visible part has a bite that its completed shape (a
fitted rectangle or ellipse, else its convex hull) fills in: amodal completion
(Kanizsa, "Organization in Vision", 1979). We therefore put A under B when a larger
share of B's pixels lies in A's completed shape than of A's in B's. A region then
extends under the regions above it as far as its completed shape.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from layerctl.backends.classic.regions import Region, recrop, union

MIN_OVERLAP = 3  # pixels of hull overlap below which two regions only touch
SHAPE_TOLERANCE = 0.06  # mismatch (share of the visible area) of an accepted rect/ellipse
ENCLOSED = 0.9  # share of a region inside the other's completed shape that puts it on top
EXPLAINED_GAP = 0.4  # difference of filled extension shares that decides alone
MIN_SOLIDITY = 0.4  # visible share of its hull below which a region is not one solid shape
EXPLAINED = 0.8  # share of a multi-piece hull's extension that its occluders must cover
SURFACE_SHARE = 0.7  # share of its filled outline a piece shows to be a surface, not a ring
BOXED = 0.75  # share of its box a surface's outline fills (a card, a disc; not a glyph)
ABUTTING = 0.05  # share of each region inside the other's completed shape, and of each
# completion's extension the other fills, below which two regions only abut along a seam
# (the parts of a donut chart or a flag)


def order(
    regions: list[Region],
    touching: set[tuple[int, int]],
    forced: frozenset[tuple[int, int]] = frozenset(),
) -> tuple[list[int], list[set[int]], set[tuple[int, int]]]:
    """(region indices bottom first, per region the regions found on it, the pairs
    that only abut along a seam: parts of one element, such as a donut chart's).

    The order is a topological order of the pairwise cues; ``touching`` holds label
    pairs (region i has label i + 1; 0 is the background). Unrelated regions go larger
    first (lower); a cycle is broken at its largest region, dropping its cues.
    """
    n = len(regions)
    above: list[set[int]] = [set() for _ in range(n)]
    abutting: set[tuple[int, int]] = set()
    below_count = np.zeros(n, int)
    known = {frozenset(pair): pair for pair in forced}
    pairs = {(a - 1, b - 1) for a, b in touching if a and b} | set(forced)
    for i, j in pairs:
        if frozenset((i, j)) in known:
            lower, upper = known[frozenset((i, j))]
        else:
            relation = _relation(regions[i], regions[j])
            if relation == "abut":
                abutting.add((i, j))
            if relation not in ("under", "over"):
                continue
            lower, upper = (i, j) if relation == "under" else (j, i)
        if upper not in above[lower]:
            above[lower].add(upper)
            below_count[upper] += 1
    areas = np.array([r.area for r in regions])
    done = np.zeros(n, bool)
    result = []
    for _ in range(n):
        free = np.flatnonzero(~done & (below_count == 0))
        pick = free if free.size else np.flatnonzero(~done)
        node = int(pick[np.argmax(areas[pick])])
        if not free.size:  # break the cycle: nothing still waiting lies under node
            for lower in np.flatnonzero(~done):
                above[lower].discard(node)
        done[node] = True
        result.append(node)
        for upper in above[node]:
            below_count[upper] -= 1
    return result, above, abutting


def _relation(a: Region, b: Region) -> Literal["under", "over", "abut"] | None:
    """Whether a lies under or over b, or only abuts it, or None if the shapes say nothing
    (see _cue)."""
    return _cue(a, b)[0]


def _cue(a: Region, b: Region) -> tuple[Literal["under", "over", "abut"] | None, bool]:
    """(_relation, whether a clear cue decided it: one lies within the other's shape, or
    one completion's extension is far more filled by the other than the other's; not
    the comparison of two shares that neither lies within the other's shape).

    Each region's shape is completed under the other (see complete); the one whose
    completed shape takes in a larger share of the other's pixels lies under it.
    Shares, not counts, so that a very concave top region (a star) whose hull takes in
    a little of a big region under it still reads as on top. Where neither lies
    within the other's shape, what share of each completion's extension the other
    fills speaks first: a small icon's arc completed to a disc under a big circle
    fills that disc with the circle, while the circle's hull barely reaches the icon.
    Two that take in next to nothing of each other (under ABUTTING, both ways) meet
    only at an anti-aliased seam, as the parts of a donut chart do.
    """
    whole_a = complete(a, _other_on(a, b))
    whole_b = complete(b, _other_on(b, a))
    a_in_b = _count_inside(a.visible, a.box, whole_b, b.box)  # a's pixels in b's shape
    b_in_a = _count_inside(b.visible, b.box, whole_a, a.box)
    if max(a_in_b, b_in_a) < MIN_OVERLAP:
        return None, False
    share_a, share_b = a_in_b / a.area, b_in_a / b.area
    # Unless one lies wholly within the other's shape (it is on it), how much of each
    # completion's extension the other fills decides: a true completion goes on under
    # its occluder, a spurious one (a hull closing a notch) mostly over the ground.
    fill_a = b_in_a / max(int(whole_a.sum()) - a.area, 1)
    fill_b = a_in_b / max(int(whole_b.sum()) - b.area, 1)
    if max(share_a, share_b, fill_a, fill_b) < ABUTTING:  # their anti-aliased seam
        return "abut", True
    if max(share_a, share_b) < ENCLOSED and abs(fill_a - fill_b) > EXPLAINED_GAP:
        return "under" if fill_a > fill_b else "over", True
    if share_a == share_b:
        return None, False
    return "under" if share_b > share_a else "over", max(share_a, share_b) >= ENCLOSED


def _other_on(region: Region, other: Region) -> np.ndarray:
    """``other``'s visible pixels on ``region``'s box."""
    out = np.zeros_like(region.visible)
    inter = _intersection(region.box, other.box)
    if inter is not None:
        _crop(out, region.box, inter)[...] = _crop(other.visible, other.box, inter)
    return out


def _count_inside(mask: np.ndarray, box, other: np.ndarray, other_box) -> int:
    inter = _intersection(box, other_box)
    if inter is None:
        return 0
    return int((_crop(mask, box, inter) & _crop(other, other_box, inter)).sum())


def _intersection(a, b):
    rows = slice(max(a[0].start, b[0].start), min(a[0].stop, b[0].stop))
    cols = slice(max(a[1].start, b[1].start), min(a[1].stop, b[1].stop))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return None
    return rows, cols


def _crop(mask: np.ndarray, box, inter) -> np.ndarray:
    return mask[
        inter[0].start - box[0].start : inter[0].stop - box[0].start,
        inter[1].start - box[1].start : inter[1].stop - box[1].start,
    ]


def supports(
    regions: list[Region], ranks: list[int]
) -> tuple[list[np.ndarray], list[tuple[tuple[slice, slice], np.ndarray] | None]]:
    """(per region, on its box: visible pixels plus its completed shape where regions
    above it show (see complete), as far as those reach its edge; per region, None or
    (a wider box, the part of that completion outside its own box)). A label inside a
    ring, text in a donut's hole, cuts nothing of it and so hides nothing of it. A
    surface of it also goes on under what lies wholly on it (the words on each of
    three alike cards, which are no one shape to complete). A disc half under a card
    shows half its outline: the ellipse fitted to it goes on past the half that shows,
    on a box grown towards the regions above it (by at most twice its own size: a
    sliver's fit says little)."""
    position = {index: rank for rank, index in enumerate(ranks)}
    result, beyond = [], []
    for i, region in enumerate(regions):
        over = [
            other
            for j, other in enumerate(regions)
            if position[j] > position[i] and _intersection(region.box, other.box) is not None
        ]
        result.append(_support(region, over, region.box))
        box = region.box
        for other in over:
            box = union(box, other.box)
        box = _intersection(box, _grown_by_size(region.box)) or region.box
        outside = None
        if box != region.box:
            outside = _support(region, over, box)
            _crop(outside, box, region.box)[...] = False  # its own box: result's part
        beyond.append((box, outside) if outside is not None and outside.any() else None)
    return result, beyond


def _support(region: Region, over: list[Region], box) -> np.ndarray:
    """supports' mask for one region under the regions ``over`` it, on ``box``."""
    wide = Region(
        box,
        *(recrop(m, region.box, box) for m in (region.visible, region.core, region.hull)),
        region.colour,
    )
    covered = np.zeros_like(wide.visible)
    enclosed = np.zeros_like(wide.visible)
    surfaces = _surfaces_filled(wide.visible)
    for other in over:
        inter = _intersection(box, other.box)
        if inter is None:
            continue
        shown = _crop(other.visible, other.box, inter)
        _crop(covered, box, inter)[...] |= shown
        if (_crop(surfaces, box, inter) & shown).sum() >= ENCLOSED * other.area:
            _crop(enclosed, box, inter)[...] |= shown
    covered = _touching(covered & ~wide.visible, wide.visible)
    whole = complete(wide, covered, hull_if_sparse=False)
    return wide.visible | (whole & covered) | (surfaces & enclosed)


def _grown_by_size(box) -> tuple[slice, slice]:
    """``box`` grown on every side by twice its own height and width."""
    rows, cols = box
    height, width = 2 * (rows.stop - rows.start), 2 * (cols.stop - cols.start)
    return (
        slice(max(0, rows.start - height), rows.stop + height),
        slice(max(0, cols.start - width), cols.stop + width),
    )


def _touching(mask: np.ndarray, edge_of: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` that meet ``edge_of`` (8-neighbours)."""
    import cv2

    if not mask.any():
        return mask
    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    near = cv2.dilate(edge_of.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    keep = np.zeros(count, bool)
    keep[np.unique(parts[near & mask])] = True
    keep[0] = False
    return keep[parts]


def complete(region: Region, covered: np.ndarray, hull_if_sparse: bool = True) -> np.ndarray:
    """The region's whole shape, guessed from the outline it shows outside ``covered``.

    Flat designs are mostly rectangles and ellipses: fit both to the visible outline
    (least squares ellipse, Fitzgibbon et al. 1999, as cv2.fitEllipse) and keep one
    if it matches the visible pixels away from the occluders; otherwise the convex
    hull of what shows.
    """
    import cv2

    if not covered.any():
        return region.hull
    near = cv2.dilate(covered.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    contours, _ = cv2.findContours(
        region.visible.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    points = np.concatenate(contours)[:, 0] if contours else np.empty((0, 2), int)
    own = points[~near[points[:, 1], points[:, 0]]]
    if len(own) < 12:
        return region.hull
    candidates = []
    x0, y0 = own.min(axis=0)
    x1, y1 = own.max(axis=0)
    rect = np.zeros(region.visible.shape, np.uint8)
    rect[y0 : y1 + 1, x0 : x1 + 1] = 1
    candidates.append(rect.astype(bool))
    ellipse = np.zeros(region.visible.shape, np.uint8)
    cv2.ellipse(ellipse, cv2.fitEllipse(own.astype(np.float32)), 1, thickness=-1)
    candidates.append(ellipse.astype(bool))
    away = ~near
    size = max(int(region.visible.sum()), 1)
    errors = [int(((c ^ region.visible) & away).sum()) / size for c in candidates]
    best = int(np.argmin(errors))
    if errors[best] < SHAPE_TOLERANCE:
        return candidates[best] | region.hull
    if not hull_if_sparse and _scattered(region, covered):
        return region.visible  # a line of text, scattered pieces: no one shape to go on
    return region.hull


def _surfaces_filled(visible: np.ndarray) -> np.ndarray:
    """``visible`` with the holes of each piece that is a surface (most of its outline's
    area, and its outline most of its box: a card with words on it) filled. A ring, a
    letter's outline around its fill, a glyph, stays as it shows."""
    import cv2
    from scipy.ndimage import binary_fill_holes

    filled = binary_fill_holes(visible)
    count, outlines, stats, _ = cv2.connectedComponentsWithStats(
        filled.astype(np.uint8), connectivity=8
    )
    shown = np.bincount(outlines[visible], minlength=count)
    whole = stats[:, cv2.CC_STAT_AREA]
    box = stats[:, cv2.CC_STAT_WIDTH] * stats[:, cv2.CC_STAT_HEIGHT]
    surface = (shown >= SURFACE_SHARE * whole) & (whole >= BOXED * box)
    surface[0] = False
    return visible | (filled & surface[outlines])


def _scattered(region: Region, covered: np.ndarray) -> bool:
    """Several pieces whose hull is no one shape going on under what covers them: the
    glyphs of a line of text (they fill little of their hull), or same-coloured pieces
    side by side (bars of a chart) whose hull mostly spans open ground, not the
    occluders between them, as a shape cut in two by a band does."""
    import cv2

    count, _ = cv2.connectedComponents(region.visible.astype(np.uint8), connectivity=8)
    if count <= 2:
        return False
    if region.area < MIN_SOLIDITY * region.hull.sum():
        return True
    extension = region.hull & ~region.visible
    return int((extension & covered).sum()) < EXPLAINED * int(extension.sum())
