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
MAYBE_PHOTO = 0.025  # from this share, an enlarged (smooth) photograph when designed
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
ACROSS_AREA = 64  # px the part of an overlay over a shape shows at least (not a rim crumb)
TEXT_SOLIDITY = 0.75  # share of its hull below which a row of 3+ pieces reads as text


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
    found, ranks, above, on_background, crossing, seen, casters, touching = analyse(
        f, flat, background, lossy
    )
    transparent = _transparent_ground(image, background)
    bottom = [] if transparent else [_background_layer(image, background)]
    if not found:  # a plain colour, a gradient, noise: all background
        return Layers(bottom or [source.copy()], ["Background"])
    reach = occlusion.supports(found, ranks)
    for i, mask in seen.items():  # a shape seen through an overlay goes on under it
        narrow, found[i] = found[i].box, regions.widen(found[i], mask)
        reach[i] = regions.recrop(reach[i], narrow, found[i].box) | mask[found[i].box]
    candidates = [
        r if i in on_background and i not in crossing else None for i, r in enumerate(found)
    ]
    # On a textured ground (paper, noise) a see-through panel lets the texture show.
    grainy = bool(bottom) and not background.photo
    grainy = grainy and texture.grainy(texture.spread(source, background.mask))
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
        alpha = np.where(hidden, hidden_alpha, alpha)
        colour = np.where(hidden[..., None], _straight(fills[i]), colour)
        lifted[i] = (alpha, colour)
    del f, work, fills  # canvas-sized and done with: not held while the layers are built
    order_of = {index: rank for rank, index in enumerate(ranks)}
    roles = [_role(r, veils.get(i)) for i, r in enumerate(found)]
    extents = [int(r.sum()) for r in reach]
    count = layers - len(bottom)
    # what photo.py found on a photograph is designed by its own tests: no grain
    textured = bottom and not background.photo
    grain = _grain(len(found), touching, extents, (h, w)) if textured else set()
    for i in grain:  # the ground's own texture stays on it, as it shows
        rows, cols = found[i].box
        where = found[i].visible
        bottom[0][rows, cols][where] = source[rows, cols][where]
    kept = [i for i in range(len(found)) if i not in grain]
    groups = _layer_groups(found, lifted, ranks, above, casters, extents, count, (h, w), kept)
    out = Layers(bottom, ["Background"] * len(bottom))
    for members in groups:
        layer = np.zeros((h, w, 4), np.float32)
        for i in sorted(members, key=order_of.__getitem__):
            _paint(layer, found[i].box, reach[i], *lifted[i])
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
    found, lifted, ranks, above, casters, extents: list[int], count: int, size, kept: list[int]
) -> list[list[int]]:
    """At most ``count`` groups of region indices, bottom first: one element per layer
    before any shadow or speck takes one. A speck (a region reaching under MINOR of the
    canvas, hidden part included) that touches another region goes with it; each drop
    shadow goes with the shape that casts it, and only layers left over once every
    element has its own take shadows of their own (the largest first), just under
    their caster's."""
    if not kept:  # every region is the ground's texture (specks on a page)
        return []
    unit = {i: casters.get(i, i) for i in kept}
    least = MINOR * size[0] * size[1]
    for i in sorted(kept, key=lambda i: extents[i]):
        if extents[i] < least and i not in casters:
            unit[i] = _host(found, i, unit)
    for i in unit:  # a speck's host may be a speck of another region
        while unit[unit[i]] != unit[i]:
            unit[i] = unit[unit[i]]
    heads = sorted(set(unit.values()))
    features = np.array([_features(found[i], *lifted[i], size) for i in heads])
    areas = np.array([sum(found[j].area for j in unit if unit[j] == i) for i in heads])
    level = group.levels(ranks, above)
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


