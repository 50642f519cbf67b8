"""Which region lies on which, and how far each one reaches under the ones above it.

Where two regions meet, the one on top shows its whole outline and the one below is
cut by it, so the lower one's visible part has a bite that its convex hull fills in.
We therefore put A under B when a larger share of B's pixels lies in A's hull than
of A's in B's (the convexity cue of amodal completion, e.g. Kanizsa, "Organization in Vision",
1979; used for layer ordering of vector art by Favreau et al., "Photo2ClipArt",
SIGGRAPH Asia 2017). A region then extends under the regions above it as far as
its own hull.
"""

from __future__ import annotations

import numpy as np
from layerctl.backends.classic.regions import Region

MIN_OVERLAP = 3  # pixels of hull overlap below which two regions only touch


def order(
    regions: list[Region],
    touching: set[tuple[int, int]],
    forced: frozenset[tuple[int, int]] = frozenset(),
) -> tuple[list[int], list[set[int]]]:
    """(region indices bottom first, per region the regions found on it).

    The order is a topological order of the pairwise cues; ``touching`` holds label
    pairs (region i has label i + 1; 0 is the background). Unrelated regions go larger
    first (lower); a cycle is broken at its largest region, dropping its cues.
    """
    n = len(regions)
    above: list[set[int]] = [set() for _ in range(n)]
    below_count = np.zeros(n, int)
    known = {frozenset(pair): pair for pair in forced}
    pairs = {(a - 1, b - 1) for a, b in touching if a and b} | set(forced)
    for i, j in pairs:
        if frozenset((i, j)) in known:
            lower, upper = known[frozenset((i, j))]
        else:
            lower_upper = _cue(regions[i], regions[j])
            if lower_upper is None:
                continue
            lower, upper = (i, j) if lower_upper else (j, i)
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
    return result, above


def _cue(a: Region, b: Region) -> bool | None:
    """True if a lies under b, False if over it, None if the hulls say nothing.

    Shares, not counts, so that a very concave top region (a star) whose hull takes in
    a little of a big region under it still reads as on top.
    """
    a_in_b = _count_inside(a.visible, a.box, b.hull, b.box)  # a's pixels in b's hull
    b_in_a = _count_inside(b.visible, b.box, a.hull, a.box)
    if max(a_in_b, b_in_a) < MIN_OVERLAP:
        return None
    share_a, share_b = a_in_b / a.area, b_in_a / b.area
    if share_a == share_b:
        return None
    return share_b > share_a


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


def supports(regions: list[Region], ranks: list[int]) -> list[np.ndarray]:
    """Per region (on its box): visible pixels plus its hull where regions above show."""
    position = {index: rank for rank, index in enumerate(ranks)}
    result = []
    for i, region in enumerate(regions):
        hidden = np.zeros_like(region.visible)
        for j, other in enumerate(regions):
            if position[j] <= position[i]:
                continue
            inter = _intersection(region.box, other.box)
            if inter is None:
                continue
            part = _crop(hidden, region.box, inter)
            part |= _crop(region.hull, region.box, inter) & _crop(other.visible, other.box, inter)
        result.append(region.visible | hidden)
    return result
