"""Splitting the foreground into regions: flat (or smoothly shaded) areas and their rims.

A region is one connected area of nearly constant (or smoothly varying) colour, plus
the anti-aliased rim pixels nearest to it. Shapes, glyphs, shadows and cards each
become a region; which lies on which is decided later (occlusion.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from layerctl.backends.classic.fill import pull_push
from layerctl.backends.classic.segment import Background

MIN_CORE = 10  # flat areas smaller than this are rim, not a region of their own
SAME_COLOUR = 12.0  # max channel difference (0..255) of two pieces of one surface
RIMMED_COLOUR = 4 * SAME_COLOUR  # the same, for two pieces that are all anti-aliased rim
NEAR = 1.0  # same-coloured pieces this close (× their height) are one element: a word
NEAR_ROWS = 256  # pieces compared with all others at a time when looking for close ones
GLYPHS = 8.0  # most times one glyph's height another's in a line (a full stop's, a cap's)
LINE = 1.5  # most times one word's height another's on one line of a title
WORDS = 3  # holes of a surface that pieces in them fill, from which they are words on it
BRIDGED = 0.8  # share of the span between two same-coloured pieces that the region
# cutting them apart fills when they are one surface under it
PAD = 2
RIM_MIX = 3.0  # colour distance (0..255) from a region's own colour that marks a mixed pixel
RIM = 2  # pixels of anti-aliased rim around an element (a box filter's reach)
FOREIGN = 4 * SAME_COLOUR  # colour distance from its region that no pixel of it reaches
PURE = 0.8  # share of the largest difference from its surroundings that marks a pure pixel
SLIVER = 0.05  # area (share of the smaller neighbour) below which a mixed region is rim


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


def find_regions(
    f: np.ndarray, flat: np.ndarray, background: Background, smeared: bool = False
) -> tuple[np.ndarray, list[Region]]:
    """(label map: 0 background, i + 1 region i; the regions). ``flat``: see flat_pixels.
    ``smeared`` (a JPEG): the pieces all rim along an edge JPEG smeared between two
    surfaces (a disc and the card 22 levels off it) are blends alike to both, and would
    join them when alike pieces are: they are folded into the nearer first."""
    seeds = _seed_labels(flat, background.mask)
    labels = _reassign_strays(_grow(seeds, ~background.mask), seeds > 0)
    labels = _fine_strokes(labels, f, flat, background.mask)
    if smeared:
        labels = _compact(_absorb_slivers(labels, f, flat, rims=True))
    labels = _compact(_merge_split_surfaces(labels, f, flat))
    labels = _compact(_absorb_slivers(labels, f, flat))
    return labels, describe(labels, f, flat)


def _fine_strokes(
    labels: np.ndarray, f: np.ndarray, flat: np.ndarray, ground: np.ndarray
) -> np.ndarray:
    """Split off strokes too fine to hold a flat pixel (small text on a card, one or two
    pixels wide) from the region they grew into: pixels away from the ground that are
    FOREIGN to their region's colour and no blend of it with a region's beside them
    (the anti-aliased edge between two regions is; see _edge_blend) become a new region
    per connected stroke that lies within that one region. Unsplit, the words would be
    part of the card."""
    import cv2
    from scipy.ndimage import find_objects

    count = int(labels.max())
    if count == 0:
        return labels
    colour, known = _label_means(labels, flat, f, count)
    inside = cv2.erode((~ground).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    own = colour.astype(np.float32)
    distance = np.zeros(labels.shape, np.float32)  # channel by channel: no canvas-sized RGBA
    for c in range(4):
        np.maximum(distance, np.abs(f[..., c] - own[labels, c]), out=distance)
    foreign = (distance > FOREIGN) & ~flat & inside & (known[labels] > 0)
    del distance
    if not foreign.any():
        return labels
    ys, xs = np.nonzero(foreign)
    blend = _edge_blend(labels, f, colour, known, ys, xs)
    strokes = np.zeros(labels.shape, np.uint8)
    strokes[ys[~blend], xs[~blend]] = 1
    _, pieces = cv2.connectedComponents(strokes, connectivity=8)
    out, next_label = labels.copy(), count + 1
    for index, box in enumerate(find_objects(pieces), start=1):
        rows = slice(max(0, box[0].start - 1), box[0].stop + 1)
        cols = slice(max(0, box[1].start - 1), box[1].stop + 1)
        stroke = pieces[rows, cols] == index
        ring = cv2.dilate(stroke.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        around = np.unique(labels[rows, cols][ring & ~stroke])
        host = np.bincount(labels[rows, cols][stroke]).argmax()
        # drawn on one surface: beside nothing but it (or a counter of it that the
        # letters cut off) and pieces of no known colour (other fine strokes). A
        # shadow's edge across a shape meets its flat middle, the ground or a shape.
        alone = all(
            a == host
            or (a and not known[a])
            or (a and np.abs(colour[a] - colour[host]).max() < SAME_COLOUR)
            for a in around
        )
        if stroke.sum() >= MIN_CORE // 2 and alone:
            out[rows, cols][stroke] = next_label
            next_label += 1
    return out


def _edge_blend(
    labels: np.ndarray, f: np.ndarray, colour: np.ndarray, known: np.ndarray, ys, xs
) -> np.ndarray:
    """Which pixels (``ys``, ``xs``) are a blend of their region's colour and that of a
    region within RIM pixels of them (the anti-aliased edge where two regions meet), or
    of a larger region their own touches (the surface that words lie on, seen through a
    counter too small for a seed of its own). Not of any region their own touches: a
    glyph too thin for a seed, grown into the card it is drawn on, is dark ink on white
    as the card's edge with its other words is, yet no edge of theirs; kept in the card
    it leaves a text-shaped hole and ink specks there."""
    h, w = labels.shape
    mine = labels[ys, xs]
    pixels = f[ys, xs]
    blend = np.zeros(len(ys), bool)
    for dy in range(-RIM, RIM + 1):
        for dx in range(-RIM, RIM + 1):
            other = labels[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)]
            test = ~blend & (other != mine) & (known[other] > 0) & (other > 0)
            if test.any():
                blend[test] = _on_line(pixels[test], colour[mine[test]], colour[other[test]])
    area = np.bincount(labels.ravel())
    larger: dict[int, list[int]] = {}
    for a, b in adjacency(labels):
        if a and b and known[a] and known[b] and area[a] != area[b]:
            small, large = (a, b) if area[a] < area[b] else (b, a)
            larger.setdefault(small, []).append(large)
    for region in np.unique(mine[~blend]):
        here = mine == region
        for other in larger.get(int(region), []):
            at = np.flatnonzero(here & ~blend)
            blend[at] = _on_line(pixels[at], colour[region], colour[other])
    return blend


def _on_line(pixels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Which ``pixels`` (n, c) are a blend of colours ``a`` and ``b``, within SAME_COLOUR
    (``a`` may be one colour per pixel: a gradient fill where each pixel lies)."""
    towards = a - b
    reach = np.maximum((towards * towards).sum(axis=-1), 1e-6)
    t = np.clip(((pixels - b) * towards).sum(axis=-1) / reach, 0.0, 1.0)
    return np.abs(pixels - b - t[..., None] * towards).max(axis=-1) <= SAME_COLOUR


