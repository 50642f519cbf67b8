"""Splitting the foreground into regions: flat (or smoothly shaded) areas and their rims.

A region is one connected area of nearly constant (or smoothly varying) colour, plus
the anti-aliased rim pixels nearest to it. Shapes, glyphs, shadows and cards each
become a region; which lies on which is decided later (occlusion.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from layerctl.backends.classic.segment import Background, flat_pixels

MIN_CORE = 10  # flat areas smaller than this are rim, not a region of their own
SAME_COLOUR = 24.0  # max channel difference (0..255) of two pieces of one surface
PAD = 2


@dataclass
class Region:
    """One region on its padded bounding box (``box``); masks are crops of that box."""

    box: tuple[slice, slice]
    visible: np.ndarray  # bool: pixels showing this region (rim included)
    core: np.ndarray  # bool: its flat interior (alpha 1 for sure)
    hull: np.ndarray  # bool: convex hull of ``visible``
    colour: np.ndarray  # mean premultiplied RGBA of the core (or of all, if none)

    @property
    def area(self) -> int:
        return int(self.visible.sum())


def find_regions(f: np.ndarray, background: Background) -> tuple[np.ndarray, list[Region]]:
    """(label map: 0 background, i + 1 region i; the regions)."""
    labels = _seed_labels(f, background.mask)
    labels = _grow(labels, ~background.mask)
    labels = _compact(_merge_split_surfaces(labels, f))
    return labels, _describe(labels, f)


def _compact(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 1..K without gaps, 0 staying the background."""
    used = np.unique(labels[labels > 0])
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[used] = np.arange(1, used.size + 1)
    return lut[labels]


def _seed_labels(f: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Flat cores big enough, plus whole foreground pieces that have no such core."""
    import cv2

    fg = ~bg
    flat = (flat_pixels(f) & fg).astype(np.uint8)
    count, cores, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=4)
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= MIN_CORE)
    keep = keep[keep > 0]
    remap = np.zeros(count, np.int32)
    remap[keep] = np.arange(1, keep.size + 1)
    seeds = remap[cores]
    pieces_count, pieces = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    has_core = np.zeros(pieces_count, bool)
    has_core[pieces[seeds > 0]] = True
    bare = np.flatnonzero(~has_core)
    bare = bare[bare > 0]
    if bare.size:
        extra = np.zeros(pieces_count, np.int32)
        extra[bare] = np.arange(keep.size + 1, keep.size + 1 + bare.size)
        seeds = np.where(seeds > 0, seeds, extra[pieces])
    return seeds


def _grow(seeds: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Give every foreground pixel the label of its nearest seed."""
    from scipy.ndimage import distance_transform_edt

    if not (seeds > 0).any():
        return seeds
    _, (iy, ix) = distance_transform_edt(seeds == 0, return_indices=True)
    return np.where(fg, seeds[iy, ix], 0).astype(np.int32)


def adjacency(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs (a, b), a < b, of labels that touch (4-neighbours); 0 is the background."""
    pairs = []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        differ = a != b
        lo, hi = np.minimum(a[differ], b[differ]), np.maximum(a[differ], b[differ])
        pairs.append(np.unique(lo.astype(np.int64) << 32 | hi.astype(np.int64)))
    keys = np.unique(np.concatenate(pairs)) if pairs else np.array([], np.int64)
    return {(int(k >> 32), int(k & 0xFFFFFFFF)) for k in keys}


def _merge_split_surfaces(labels: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Join same-coloured regions that touch one common region: one surface cut in
    pieces by what lies on it (a triangle's tip and base around a star on it, the
    counter of an "o" and the card under the "o")."""
    count = int(labels.max())
    if count < 3:
        return labels
    mean = _mean_colours(labels, f, count)
    neighbours: dict[int, set[int]] = {i: set() for i in range(1, count + 1)}
    for a, b in adjacency(labels):
        if a and b:
            neighbours[a].add(b)
            neighbours[b].add(a)
    parent = list(range(count + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for around in neighbours.values():
        pieces = sorted(around)
        for k, a in enumerate(pieces):
            for b in pieces[k + 1 :]:
                if np.abs(mean[a] - mean[b]).max() < SAME_COLOUR:
                    parent[root(a)] = root(b)
    remap = np.array([root(i) for i in range(count + 1)])
    return remap[labels].astype(np.int32)


def _mean_colours(labels: np.ndarray, f: np.ndarray, count: int) -> np.ndarray:
    """Mean premultiplied RGBA per label over its flat pixels (rims would blur it), or
    over all of its pixels when it has no flat ones (hairlines)."""
    means = []
    for where in (flat_pixels(f), np.ones(labels.shape, bool)):
        flat = np.where(where, labels, 0).ravel()
        sums = np.stack([np.bincount(flat, f[..., c].ravel(), count + 1) for c in range(4)], -1)
        counts = np.bincount(flat, minlength=count + 1)
        means.append((sums / np.maximum(counts, 1)[:, None], counts))
    (flat_mean, flat_count), (all_mean, _) = means
    return np.where(flat_count[:, None] > 0, flat_mean, all_mean)


def _describe(labels: np.ndarray, f: np.ndarray) -> list[Region]:
    import cv2
    from scipy.ndimage import find_objects

    flat = flat_pixels(f)
    h, w = labels.shape
    regions = []
    for index, found in enumerate(find_objects(labels), start=1):
        rows = slice(max(0, found[0].start - PAD), min(h, found[0].stop + PAD))
        cols = slice(max(0, found[1].start - PAD), min(w, found[1].stop + PAD))
        visible = labels[rows, cols] == index
        core = visible & flat[rows, cols]
        source = core if core.any() else visible
        colour = f[rows, cols][source].mean(axis=0)
        points = cv2.findNonZero(visible.astype(np.uint8))
        hull = np.zeros(visible.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
        regions.append(Region((rows, cols), visible, core, hull.astype(bool) | visible, colour))
    return regions
