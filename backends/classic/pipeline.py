"""The classic decomposition: background, regions peeled off top first, layers.

1. Estimate the background and a smooth model of it under the whole canvas.
2. Split the rest into regions (flat or smoothly shaded areas with their rims).
3. Order regions by occlusion, give each element its whole anti-aliased rim, and let
   each region reach under the ones above it (its hull).
4. Peel from the top: each region's alpha and colour come from unblending the
   image against what lies under it (the next region's colour, or the background
   model); the image under it is then what the peeled layer covered.
5. Group regions into the requested number of layers.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from layerctl.backends.base import Layers
from layerctl.backends.classic import (
    group,
    matting,
    occlusion,
    photo,
    regions,
    segment,
    texture,
    veil,
)
from layerctl.backends.classic.fill import pull_push

VEIL_SAMPLES = 20000  # pixels per region that the veil tests look at
NEUTRAL_TOLERANCE = 40.0  # RGB distance of an across-edge veil from a black/white reading
PHOTO = 0.05  # canvas share of texture (segment.unexplained) that reads as a photograph
MAYBE_PHOTO = 0.015  # from this share, an enlarged (smooth) photograph when designed
# (flat designs with some grain leave under 0.01, on 12 seeds a family and the real
# files; a photograph enlarged 2-3× 0.015-0.03; the cat enlarged 3.5× under 0.01: flat art)
SMOOTH_GRAIN = 2.0  # elements lie on it and its ground has some grain, up to this: not a
# clean flat ground (segment.CLEAN), nor paper, noise or a JPEG's ringing (≳ 2.3)
PHOTO_NOTE = (
    "no flat graphics found (a photograph?): kept as one layer; "
    "--backend qwen decomposes photographs"
)
GRAINED = 0.01  # what a grainy ground's design leaves unexplained once smoothed (photos ≳ 0.02)
TRANSPARENT = 12  # alpha of a ground no more opaque than this: elements on transparency
NEAR_EMPTY = 0.0005  # share of the canvas (alpha-weighted) below which a layer is a trace
MINOR = 0.0005  # share of the canvas below which a region touching another is a speck of it
THIN = 0.2  # share of a region left after a 3×3 erosion below which it is strokes
SEE_THROUGH = 0.9  # median alpha below which an element's hidden part keeps its opacity
SPECKLED = 12  # isolated specks from which they are the ground's texture (stars, grain)
TEXTURE = 8  # on such a ground, isolated clusters up to this many MINOR are texture too
TAIL = 32  # px beyond a drop shadow's region that its faint tail may reach
TAIL_OPACITY = 0.05  # least opacity (above the ground's grain) that is still the shadow
SOLID = 128  # alpha that a small layer must reach somewhere to be an element, not a trace
TINTED_OUTLINE = 0.5  # share of a shape's outline on a panel for it to lie wholly inside
TINT_MARGIN = 8.0  # levels (0..255) an unveiled colour may stray outside the gamut: noise
ACROSS_AREA = 64  # px the part of an overlay over a shape shows at least (not a rim crumb)
ACROSS_GROUND = 0.25  # share of its outline on the ground from which the part of an
# overlay over a shape S may be a shape of its own (the overlay and S both end there)
ACROSS_SOLIDITY = 0.75  # share of their hull that S and that part fill: S whole
INK = 24.0  # max channel distance (0..255) of a speck's lifted colour from a blend of it
TEXT_SOLIDITY = 0.75  # share of its hull below which a row of 3+ pieces reads as text
GLYPH_FILL = 0.85  # share of its box that a glyph's piece fills at most (a card: ≳ 0.95)
OUTLINED = 0.8  # share of a fill's outer edge that the stroke drawn around it covers
OUTLINE_FIT = 0.8  # IoU of a fill and its stroke with the fill grown by the stroke's width
STROKE_SHARE = 0.35  # most width of a stroke, × the square root of the fill's area


def decompose(image: np.ndarray, layers: int) -> Layers:
    """Up to ``layers`` full-canvas RGBA uint8 layers, bottom first, that composite to
    ``image``, each with its role (Background, Text, Shape, Shadow, Overlay).

    Layer 0 is the background, painted in behind everything lifted off it (left out
    when the image's ground is transparent). Regions are grouped into at most the other
    ``layers - 1``: fewer when the image holds fewer elements, never padded with empty
    layers. On a photograph the designed elements are lifted off it (photo.py); one
    with none stays one layer, with a note saying so.
    """
    h, w = image.shape[:2]
    if layers == 1:
        return Layers([image.copy()], ["Background"])
    source, lossy = image, segment.compressed(image)
    if lossy:
        image = segment.deblocked(image)
    f, flat, background = ground(image, exact=not lossy, smeared=lossy)
    share = segment.unexplained(flat, background)
    if share > PHOTO:
        # A JPEG's designed colours are no longer exact: it stays whole, as before.
        del f, flat, background  # canvas-sized: freed before another look allocates its own
        grained = None if lossy else _grained(image)
        if grained is not None:  # flat graphics on a grainy ground (paper, noise)
            image, f, flat, background = grained
        else:
            f = segment.channels(image)
            flat = segment.flat_pixels(f, lossy)
            background = None if lossy else photo.elements_ground(f, flat)
            if background is None:
                return Layers([source.copy()], ["Background"], [PHOTO_NOTE])
    elif share > MAYBE_PHOTO and not lossy and segment.CLEAN < background.grain <= SMOOTH_GRAIN:
        background = photo.elements_ground(f, flat) or background
    transparent = _transparent_ground(image, background)
    bottom = [] if transparent else [_background_layer(image, background)]
    # On a textured ground (paper, noise) a see-through panel lets the texture show.
    grainy = bool(bottom) and not background.photo
    grainy = grainy and texture.grainy(texture.spread(source, background.mask))
    found, ranks, above, on_background, crossing, seen, casters, touching, tinted, abutting = (
        analyse(f, flat, background, source if grainy else None, lossy)
    )
    if not found:  # a plain colour, a gradient, noise: all background
        return Layers(bottom or [source.copy()], ["Background"])
    # A shape seen through an overlay goes on under it, and is completed as the whole
    # it shows (its part on the ground and its part under the overlay) under the
    # words across either; a drop shadow goes on under its caster, as it shows.
    shown = list(found)
    for i, mask in seen.items():
        shown[i] = found[i] = regions.widen(found[i], mask)
        if i not in casters:
            whole = _with_pixels(found[i], mask)
            shown[i] = dataclasses.replace(whole, hull=regions.convex_hull(whole.visible))
    reach, beyond = occlusion.supports(shown, ranks)
    for i, mask in seen.items():
        reach[i] |= mask[found[i].box]
    for s_, (p, fitted) in tinted.items():  # a panel goes on over what it tints, whole:
        reach[s_] = found[s_].visible.copy()  # nothing hides any of the shape's outline
        beyond[s_] = None
        mask = np.zeros((h, w), bool)
        mask[found[s_].box] = found[s_].visible
        narrow, found[p] = found[p].box, regions.widen(found[p], mask)
        reach[p] = regions.recrop(reach[p], narrow, found[p].box) | mask[found[p].box]
        rows, cols = found[s_].box
        where = found[s_].visible
        f[rows, cols][where, :3] = np.clip(_unveiled(f[rows, cols][where, :3], fitted), 0, 255)
    candidates = [
        r if i in on_background and i not in crossing else None for i, r in enumerate(found)
    ]
    veils = {**_veils(f, background, candidates, source if grainy else None), **crossing}
    if grainy:
        veils.update(_textured_across(source, background, found, crossing, seen))
    shadows = [i for i, v in veils.items() if v.falloff and v.colour.max() < 128]
    if shadows and bottom:  # a drop shadow's body and faint tail are the shadow's
        background = segment.refitted(background, f, _near_any(found, shadows, (h, w)))
        for i in shadows:
            tail = _shadow_tail(f, background, found[i])
            if not tail.any():
                continue
            narrow, found[i] = found[i].box, _with_pixels(found[i], tail)
            reach[i] = regions.recrop(reach[i], narrow, found[i].box) | tail[found[i].box]
            background.mask &= ~tail
        bottom = [_background_layer(image, background)]
    fills = [
        _veil_fill(veils[i], r.visible.shape)
        if i in veils
        else pull_push(f[r.box], r.core if r.core.any() else r.visible)
        for i, r in enumerate(found)
    ]
    work = f.copy()
    lifted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for depth in range(len(ranks) - 1, -1, -1):
        i = ranks[depth]
        region = found[i]
        under = _under(background.model, found, reach, fills, veils, ranks[:depth], region.box)
        crop = work[region.box]
        core = region.core
        if i in veils:
            core = np.zeros_like(core)
        elif not core.any():
            core = matting.thin_core(crop, under, region.visible)
        alpha, colour = matting.lift(crop, under, fills[i], region.visible, core)
        if i in veils and veils[i].texture:  # one opacity and colour, the texture left under
            alpha = texture.flatten(alpha, region.visible, veils[i])
            colour = np.broadcast_to(veils[i].colour.astype(np.float32), colour.shape)
        crop[region.visible] = under[region.visible]
        hidden = reach[i] & ~region.visible
        # A veil, or an element that is itself see-through (on a transparent ground),
        # goes on under what covers it as it shows, not as an opaque fill.
        see_through = i in veils or np.median(alpha[region.visible]) < SEE_THROUGH
        hidden_alpha = pull_push(alpha[..., None], region.visible)[..., 0] if see_through else 1.0
        if see_through:  # how far it goes on past its box is told for opaque shapes only
            beyond[i] = None
        alpha = np.where(hidden, hidden_alpha, alpha)
        colour = np.where(hidden[..., None], _straight(fills[i]), colour)
        lifted[i] = (alpha, colour)
    del f, work, fills  # canvas-sized and done with: not held while the layers are built
    order_of = {index: rank for rank, index in enumerate(ranks)}
    roles = [_role(r, veils.get(i)) for i, r in enumerate(found)]
    extents = [
        int(r.sum()) + (int(b[1].sum()) if b else 0) for r, b in zip(reach, beyond, strict=True)
    ]
    count = layers - len(bottom)
    # what photo.py found on a photograph is designed by its own tests: no grain
    textured = bottom and not background.photo
    grain = _grain(len(found), touching, extents, (h, w)) if textured else set()
    for i in grain:  # the ground's own texture stays on it, as it shows
        rows, cols = found[i].box
        where = found[i].visible
        bottom[0][rows, cols][where] = source[rows, cols][where]
    kept = [i for i in range(len(found)) if i not in grain]
    outlines = _outlines(found, touching, above, veils, (h, w))
    joined = abutting | _runs(found, roles)
    groups = _layer_groups(
        found, lifted, ranks, above, casters, outlines, joined, extents, count, (h, w), kept
    )
    out = Layers(bottom, ["Background"] * len(bottom))
    for members in groups:
        layer = np.zeros((h, w, 4), np.float32)
        for i in sorted(members, key=order_of.__getitem__):
            _paint(layer, found[i].box, reach[i], *lifted[i])
            if beyond[i] is not None:  # its completed shape, past its box: its own colour
                box, mask = beyond[i]
                colour = _straight(found[i].colour[None, None])
                _paint(layer, box, mask, np.ones(mask.shape, np.float32), colour)
        out.append(_to_uint8(layer))
        out.roles.append(roles[max(members, key=lambda j: found[j].area)])
    panels = [i for i, v in veils.items() if v.texture and i not in grain]
    if panels:
        texture.unveil(out, source, _near_any(found, panels, (h, w), 1))
    return _without_near_empty(out) or Layers([source.copy()], ["Background"])


def _grained(image: np.ndarray):
    """(smoothed image, its premultiplied channels, flat pixels, background) when
    ``image`` is flat graphics on a grainy ground (paper, noise): fine grain breaks its
    flat areas into specks, so that it reads as a photograph, but once smoothed
    (segment.deblocked) nearly all of it is flat (unexplained under GRAINED), and the
    input's ground has a texture (texture.grainy); else None: a photograph."""
    smoothed = segment.deblocked(image)
    f, flat, background = ground(smoothed, exact=False)
    if segment.unexplained(flat, background) > GRAINED:
        return None
    if not texture.grainy(texture.spread(image, background.mask)):
        return None
    beyond = texture.ground_beyond(image, flat, background.mask)
    if beyond.any():  # the ground on both sides of an element that spans the canvas
        background = segment.estimate_background(f, flat, False, background.mask | beyond)
    return smoothed, f, flat, background


def _without_near_empty(layers: Layers) -> Layers:
    """``layers`` less those that hold next to nothing: less than NEAR_EMPTY of the
    canvas (alpha-weighted), nowhere SOLID. A faint trace is no layer for a designer
    (a small solid element, a page number, is), and the lossless step gives its few
    values to the layers that show there."""
    least = max(4.0, NEAR_EMPTY * layers[0].shape[0] * layers[0].shape[1]) if layers else 0.0
    keep = [
        i
        for i, px in enumerate(layers)
        if px[..., 3].sum(dtype=np.int64) / 255 >= least or px[..., 3].max() >= SOLID
    ]
    return Layers([layers[i] for i in keep], [layers.roles[i] for i in keep], layers.notes)


def _grain(count: int, touching, extents: list[int], size) -> set[int]:
    """Specks, alone or in clusters of touching regions, when there are SPECKLED or more
    of them: the ground's texture (a star field, paper grain, noise), which no designer
    wants as layers of specks. A few are elements (a page number, a dot). On such a
    ground the texture's larger blots (a galaxy among the stars) are texture too, up to
    TEXTURE specks' size: a designed element stands out far above that."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.array([(a - 1, b - 1) for a, b in touching if a and b], np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(count, count))
    _, cluster = connected_components(graph, directed=False)
    reach = np.bincount(cluster, weights=np.asarray(extents, np.float64))
    speck = MINOR * size[0] * size[1]
    if (reach < speck).sum() < SPECKLED:
        return set()
    return set(np.flatnonzero(reach[cluster] < TEXTURE * speck).tolist())


def _layer_groups(
    found,
    lifted,
    ranks,
    above,
    casters,
    outlines: dict[int, int],
    joined: set[tuple[int, int]],
    extents: list[int],
    count: int,
    size,
    kept: list[int],
) -> list[list[int]]:
    """At most ``count`` groups of region indices, bottom first: one element per layer
    before any shadow or speck takes one. A speck (a region reaching under MINOR of the
    canvas, hidden part included) that touches another region goes with it, a stroke
    with the fill it outlines; each drop shadow goes with the shape that casts it;
    ``joined`` pairs on one level are one element (parts that abut at a seam, as a
    donut chart's do; runs of one line of text in different colours). Only
    layers left over once every element has its own take shadows of their own (the
    largest first), just under their caster's."""
    if not kept:  # every region is the ground's texture (specks on a page)
        return []
    with_fill = {i: n for i, n in outlines.items() if n in kept}
    unit = {i: casters.get(i, with_fill.get(i, i)) for i in kept}
    least = MINOR * size[0] * size[1]
    specks = [i for i in kept if extents[i] < least and i not in casters]
    elements = [i for i in kept if extents[i] >= least]
    colours = {i: _lifted_colour(found[i], *lifted[i]) for i in kept} if specks else {}
    # a drop shadow is dark as ink, and its box holds its card and every word on it
    words = [i for i in elements if i not in casters]
    for i in sorted(specks, key=lambda i: extents[i]):
        host = _host(found, i, unit)
        word = _word(found, colours, i, host, words)
        unit[i] = unit[word if word is not None else host]
    level = group.levels(ranks, above)
    for a, b in joined:  # each joins the other's unit: the root of one points at the other's
        if a in unit and b in unit and level[a] == level[b]:
            unit[_root(unit, a)] = _root(unit, b)
    for i in unit:  # a speck's host may be a speck of another region
        unit[i] = _root(unit, i)
    heads = sorted(set(unit.values()))
    features = np.array([_features(found[i], *lifted[i], size) for i in heads])
    areas = np.array([sum(found[j].area for j in unit if unit[j] == i) for i in heads])
    planned = group.plan([level[i] for i in heads], features, areas, count)
    groups = [[j for j in unit if unit[j] in {heads[k] for k in part}] for part in planned]
    spare = count - len(groups)
    # A shadow left on the ground as its texture, or whose caster was, has no caster
    # in its group to leave.
    apart = [s_ for s_ in casters if s_ in unit and unit[s_] in unit]
    for shadow in sorted(apart, key=lambda s_: -found[s_].area)[: max(spare, 0)]:
        home = next(g for g in groups if shadow in g)
        home.remove(shadow)
        groups.insert(groups.index(home), [shadow])
    return groups


def _root(unit: dict[int, int], i: int) -> int:
    """The region that ``i``'s chain of units ends at (a caster outside them included)."""
    while unit.get(i, i) != i:
        i = unit[i]
    return i


def _runs(found, roles: list[str]) -> set[tuple[int, int]]:
    """Pairs of Text regions on one line within regions.NEAR × their height: runs
    of one line of text in different colours (a highlighted word), one text element."""
    texts = [i for i, role in enumerate(roles) if role == "Text"]
    pairs = set()
    for a, b in itertools.combinations(texts, 2):
        box_a, box_b = found[a].box, found[b].box
        height = min(box_a[0].stop - box_a[0].start, box_b[0].stop - box_b[0].start)
        if regions._one_line(box_a, box_b) and _gap(box_a, box_b) <= regions.NEAR * height:
            pairs.add((a, b))
    return pairs


def _word(found, colours, index: int, host: int, elements: list[int]) -> int | None:
    """The nearest of ``elements`` within regions.NEAR × the speck's height (as glyphs
    join a word) towards whose lifted colour the speck's lies from its host's, a half
    to one and a half of the way (within INK), or None: a glyph too thin to hold a
    flat pixel (the "A" of a name on a card; small text lifts paler than its ink)
    belongs to the words beside it, not to the card under it."""
    if host == index:  # on nothing but the ground: no surface to take it for
        return None
    region = found[index]
    reach = regions.NEAR * (region.box[0].stop - region.box[0].start)
    best, nearest = None, reach
    for j in elements:
        gap = _gap(region.box, found[j].box)
        if j == host or gap > nearest:
            continue
        towards = colours[j] - colours[host]
        if np.abs(towards).max() <= INK:  # the host's own colour: the host decides
            continue
        t = float((colours[index] - colours[host]) @ towards) / float(towards @ towards)
        if 0.5 <= t <= 1.5 and np.abs(colours[index] - colours[host] - t * towards).max() <= INK:
            best, nearest = j, gap
    return best


def _gap(a, b) -> int:
    """Pixels between two boxes (0 when they overlap or touch)."""
    rows = max(0, b[0].start - a[0].stop, a[0].start - b[0].stop)
    cols = max(0, b[1].start - a[1].stop, a[1].start - b[1].stop)
    return max(rows, cols)


def _host(found, index: int, unit: dict[int, int]) -> int:
    """The region that ``index`` shares the most border with, or itself."""
    region = found[index]
    ring = _ring_of(region.visible)
    best, host = 0, index
    for j, other in enumerate(found):
        inter = occlusion._intersection(region.box, other.box)
        if j == index or j not in unit or inter is None:
            continue
        shared = occlusion._count_inside(ring, region.box, other.visible, other.box)
        if shared > best:
            best, host = shared, j
    return host


def _transparent_ground(image: np.ndarray, background: segment.Background) -> bool:
    """Whether the elements lie on transparency, as layers exported alone do: then there
    is no background layer, and the stray pixels the background holds join the
    bottom element through the lossless step."""
    shown = image[..., 3][background.mask]
    return bool(shown.size) and float(np.median(shown)) <= TRANSPARENT


def ground(
    image: np.ndarray, exact: bool = True, smeared: bool = False
) -> tuple[np.ndarray, np.ndarray, segment.Background]:
    """(premultiplied image, its flat pixels, its background); a picture inside the
    design counts as one flat surface (segment.pictures). ``smeared``: a JPEG (see
    segment.flat_pixels)."""
    f = segment.channels(image)
    flat = segment.flat_pixels(f, smeared)
    background = segment.estimate_background(f, flat, exact)
    found = segment.pictures(image, flat, background)
    if found.any():
        flat = segment.with_pictures(flat, found)
        if (background.mask & found).any():
            background = segment.without(background, f, found)
    return f, flat, background


def analyse(
    f: np.ndarray,
    flat: np.ndarray,
    background: segment.Background,
    source: np.ndarray | None = None,
    smeared: bool = False,
):
    """(regions, bottom-first order, "lies on" sets, indices of the regions that touch
    the background, {index: veil} of overlays found across an edge, {index: canvas
    mask} of where each region goes on under others beyond its completed shape: a
    shape seen through such an overlay, a drop shadow under the whole shape that casts
    it; {shadow: the shape that casts it}, the label pairs that touch, {shape: (panel,
    its veil)} of the shapes seen through a panel (see _tinted), the pairs that only
    abut (occlusion.order)). ``source``: the input, when a panel on its textured ground
    is measured by the texture it lets show; ``smeared``: a JPEG (regions.find_regions)."""
    labels, found = regions.find_regions(f, flat, background, smeared)
    touching = regions.adjacency(labels)
    labels, crossing, forced, seen = _overlays_across_edges(labels, found, touching, background, f)
    if crossing:
        found = regions.describe(labels, f, flat)
        touching = regions.adjacency(labels)
    on_background = {b - 1 for a, b in touching if a == 0}
    candidates = [
        r if i in on_background and i not in crossing else None for i, r in enumerate(found)
    ]
    veils = {**_veils(f, background, candidates), **crossing}
    shadows = _shadows_under(touching, {i for i, v in veils.items() if v.falloff})
    panels = dict(veils)

    def panel(p: int) -> veil.Veil | None:
        """A flat veil, or one the ground's texture shows through (fitted on demand)."""
        if p not in panels and source is not None and candidates[p] is not None:
            panels[p] = texture.fit(
                source, background.model, background.mask, found[p].box, found[p].visible
            )
        return panels.get(p)

    tinted = _tinted(labels, found, on_background, panel)
    forced = forced | shadows | {(s_, p) for s_, (p, _) in tinted.items()}
    ranks, above, abutting = occlusion.order(found, touching, forced)
    labels = regions.rims_to_upper(labels, found, *_rims_of_tinted(ranks, above, tinted), f, flat)
    found = regions.describe(labels, f, flat)
    casters = _casters(found, shadows)
    for s_, n in casters.items():  # a shadow goes on under its caster
        seen[s_] = seen.get(s_, False) | (labels == n + 1)
    return found, ranks, above, on_background, crossing, seen, casters, touching, tinted, abutting


def _tinted(labels, found, on_background, panel) -> dict[int, tuple[int, veil.Veil]]:
    """{region: (the panel over it, the panel's veil)}: an opaque shape wholly inside a
    see-through panel (clear of the ground, its outline on the panel) in a colour the
    panel's tint can make, every channel within [a·K, a·K + (1 − a)·255] unveiled. A
    shape on the panel shows that colour only by chance (a white panel at half opacity
    leaves an eighth of all colours), one under it always; text, and any colour the
    tint cannot make, lies on the panel as it shows."""

    out: dict[int, tuple[int, veil.Veil]] = {}
    for s_, region in enumerate(found):
        if s_ in on_background or region.colour[3] <= 254.0 or _thin(region.visible):
            continue
        if _role(region, None) == "Text":
            continue
        around = labels[region.box][_ring_of(region.visible)]
        if not around.size:  # it fills the canvas: on nothing
            continue
        values, counts = np.unique(around, return_counts=True)
        p = int(values[np.argmax(counts)]) - 1
        if p < 0 or counts.max() < TINTED_OUTLINE * around.size:
            continue
        fitted = panel(p)
        if fitted is None or fitted.falloff:
            continue
        if (_unveiled(region.colour[:3], fitted) < -TINT_MARGIN).any():
            continue
        if (_unveiled(region.colour[:3], fitted) > 255.0 + TINT_MARGIN).any():
            continue
        out[s_] = (p, fitted)
    return out


def _rims_of_tinted(ranks: list[int], above: list[set[int]], tinted) -> tuple[list, list]:
    """(ranks, above) for regions.rims_to_upper: as they are, but a shape seen through
    a panel takes the rim it shares with the panel, as an element on it would. Under
    the panel that rim is the shape's own anti-aliased edge on the ground, veiled."""
    if not tinted:
        return ranks, above
    above = [set(on) for on in above]
    order = [i for i in ranks if i not in tinted]
    for s_, (p, _) in tinted.items():
        above[s_].discard(p)
        above[p].add(s_)
        order.insert(order.index(p) + 1, s_)
    return order, above


def _unveiled(rgb: np.ndarray, fitted: veil.Veil) -> np.ndarray:
    """What lies under ``fitted`` where it shows ``rgb`` (straight or opaque, 0..255)."""
    return (rgb - fitted.opacity * fitted.colour) / (1.0 - fitted.opacity)


def _shadows_under(touching, shadows: set[int]) -> frozenset[tuple[int, int]]:
    """(shadow, neighbour) pairs: a region on the background that is a soft black or
    white veil (its opacity falls off) lies under every opaque region it touches, as a
    drop shadow does; its crescent's hull would otherwise read as lying on the shape."""
    pairs = set()
    for a, b in touching:
        if a and b:
            for s_, n in ((a - 1, b - 1), (b - 1, a - 1)):
                if s_ in shadows and n not in shadows:
                    pairs.add((s_, n))
    return frozenset(pairs)


def _casters(found, shadows: frozenset[tuple[int, int]]) -> dict[int, int]:
    """{shadow: the shape that casts it}: of the regions a drop shadow lies under, the
    one its hull wraps most of (not a card it also touches)."""
    best: dict[int, tuple[int, int]] = {}
    for s_, n in shadows:
        shape, shadow = found[n], found[s_]
        wrapped = occlusion._count_inside(shape.visible, shape.box, shadow.hull, shadow.box)
        if wrapped > best.get(s_, (0, -1))[0]:
            best[s_] = (wrapped, n)
    return {s_: n for s_, (_, n) in best.items()}


def _outlines(found, touching, above, veils, size) -> dict[int, int]:
    """{stroke: the fill it outlines}: a region that covers most (OUTLINED) of another's
    outer edge, where nothing else lies on that edge (a rule, a word across the shape),
    and with it makes that fill grown by the stroke's width (see _grown_by) is its
    outline: one element with it, as design tools draw a shape's or a word's stroke (the
    two regions would take two layers). A card under a label wraps the label too, but
    is no grown label."""
    from scipy.ndimage import binary_fill_holes

    neighbours: dict[int, set[int]] = {}
    for a, b in touching:
        if a and b and a - 1 not in veils and b - 1 not in veils:
            neighbours.setdefault(a - 1, set()).add(b - 1)
            neighbours.setdefault(b - 1, set()).add(a - 1)
    out: dict[int, int] = {}
    for fill, around in neighbours.items():
        inner = found[fill]
        box = regions.grown(inner.box, 1, size)
        owner = np.full((box[0].stop - box[0].start, box[1].stop - box[1].start), -1, np.int64)
        for j in around | above[fill]:
            inter = occlusion._intersection(box, found[j].box)
            if inter is not None:
                where = occlusion._crop(found[j].visible, found[j].box, inter)
                occlusion._crop(owner, box, inter)[where] = j
        # what lies on the fill within its hull (a word across it; a stroke around it
        # lies mostly outside)
        lying = np.isin(owner, list(above[fill])) & regions.recrop(inner.hull, inner.box, box)
        shape = binary_fill_holes(regions.recrop(inner.visible, inner.box, box) | lying)
        edge = _ring_of(shape)
        counts = np.bincount(owner[edge] + 1, minlength=len(found) + 1)
        for stroke in around - set(out):
            others = sum(int(counts[j + 1]) for j in above[fill] - {stroke})
            if counts[stroke + 1] >= OUTLINED * max(int(edge.sum()) - others, 1):
                if _grown_by(found[stroke], inner, lying & (owner != stroke), size):
                    out[stroke] = fill
                break
    return out


def _ring_of(mask: np.ndarray) -> np.ndarray:
    """The pixels just outside ``mask`` (8-neighbours)."""
    import cv2

    return (cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~mask


def _grown_by(ring: regions.Region, inner: regions.Region, lying: np.ndarray, size) -> bool:
    """Whether ``inner`` and ``ring`` together make ``inner`` grown by the ring's width
    (OUTLINE_FIT), a width well under the fill's own size; ``lying``: what else lies on
    ``inner``, on its box grown by one."""
    import cv2
    from scipy.ndimage import binary_fill_holes, distance_transform_edt

    across = round(2 * float(distance_transform_edt(np.pad(ring.visible, 1)).max()))
    if across > STROKE_SHARE * np.sqrt(inner.area):
        return False
    narrow = regions.grown(inner.box, 1, size)
    box = regions.grown(inner.box, across + 2, size)
    shape = binary_fill_holes(
        regions.recrop(inner.visible, inner.box, box) | regions.recrop(lying, narrow, box)
    )
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * across + 1,) * 2)
    grown = cv2.dilate(shape.astype(np.uint8), kernel) > 0
    mine = np.zeros(shape.shape, bool)
    inter = occlusion._intersection(box, ring.box)
    occlusion._crop(mine, box, inter)[...] = occlusion._crop(ring.visible, ring.box, inter)
    together = binary_fill_holes(shape | (mine & grown))
    return (together & grown).sum() >= OUTLINE_FIT * (together | grown).sum()


def _overlays_across_edges(labels, found, touching, background, f):
    """Overlays that cross a shape's edge: region P on the background and its
    neighbour Q over a region S, when one veil explains both (veil.across). Q joins
    P, S lies under P and goes on under it where Q was (S seen through the veil).
    Returns (labels, {P: veil}, {(S, P)}, {S: mask of Q}), indices after joining."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(found) + 1)}
    for a, b in touching:
        neighbours[a].add(b)
        neighbours[b].add(a)
    rgb = [r.colour[:3] * 255.0 / max(r.colour[3], 1e-3) for r in found]
    opaque = [r.colour[3] > 254.0 for r in found]
    areas = [r.area for r in found]
    joins, veils, forced, through = {}, {}, set(), {}
    for p in neighbours[0]:
        region = found[p - 1]
        ground = background.model[region.box][region.visible].mean(axis=0)
        on_nothing = ground[3] < TRANSPARENT  # a see-through element on a transparent ground
        if p in joins or not (opaque[p - 1] or (on_nothing and _see_through(region))):
            continue
        for q in neighbours[p] - {0} - set(joins) - set(veils):
            if areas[q - 1] < ACROSS_AREA or not opaque[q - 1]:
                continue
            for s_ in neighbours[q] - {0, p}:
                if not opaque[s_ - 1]:
                    continue
                if on_nothing:  # its own colour and opacity: over S it shows their blend
                    fitted = veil.Veil(rgb[p - 1], region.colour[3] / 255.0)
                    blend = fitted.opacity * fitted.colour + (1 - fitted.opacity) * rgb[s_ - 1]
                    if np.abs(blend - rgb[q - 1]).max() > veil.ACROSS_ERROR:
                        continue
                else:
                    fitted = veil.across(rgb[p - 1], ground[:3], rgb[q - 1], rgb[s_ - 1])
                    if fitted is None or not _agrees(fitted, veil.neutral(rgb[p - 1], ground[:3])):
                        continue
                if _own_shape(labels, found[q - 1], found[s_ - 1]):
                    continue
                crop = f[region.box][..., :3], background.model[region.box][..., :3]
                if on_nothing or not veil.steep(*crop, region.visible, fitted):
                    joins[q], veils[p] = p, fitted
                    forced.add((s_, p))
                    through[q] = s_
                    break
    if not joins:
        return labels, {}, frozenset(), {}
    seen: dict[int, np.ndarray] = {}
    for q, s_ in through.items():
        seen[s_] = seen.get(s_, False) | (labels == q)
    lut = np.arange(len(found) + 1)
    for q, p in joins.items():
        lut[q] = p
    used = np.unique(lut[1:])
    compact = np.zeros(len(found) + 1, np.int64)
    compact[used] = np.arange(1, used.size + 1)
    labels = compact[lut][labels].astype(np.int32)
    index = {int(label): int(compact[label]) - 1 for label in used}
    return (
        labels,
        {index[p]: v for p, v in veils.items()},
        frozenset((index[int(lut[s_])], index[p]) for s_, p in forced),
        {index[int(lut[s_])]: mask for s_, mask in seen.items()},
    )


def _see_through(region: regions.Region) -> bool:
    """Whether ``region`` is one see-through colour of some size: an element that
    lets what it crosses show, not an anti-aliased rim."""
    opacity = region.colour[3] / 255.0
    return 0.1 < opacity < 0.9 and region.area >= ACROSS_AREA and not _thin(region.visible)


def _own_shape(labels: np.ndarray, part: regions.Region, shape: regions.Region) -> bool:
    """Whether ``part``, read as an overlay's part over ``shape``, is rather a shape of
    its own that a veil's colours fit by chance: much of its outline is on the ground
    (where the overlay and ``shape`` would both end, edges aligned) and with ``shape`` it
    makes no one solid shape (a card with the words across its top)."""
    box = regions.grown(part.box, 1, labels.shape)
    ring = _ring_of(regions.recrop(part.visible, part.box, box))
    on_ground = float((labels[box][ring] == 0).mean()) if ring.any() else 0.0
    return on_ground > ACROSS_GROUND and _solidity(part, shape) < ACROSS_SOLIDITY


def _solidity(a: regions.Region, b: regions.Region) -> float:
    """Share of their convex hull that two regions fill together, holes filled (what
    lies on them is no notch in their outline)."""
    from scipy.ndimage import binary_fill_holes

    box = regions.union(a.box, b.box)
    both = regions.recrop(a.visible, a.box, box) | regions.recrop(b.visible, b.box, box)
    both = binary_fill_holes(both)
    return float(both.sum()) / float(regions.convex_hull(both).sum())


def _agrees(fitted: veil.Veil, neutral: np.ndarray | None) -> bool:
    """Whether a veil found across an edge keeps the black or white that its part on
    the background alone reads as (a shadow's flat middle is that, not a coloured
    card that happens to fit two equations)."""
    return neutral is None or np.abs(fitted.colour - neutral).max() <= NEUTRAL_TOLERANCE


def _veils(f: np.ndarray, background, candidates, source=None) -> dict[int, veil.Veil]:
    """Which ``candidates`` (regions that touch the background, else None) are a
    semi-transparent colour over it (none on a photograph, whose pixels no smooth model
    of the ground explains). With ``source`` (the input, its texture intact), a region
    the ground's texture shows through at one opacity is one (texture.fit)."""
    if background.photo:
        return {}
    opaque = f[..., 3] > 254.0
    found_veils = {}
    for i, region in enumerate(candidates):
        if region is None:
            continue
        pixels = region.visible & opaque[region.box]
        if pixels.sum() < 0.9 * region.area or _thin(region.visible):
            continue
        step = max(1, int(pixels.sum()) // VEIL_SAMPLES)  # a sample decides as well
        seen = f[region.box][..., :3][pixels][::step]
        under = background.model[region.box][..., :3][pixels][::step]
        fitted = None
        if source is not None:
            box, visible = region.box, region.visible
            fitted = texture.fit(source, background.model, background.mask, box, visible)
        fitted = fitted or veil.fit(seen, under, background.grain)
        shadow = fitted is not None and fitted.falloff and fitted.colour.max() < 128
        if fitted is not None and not shadow and not fitted.texture:
            crop = f[region.box][..., :3], background.model[region.box][..., :3]
            fitted = None if veil.steep(*crop, region.visible, fitted) else fitted
        if fitted is not None:
            found_veils[i] = fitted
    return found_veils


def _textured_across(source, background, found, crossing, seen) -> dict[int, veil.Veil]:
    """The overlays found across an edge that the ground's texture shows through,
    measured where they lie on the ground alone (not where a shape is seen through
    them): their own opacity, not the one two region means fit."""
    if not crossing:
        return {}
    through = np.logical_or.reduce([np.zeros(background.mask.shape, bool), *seen.values()])
    fitted = {}
    for i in crossing:
        box = found[i].box
        alone = found[i].visible & ~through[box]
        veiled = texture.fit(source, background.model, background.mask, box, alone)
        if veiled is not None:
            fitted[i] = veiled
    return fitted


def _thin(mask: np.ndarray) -> bool:
    """Whether ``mask`` is (almost) all strokes two pixels wide or less (small text,
    hairlines; under THIN of it survives an erosion):
    too thin to hold the falloff of a blurred shadow or the flat middle of a card, so
    its anti-aliased edges are no evidence of a veil."""
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return int(inner.sum()) < THIN * int(mask.sum())


def _near_any(found, indices: list[int], size, reach: int = TAIL) -> np.ndarray:
    """Canvas bool: within ``reach`` pixels of any of the regions ``indices``."""
    import cv2

    out = np.zeros(size, np.uint8)
    for i in indices:
        out[found[i].box] |= found[i].visible.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2)
    return cv2.dilate(out, kernel).astype(bool)


def _shadow_tail(f: np.ndarray, background, region) -> np.ndarray:
    """The rest of a drop shadow (a black veil that falls off) on the ground: the
    ground pixels, connected to the shadow within TAIL pixels, darker than the ground's
    model (fitted away from shadows) as a black veil darkens it, R, G and B agreeing.
    Below the background threshold they stayed on the ground, a ghost of the shadow.
    Canvas bool, maybe empty."""
    import cv2

    height, width = f.shape[:2]
    box = regions.grown(region.box, TAIL, (height, width))
    under = background.model[box][..., :3]
    valid = (under > veil.MIN_CONTRAST).all(axis=-1)
    a = 1.0 - f[box][..., :3] / np.maximum(under, 1.0)
    least = max(TAIL_OPACITY, 3.0 * background.grain / max(float(under.mean()), 1.0))
    agree = a.max(axis=-1) - a.min(axis=-1) <= veil.MAX_SPREAD
    darker = background.mask[box] & valid & (a.mean(axis=-1) > least) & agree
    shadow = regions.recrop(region.visible, region.box, box).astype(np.uint8)
    grown = shadow
    for _ in range(TAIL):
        step = cv2.dilate(grown, np.ones((3, 3), np.uint8)) & darker.astype(np.uint8) | grown
        if int(step.sum()) == int(grown.sum()):
            break
        grown = step
    out = np.zeros((height, width), bool)
    out[box] = (grown > 0) & ~shadow.astype(bool)
    return out


def _with_pixels(region: regions.Region, mask: np.ndarray) -> regions.Region:
    """``region`` that also shows at ``mask`` (canvas bool), on a box holding both."""
    wider = regions.widen(region, mask)
    extra = mask[wider.box]
    return regions.Region(
        wider.box, wider.visible | extra, wider.core, wider.hull | extra, wider.colour
    )


def _veil_fill(fitted: veil.Veil, shape: tuple[int, int]) -> np.ndarray:
    """The veil's own colour everywhere on its box (premultiplied RGBA, opaque)."""
    return np.broadcast_to(np.append(fitted.colour, 255.0), (*shape, 4)).astype(np.float32)


def _under(model, found, reach, fills, veils, lower: list[int], box) -> np.ndarray:
    """What lies under ``box``: the background model, then each lower region's fill
    (a veil's colour at its opacity over what is under it)."""
    under = model[box].copy()
    for j in lower:
        inter = occlusion._intersection(box, found[j].box)
        if inter is None:
            continue
        mine = occlusion._crop(under, box, inter)
        where = occlusion._crop(reach[j], found[j].box, inter)
        fill = occlusion._crop(fills[j], found[j].box, inter)[where]
        opacity = veils[j].opacity if j in veils else 1.0
        mine[where] = opacity * fill + (1.0 - opacity) * mine[where]
    return under


def _paint(layer: np.ndarray, box, mask: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Composite one region's crop over ``layer`` (straight RGBA float, 0..255)."""
    target = layer[box]
    a = (alpha * mask)[..., None]
    below = target[..., 3:4] / 255.0
    out_a = a + below * (1 - a)
    premul = colour * a + target[..., :3] * below * (1 - a)
    target[..., :3] = np.where(out_a > 1e-6, premul / np.maximum(out_a, 1e-6), 0.0)
    target[..., 3:4] = out_a * 255.0


def _straight(premul: np.ndarray) -> np.ndarray:
    opacity = premul[..., 3:4] / 255.0
    return np.clip(np.where(opacity > 1e-3, premul[..., :3] / np.maximum(opacity, 1e-3), 0), 0, 255)


def _background_layer(image: np.ndarray, background: segment.Background) -> np.ndarray:
    """The input where the background shows, its smooth model under the elements."""
    model = background.model
    layer = np.concatenate([_straight(model), model[..., 3:4]], axis=-1)
    np.copyto(layer, image, where=background.mask[..., None])
    return _to_uint8(layer)


def _role(region: regions.Region, fitted: veil.Veil | None) -> str:
    """What a region is, as a designer would name its layer."""
    import cv2

    if fitted is not None:
        return "Shadow" if fitted.falloff else "Overlay"
    height, width = region.visible.shape
    if region.area < TEXT_SOLIDITY * region.hull.sum() and max(height, width) > 1.5 * min(
        height, width
    ):
        pieces, _, stats, _ = cv2.connectedComponentsWithStats(
            region.visible.astype(np.uint8), connectivity=8
        )
        box = stats[1:, cv2.CC_STAT_WIDTH] * stats[1:, cv2.CC_STAT_HEIGHT]
        fill = np.median(stats[1:, cv2.CC_STAT_AREA] / box) if pieces > 1 else 1.0
        if pieces > 3 and fill < GLYPH_FILL:  # three glyphs or more in a row, not cards
            return "Text"
    return "Shape"


def _lifted_colour(region, alpha: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Mean straight colour (0..255) of a lifted region, weighted by its alpha."""
    weight = alpha * region.visible
    total = max(float(weight.sum()), 1e-6)
    return (colour * weight[..., None]).sum(axis=(0, 1)) / total


def _features(region, alpha: np.ndarray, colour: np.ndarray, size) -> np.ndarray:
    """Mean colour (0..1) and centre (fraction of the diagonal) of a lifted region."""
    rows, cols = region.box
    mean = _lifted_colour(region, alpha, colour) / 255.0
    ys, xs = np.nonzero(region.visible)
    diagonal = float(np.hypot(*size))
    centre = np.array([(ys.mean() + rows.start) / diagonal, (xs.mean() + cols.start) / diagonal])
    return np.concatenate([mean, centre])


def _to_uint8(layer: np.ndarray) -> np.ndarray:
    """Round ``layer`` (a temporary, changed in place: no canvas-sized copies) to uint8."""
    return np.clip(np.rint(layer, out=layer), 0, 255, out=layer).astype(np.uint8)