def _absorb_slivers(
    labels: np.ndarray, f: np.ndarray, flat: np.ndarray, rims: bool = False
) -> np.ndarray:
    """Fold small regions that are a blend of two neighbouring regions into the one of
    the two whose colour they are nearer: the strip of mixed pixels where text meets
    the edge of the shape it crosses, thin strokes of text over a shape, are rim of
    one or the other, not an element (each would take a layer of its own, or sit on
    one as a sliver). ``rims``: only regions with no flat pixel."""
    count = int(labels.max())
    if count < 2:
        return labels
    mean = _mean_colours(labels, f, flat, count)
    area = np.bincount(labels.ravel(), minlength=count + 1)
    border = _border_lengths(labels, count)
    lut = np.arange(count + 1)
    cored = (
        np.bincount(labels[flat], minlength=count + 1) > 0 if rims else np.zeros(count + 1, bool)
    )
    for region in np.argsort(area[1:]) + 1:
        if cored[region]:
            continue
        around = [n for n in np.sort(border[region].indices) if n and lut[n] == n]
        pairs = [(a, b) for k, a in enumerate(around) for b in around[k + 1 :]]
        for a, b in pairs:
            t = _blend(mean[region], mean[a], mean[b])
            if area[region] < SLIVER * max(area[a], area[b]) and t is not None:
                lut[region] = a if t > 0.5 else b
                break
    while (lut[lut] != lut).any():  # a region that took in a sliver may be one itself
        lut = lut[lut]
    return lut[labels].astype(np.int32)