def _host(found, index: int, unit: dict[int, int]) -> int:
    """The unit of the region that ``index`` shares the most border with, or its own."""
    import cv2

    region = found[index]
    ring = cv2.dilate(region.visible.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ring &= ~region.visible
    best, host = 0, unit[index]
    for j, other in enumerate(found):
        inter = occlusion._intersection(region.box, other.box)
        if j == index or j not in unit or inter is None:
            continue
        shared = occlusion._count_inside(ring, region.box, other.visible, other.box)
        if shared > best:
            best, host = shared, unit[j]
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


def analyse(f: np.ndarray, flat: np.ndarray, background: segment.Background, smeared: bool = False):
    """(regions, bottom-first order, "lies on" sets, indices of the regions that touch
    the background, {index: veil} of overlays found across an edge, {index: canvas
    mask} of where each region goes on under others beyond its completed shape: a
    shape seen through such an overlay, a drop shadow under the whole shape that casts
    it; {shadow: the shape that casts it}, the label pairs that touch). ``smeared``: a
    JPEG (regions.find_regions)."""
    labels, found = regions.find_regions(f, flat, background, smeared)
    touching = regions.adjacency(labels)
    labels, crossing, forced, seen = _overlays_across_edges(labels, found, touching, background, f)
    if crossing:
        found = regions.describe(labels, f, flat)
        touching = regions.adjacency(labels)
    shadows = _shadows_under(f, background, found, touching, crossing)
    forced = forced | shadows
    ranks, above = occlusion.order(found, touching, forced)
    labels = regions.rims_to_upper(labels, found, ranks, above, f, flat)
    found = regions.describe(labels, f, flat)
    casters = _casters(found, shadows)
    for s_, n in casters.items():  # a shadow goes on under its caster
        seen[s_] = seen.get(s_, False) | (labels == n + 1)
    on_background = {b - 1 for a, b in touching if a == 0}
    return found, ranks, above, on_background, crossing, seen, casters, touching


def _shadows_under(f, background, found, touching, crossing) -> frozenset[tuple[int, int]]:
    """(shadow, neighbour) pairs: a region on the background that is a soft black or
    white veil (its opacity falls off) lies under every opaque region it touches, as a
    drop shadow does; its crescent's hull would otherwise read as lying on the shape."""
    on_background = {b - 1 for a, b in touching if a == 0}
    candidates = [
        r if i in on_background and i not in crossing else None for i, r in enumerate(found)
    ]
    shadows = {i for i, v in _veils(f, background, candidates).items() if v.falloff}
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
    joins, veils, forced, through = {}, {}, set(), {}
    for p in neighbours[0]:
        if not opaque[p - 1] or p in joins:
            continue
        region = found[p - 1]
        ground = background.model[region.box][region.visible][:, :3].mean(axis=0)
        for q in neighbours[p] - {0} - set(joins) - set(veils):
            for s_ in neighbours[q] - {0, p}:
                if not (opaque[q - 1] and opaque[s_ - 1]) or found[q - 1].area < ACROSS_AREA:
                    continue
                fitted = veil.across(rgb[p - 1], ground, rgb[q - 1], rgb[s_ - 1])
                if fitted is None or not _agrees(fitted, veil.neutral(rgb[p - 1], ground)):
                    continue
                crop = f[region.box][..., :3], background.model[region.box][..., :3]
                if not veil.steep(*crop, region.visible, fitted):
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
        pieces, _ = cv2.connectedComponents(region.visible.astype(np.uint8), connectivity=8)
        if pieces > 3:  # the background label and three glyphs or more, in a row
            return "Text"
    return "Shape"


def _features(region, alpha: np.ndarray, colour: np.ndarray, size) -> np.ndarray:
    """Mean colour (0..1) and centre (fraction of the diagonal) of a lifted region."""
    rows, cols = region.box
    weight = alpha * region.visible
    total = max(float(weight.sum()), 1e-6)
    mean = (colour * weight[..., None]).sum(axis=(0, 1)) / total / 255.0
    ys, xs = np.nonzero(region.visible)
    diagonal = float(np.hypot(*size))
    centre = np.array([(ys.mean() + rows.start) / diagonal, (xs.mean() + cols.start) / diagonal])
    return np.concatenate([mean, centre])


def _to_uint8(layer: np.ndarray) -> np.ndarray:
    """Round ``layer`` (a temporary, changed in place: no canvas-sized copies) to uint8."""
    return np.clip(np.rint(layer, out=layer), 0, 255, out=layer).astype(np.uint8)