def _border_lengths(labels: np.ndarray, count: int):
    """(count+1)² counts of 4-neighbour pixel pairs between each two labels, as a sparse
    (CSR) matrix: a page of small text holds thousands of pieces."""
    from scipy.sparse import coo_matrix

    rows, cols = [], []
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        differ = a != b
        rows += [a[differ], b[differ]]
        cols += [b[differ], a[differ]]
    row, col = np.concatenate(rows), np.concatenate(cols)
    shape = (count + 1, count + 1)
    return coo_matrix((np.ones(row.size, np.int64), (row, col)), shape=shape).tocsr()


def _blend(colour: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    """t where ``colour`` is the blend t·a + (1 − t)·b (premultiplied RGBA), 0 < t < 1,
    or None when it is no such blend."""
    towards = a - b
    t = float((colour - b) @ towards / max(float(towards @ towards), 1e-6))
    if 0.05 < t < 0.95 and np.abs(colour - b - t * towards).max() <= 2 * SAME_COLOUR:
        return t
    return None


def _reassign_strays(labels: np.ndarray, seeded: np.ndarray) -> np.ndarray:
    """Give each detached crumb of a region (rim pixels grown across a gap, no seed in
    it) to the neighbouring region it touches most, so no layer carries specks beside
    another; one that touches no other region stays (never given to the background: a
    thin glyph grown from its neighbour's seed is a crumb too)."""
    import cv2
    from scipy.ndimage import find_objects

    h, w = labels.shape
    out = labels.copy()
    for index, found in enumerate(find_objects(labels), start=1):
        if found is None:
            continue
        rows = slice(max(0, found[0].start - 1), min(h, found[0].stop + 1))
        cols = slice(max(0, found[1].start - 1), min(w, found[1].stop + 1))
        mine = labels[rows, cols] == index
        count, pieces = cv2.connectedComponents(mine.astype(np.uint8), connectivity=8)
        if count <= 2:
            continue
        has_seed = np.zeros(count, bool)
        has_seed[pieces[seeded[rows, cols] & mine]] = True
        for piece in np.flatnonzero(~has_seed[1:]) + 1:
            crumb = pieces == piece
            ring = cv2.dilate(crumb.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            around = labels[rows, cols][ring & ~crumb]
            around = around[(around != index) & (around != 0)]  # never to the background
            if around.size:
                values, counts = np.unique(around, return_counts=True)
                out[rows, cols][crumb] = values[np.argmax(counts)]
    return out


def _compact(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 1..K without gaps, 0 staying the background."""
    used = np.unique(labels[labels > 0])
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[used] = np.arange(1, used.size + 1)
    return lut[labels]


def _seed_labels(flat: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Flat cores big enough, plus whole foreground pieces that have no such core."""
    import cv2

    fg = ~bg
    count, cores, stats, _ = cv2.connectedComponentsWithStats(
        (flat & fg).astype(np.uint8), connectivity=4
    )
    keep = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] >= MIN_CORE)
    keep = keep[keep > 0]
    remap = np.zeros(count, np.int32)
    remap[keep] = np.arange(1, keep.size + 1)
    seeds = remap[cores]
    seeds = _add_strokes(seeds, fg)
    pieces_count, pieces = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    has_core = np.zeros(pieces_count, bool)
    has_core[pieces[seeds > 0]] = True
    bare = np.flatnonzero(~has_core)
    bare = bare[bare > 0]
    if bare.size:
        extra = np.zeros(pieces_count, np.int32)
        first = int(seeds.max()) + 1
        extra[bare] = np.arange(first, first + bare.size)
        seeds = np.where(seeds > 0, seeds, extra[pieces])
    return seeds


def _add_strokes(seeds: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Seeds for thin strokes (small text on a card): foreground pixels that are not
    flat yet three or more pixels away from any flat core and from the background, so
    they are neither a core's rim nor the background's."""
    import cv2

    free = (fg & (seeds == 0)).astype(np.uint8)
    # Around an edge the non-flat band is rim + one pixel each side: up to 4 wide.
    inner = cv2.erode(free, np.ones((5, 5), np.uint8), borderValue=0)
    count, strokes = cv2.connectedComponents(inner, connectivity=8)
    if count <= 1:
        return seeds
    strokes = np.where(strokes > 0, strokes + int(seeds.max()), 0)
    return np.where(seeds > 0, seeds, strokes).astype(np.int32)


def _grow(seeds: np.ndarray, fg: np.ndarray) -> np.ndarray:
    """Give every foreground pixel the label of its nearest seed."""
    from scipy.ndimage import distance_transform_edt

    if not (seeds > 0).any():
        return seeds
    iy, ix = distance_transform_edt(seeds == 0, return_distances=False, return_indices=True)
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


def _merge_split_surfaces(labels: np.ndarray, f: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """Join same-coloured regions that touch or are close (one element in pieces: the
    glyphs of a line of text, an icon's parts), then those that one common region
    cuts apart (see _bridged: a triangle's tip and base around a star on it, the counter
    of an "o" and the card under the "o"), that are words of one line across it, or
    that do not both lie on it (see lies_on). Two elements of one colour that both lie on
    one region (a title across a card and the label on the card) stay apart, and so do
    two that a region between them lies on one of and under the other (see _apart):
    a disc under a card and a disc on it are two elements at two depths, however close."""
    from scipy.ndimage import binary_fill_holes, find_objects

    count = int(labels.max())
    if count < 3:
        return labels
    mean = _mean_colours(labels, f, flat, count)
    neighbours: dict[int, set[int]] = {i: set() for i in range(count + 1)}
    for a, b in adjacency(labels):  # the background (0) included
        neighbours[a].add(b)
        neighbours[b].add(a)
    parent = list(range(count + 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def alike(a: int, others: np.ndarray) -> np.ndarray:
        """``others`` (labels) of ``a``'s colour, within SAME_COLOUR."""
        return others[np.abs(mean[others] - mean[a]).max(axis=-1) < SAME_COLOUR]

    for a in range(1, count + 1):
        for b in alike(a, np.array(sorted(neighbours[a] - {0}), np.int64)).tolist():
            parent[root(a)] = root(b)
    # Close pieces with no flat pixel (the glyphs of small text) have colours their rims
    # dilute: they are alike on a looser tolerance.
    rimmed = np.bincount(labels[flat], minlength=count + 1) == 0
    near = _near_pairs(labels, count)
    distance = np.abs(mean[near[:, 0]] - mean[near[:, 1]]).max(axis=-1)
    close = (distance < SAME_COLOUR) | (
        rimmed[near[:, 0]] & rimmed[near[:, 1]] & (distance < RIMMED_COLOUR)
    )
    pieces = find_objects(labels)
    _, sure = _relations(labels, pieces)
    for a, b in near[close].tolist():
        if not _apart(a, b, neighbours[a] & neighbours[b], sure, pieces):
            parent[root(a)] = root(b)
    joined = np.array([root(i) for i in range(count + 1)])
    grouped = joined[labels]
    boxes = find_objects(grouped)
    tried: dict[tuple[int, int, int], bool] = {}
    grouped_relation, grouped_sure = _relations(grouped, boxes)

    @functools.cache
    def filled(cut: int) -> np.ndarray:  # the cut with what lies in its holes
        return binary_fill_holes(grouped[boxes[cut - 1]] == cut)

    @functools.cache
    def holes(cut: int) -> np.ndarray:
        """On the cut's box: the holes of its pieces that are surfaces (a card, a
        field; occlusion._surfaces_filled), labelled; not of a glyph (its counters)."""
        import cv2

        from layerctl.backends.classic import occlusion

        piece = grouped[boxes[cut - 1]] == cut
        inside = (occlusion._surfaces_filled(piece) & ~piece).astype(np.uint8)
        return cv2.connectedComponents(inside, connectivity=8)[1]

    @functools.cache
    def words_on(label: int, cut: int) -> bool:
        """Whether piece ``label`` lies wholly (occlusion.ENCLOSED) in the holes of a
        surface, WORDS of them or more: words on a card or a field, where a counter
        shows the surface under a glyph through one hole or two."""
        from layerctl.backends.classic import occlusion

        inter = occlusion._intersection(boxes[label - 1], boxes[cut - 1])
        if inter is None:
            return False
        mine = grouped[inter] == label
        inside = occlusion._crop(holes(cut), boxes[cut - 1], inter)[mine]
        whole = int((grouped[boxes[label - 1]] == label).sum())
        held = np.count_nonzero(inside) >= occlusion.ENCLOSED * whole
        return held and np.unique(inside[inside > 0]).size >= WORDS

    def lies_on(label: int, cut: int) -> bool:
        """Whether piece ``label`` lies on piece ``cut`` (occlusion._relation). Two
        same-coloured elements that both do are two (a title across a card and the
        label on the card), not one surface the cut crosses (a scribble under a stroke,
        a soft shadow around a star)."""
        return grouped_relation(label, cut) == "over"

    for cut in range(1, count + 1):
        # Pieces joined above share their box and so what decides: one test per pair
        # of such groups around the cut, when some of their pieces are alike.
        around: dict[int, list[int]] = {}
        for x in sorted(neighbours[cut] - {0}):
            around.setdefault(int(joined[x]), []).append(x)
        groups = sorted(around)
        for k, a in enumerate(groups):
            for b in groups[k + 1 :]:
                if root(a) == root(b) or not _any_alike(mean, around[a], around[b]):
                    continue
                # a counter of the cut showing the surface the cut lies on: within the
                # boxes of both (a label on a card lies outside the title's box), not
                # words in a surface's holes (a field's placeholder in its outline's box)
                counter = any(
                    _inside(boxes[x - 1], boxes[joined[cut] - 1])
                    and _inside(boxes[x - 1], boxes[y - 1])
                    and not words_on(x, int(joined[cut]))
                    for x, y in ((a, b), (b, a))
                )
                key = (a, b, int(joined[cut]))
                if not counter and key not in tried:
                    line = _one_line(boxes[a - 1], boxes[b - 1])
                    # one in the holes of a surface, the other around it (a field's
                    # placeholder and its outline): one lies on it, the other does not
                    held = words_on(a, key[2]) != words_on(b, key[2])
                    tried[key] = line or (
                        not held
                        and (
                            _bridged(grouped, boxes, *key, filled(key[2]))
                            or not (
                                (lies_on(a, key[2]) and lies_on(b, key[2]))
                                or _apart(a, b, {key[2]}, grouped_sure, boxes)
                            )
                        )
                    )
                if counter or tried[key]:
                    parent[root(a)] = root(b)
    remap = np.array([root(i) for i in range(count + 1)])
    return remap[labels].astype(np.int32)


def _relations(labels: np.ndarray, boxes):
    """(relation, sure) of two pieces of the label map ``labels`` (boxes: its
    find_objects), remembered: occlusion._relation (whether the first lies "over" or
    "under" the second), and the same where a clear cue decided it, else None."""
    from layerctl.backends.classic import occlusion

    @functools.cache
    def cue(label: int, other: int) -> tuple[str | None, bool]:
        return occlusion._cue(_piece(labels, boxes, label), _piece(labels, boxes, other))

    def relation(label: int, other: int) -> str | None:
        return cue(label, other)[0]

    def sure(label: int, other: int) -> str | None:
        found, clear = cue(label, other)
        return found if clear else None

    return relation, sure


def _apart(a: int, b: int, between, sure, boxes) -> bool:
    """Whether some region of ``between`` (labels; the background 0 skipped) clearly
    lies on one of pieces ``a``, ``b`` and under the other (``sure``, see _relations):
    two elements at two depths (a blob under a card and a hexagon on it, of one palette
    colour), never one surface. Close calls say nothing (a scribble's two ends either
    side of a stroke over it). A region whose box holds both pieces' boxes is skipped:
    what lies within it (glyphs on a card) lies on it, and a page of small text would
    otherwise cost a relation per glyph."""
    for c in sorted(set(between) - {0, a, b}):
        if _inside(boxes[a - 1], boxes[c - 1]) and _inside(boxes[b - 1], boxes[c - 1]):
            continue
        if {sure(a, c), sure(b, c)} == {"over", "under"}:
            return True
    return False


def _any_alike(mean: np.ndarray, a: list[int], b: list[int]) -> bool:
    """Whether some label of ``a`` and some of ``b`` have one colour (SAME_COLOUR),
    NEAR_ROWS labels of the shorter list at a time."""
    few, many = sorted((a, b), key=len)
    other = mean[many]
    for start in range(0, len(few), NEAR_ROWS):
        part = mean[few[start : start + NEAR_ROWS]]
        if (np.abs(part[:, None] - other[None]).max(axis=-1) < SAME_COLOUR).any():
            return True
    return False


def _bridged(groups: np.ndarray, boxes, a: int, b: int, cut: int, whole: np.ndarray) -> bool:
    """Whether piece ``cut`` (``whole``: on its box, with what lies in its holes, as the
    photo in a polaroid's frame) fills most (BRIDGED) of what the convex hull of pieces
    ``a`` and ``b`` spans between them: one surface cut in two by what lies on it, not
    two elements side by side on the ground (groups: a label map of pieces; boxes:
    their find_objects)."""
    box = union(boxes[a - 1], boxes[b - 1])
    crop = groups[box]
    mine = (crop == a) | (crop == b)
    between = convex_hull(mine) & ~mine
    covered = recrop(whole, boxes[cut - 1], union(box, boxes[cut - 1]))
    covered = covered[_within(box, union(box, boxes[cut - 1]))]
    return int((between & covered).sum()) >= BRIDGED * int(between.sum())


def _piece(groups: np.ndarray, boxes, label: int) -> Region:
    """Piece ``label`` of the label map ``groups`` as a Region (for occlusion cues)."""
    box = grown(boxes[label - 1], PAD, groups.shape)
    visible = groups[box] == label
    return Region(box, visible, visible, convex_hull(visible), np.zeros(4))


def _one_line(a, b) -> bool:
    """Whether boxes ``a`` and ``b`` hold words of one line: heights within LINE of each
    other, sharing most of the smaller's rows (a title and the label under it do not)."""
    height_a, height_b = a[0].stop - a[0].start, b[0].stop - b[0].start
    shared = min(a[0].stop, b[0].stop) - max(a[0].start, b[0].start)
    return max(height_a, height_b) <= LINE * min(height_a, height_b) and shared > 0.5 * min(
        height_a, height_b
    )


def _inside(box, other) -> bool:
    """Whether ``box`` lies within the ``other`` box."""
    return all(p.start >= q.start and p.stop <= q.stop for p, q in zip(box, other, strict=True))


def union(a, b) -> tuple[slice, slice]:
    """The smallest box holding boxes ``a`` and ``b``."""
    return tuple(
        slice(min(p.start, q.start), max(p.stop, q.stop)) for p, q in zip(a, b, strict=True)
    )


def _within(box, wider) -> tuple[slice, slice]:
    """``box`` as slices of a crop on the ``wider`` box that holds it."""
    return tuple(
        slice(p.start - q.start, p.stop - q.start) for p, q in zip(box, wider, strict=True)
    )


def _near_pairs(labels: np.ndarray, count: int) -> np.ndarray:
    """(n, 2) label pairs a < b whose bounding boxes are closer than NEAR × the smaller
    box's height, of heights within GLYPHS of each other, neither inside the other:
    glyphs side by side (a disc inside a page border's box, a word beside a photo's
    dark patch, are not). Compared NEAR_ROWS labels at a time: a page of small text
    holds thousands of pieces, whose full table of pairs would take gigabytes."""
    from scipy.ndimage import find_objects

    boxes = np.zeros((count + 1, 4))
    for index, found in enumerate(find_objects(labels, count), start=1):
        if found is not None:
            boxes[index] = found[0].start, found[0].stop, found[1].start, found[1].stop
    top, bottom, left, right = boxes.T
    height = bottom - top
    pairs = [np.empty((0, 2), np.int64)]
    for start in range(1, count + 1, NEAR_ROWS):
        a = slice(start, min(start + NEAR_ROWS, count + 1))
        gap_y = np.maximum(top[a, None] - bottom[None], top[None] - bottom[a, None])
        gap_x = np.maximum(left[a, None] - right[None], left[None] - right[a, None])
        shorter = np.minimum(height[a, None], height[None])
        near = np.maximum(gap_x, gap_y) < NEAR * shorter
        near &= np.maximum(height[a, None], height[None]) <= GLYPHS * shorter
        a_in_b = (top[a, None] >= top[None]) & (bottom[a, None] <= bottom[None])
        a_in_b &= (left[a, None] >= left[None]) & (right[a, None] <= right[None])
        b_in_a = (top[None] >= top[a, None]) & (bottom[None] <= bottom[a, None])
        b_in_a &= (left[None] >= left[a, None]) & (right[None] <= right[a, None])
        rows, cols = np.nonzero(near & ~a_in_b & ~b_in_a)
        rows += start
        keep = (rows < cols) & (cols > 0)
        pairs.append(np.stack([rows[keep], cols[keep]], axis=-1))
    return np.concatenate(pairs)


def _mean_colours(labels: np.ndarray, f: np.ndarray, flat: np.ndarray, count: int) -> np.ndarray:
    """Mean premultiplied RGBA per label over its flat pixels (rims would blur it), or,
    when it has no flat ones (small text, hairlines: all rim), over its purest pixels:
    those farthest from the colour around it, within PURE of the farthest. The plain
    mean of a small light word on a dark card is half card; it would read as a blend
    of the card and the next word, not as a word."""
    flat_mean, flat_count = _label_means(labels, flat, f, count)
    all_mean, _ = _label_means(labels, np.ones(labels.shape, bool), f, count)
    mean = np.where(flat_count[:, None] > 0, flat_mean, all_mean)
    rimmed = flat_count == 0
    rimmed[0] = False
    if not rimmed.any():
        return mean
    border = _border_lengths(labels, count)  # no label borders itself
    around = mean[np.asarray(border.argmax(axis=1)).ravel()]  # the colour each is drawn on
    mine = rimmed[labels]
    distance = np.abs(f[mine] - around[labels[mine]]).max(axis=-1)
    farthest = np.zeros(count + 1)
    np.maximum.at(farthest, labels[mine], distance)
    pure = np.zeros(labels.shape, bool)
    pure[mine] = distance >= PURE * farthest[labels[mine]]
    pure_mean, pure_count = _label_means(labels, pure, f, count)
    return np.where((rimmed & (pure_count > 0))[:, None], pure_mean, mean)


def _label_means(labels: np.ndarray, where: np.ndarray, f: np.ndarray, count: int):
    """(mean premultiplied RGBA per label over ``where``, pixel count per label)."""
    chosen = np.where(where, labels, 0).ravel()
    sums = np.stack([np.bincount(chosen, f[..., c].ravel(), count + 1) for c in range(4)], -1)
    counts = np.bincount(chosen, minlength=count + 1)
    return sums / np.maximum(counts, 1)[:, None], counts


def describe(labels: np.ndarray, f: np.ndarray, flat: np.ndarray) -> list[Region]:
    from scipy.ndimage import find_objects

    h, w = labels.shape
    regions = []
    for index, found in enumerate(find_objects(labels), start=1):
        rows = slice(max(0, found[0].start - PAD), min(h, found[0].stop + PAD))
        cols = slice(max(0, found[1].start - PAD), min(w, found[1].stop + PAD))
        visible = labels[rows, cols] == index
        core = visible & flat[rows, cols]
        source = core if core.any() else visible
        colour = f[rows, cols][source].mean(axis=0)
        regions.append(Region((rows, cols), visible, core, convex_hull(visible), colour))
    return regions


def convex_hull(mask: np.ndarray) -> np.ndarray:
    """``mask`` (bool, not empty) with its convex hull filled in."""
    import cv2

    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(_row_ends(mask)), 1)
    return hull.astype(bool) | mask


def _row_ends(mask: np.ndarray) -> np.ndarray:
    """(K, 1, 2) int32 x, y of each row's first and last pixel: every vertex of the
    mask's convex hull is one of them, so the hull of these few points is the mask's."""
    rows = np.flatnonzero(mask.any(axis=1))
    first = mask[rows].argmax(axis=1)
    last = mask.shape[1] - 1 - mask[rows, ::-1].argmax(axis=1)
    wide = last > first
    ends = [np.stack([first, rows], -1), np.stack([last[wide], rows[wide]], -1)]
    return np.concatenate(ends).astype(np.int32)[:, None]


def rims_to_upper(
    labels: np.ndarray,
    found: list[Region],
    ranks: list[int],
    above: list[set[int]],
    f: np.ndarray,
    flat: np.ndarray,
) -> np.ndarray:
    """Give the anti-aliased rim around an element to the element, not to what it lies on.

    Growing regions from their flat cores splits a rim between the two sides, so the
    half nearer the lower region (a card under white text) holds a card/text mix: the
    card layer would keep a light outline and the text lose part of its soft edge. Every
    non-flat pixel of a lower region within RIM pixels of a region on it that is a blend
    of the two (see _mixed; a soft shadow's own falloff stays with it) goes to that
    region, which then unblends it against the lower one's colour; the lower region
    reaches under it as under any occluder. Lower regions keep their flat pixels, so
    none is emptied; ``ranks`` is bottom first, so the topmost claimant wins.
    """
    import cv2

    out = labels.copy()
    kernel = np.ones((2 * RIM + 1, 2 * RIM + 1), np.uint8)
    below: dict[int, list[int]] = {j: [] for j in range(len(found))}
    for lower, uppers in enumerate(above):
        if found[lower].core.any():  # its own colour is known
            for upper in uppers:
                below[upper].append(lower + 1)
    for upper in ranks:
        region = found[upper]
        near = cv2.dilate(region.visible.astype(np.uint8), kernel) > 0
        rim = near & ~flat[region.box]
        for lower in below[upper]:
            lower_pixels = labels[region.box] == lower
            take = rim & lower_pixels
            known = lower_pixels & flat[region.box]
            if not (take.any() and known.any()):
                continue
            own = pull_push(f[region.box], known)
            out[region.box][take & _mixed(f[region.box], own, region.colour)] = upper + 1
    return out


def _mixed(pixels: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Pixels that are a blend of ``lower`` (per pixel) and ``upper`` (one colour): on
    the line between them (within RIM_MIX, or a quarter of the step) and at least
    RIM_MIX along it towards ``upper``. A shadow's own falloff leaves that line."""
    step = pixels - lower
    towards = upper - lower
    along = (step * towards).sum(axis=-1) / np.maximum((towards * towards).sum(axis=-1), 1e-6)
    off = np.abs(step - along[..., None] * towards).max(axis=-1)
    size = np.abs(step).max(axis=-1)
    reach = along * np.abs(towards).max(axis=-1)
    return (reach > RIM_MIX) & (off <= np.maximum(RIM_MIX, 0.25 * size))


def widen(region: Region, mask: np.ndarray) -> Region:
    """``region`` on a box that also holds ``mask`` (full canvas bool)."""
    rows, cols = np.nonzero(mask)
    (r, c) = region.box
    box = (
        slice(min(r.start, int(rows.min())), max(r.stop, int(rows.max()) + 1)),
        slice(min(c.start, int(cols.min())), max(c.stop, int(cols.max()) + 1)),
    )
    masks = (recrop(m, region.box, box) for m in (region.visible, region.core, region.hull))
    return Region(box, *masks, region.colour)


def grown(box, margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """``box`` widened by ``margin`` pixels each side, within a canvas of ``shape``."""
    rows, cols = box
    return (
        slice(max(0, rows.start - margin), min(shape[0], rows.stop + margin)),
        slice(max(0, cols.start - margin), min(shape[1], cols.stop + margin)),
    )


def recrop(crop: np.ndarray, box, wider) -> np.ndarray:
    """A bool crop on ``box`` moved onto the ``wider`` box that holds it, False around."""
    out = np.zeros((wider[0].stop - wider[0].start, wider[1].stop - wider[1].start), bool)
    top, left = box[0].start - wider[0].start, box[1].start - wider[1].start
    out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return out
