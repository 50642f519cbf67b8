"""Finding the background of a flat design and the elements that sit on it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from layerctl.backends.classic import veil
from layerctl.backends.classic.fill import smooth_model

FLAT_STEP = 10.0  # max neighbour difference (0..255) inside a flat or gradient region
RAMP = 2  # px each side of a JPEG's pixel over which a steady rise marks an edge
RAMP_RISE = 3 * FLAT_STEP  # levels under which such an edge is faint (two surfaces alike)
RAMP_LENGTH = 120  # px a run of such edge pixels holds (three wide, 40 long): no speckle
MIN_THRESHOLD = 14.0  # smallest colour distance from the background model that counts
CLEAN_THRESHOLD = 3.0  # the same on a ground with no grain at all (rendered UI, vector art):
# a white card on a light UI's page (lightness 0.95..0.99) is 3..16 levels off it
FRINGE_THRESHOLD = 7.0  # the same on a transparent ground, whose elements' faint
# anti-aliased fringes (alpha of a few levels) are no element of their own
CLEAN = 0.25  # σ of a ground's grain below which it has none
SLIVER_OFF = 2.0  # mean colour distance from a grain-free ground of a blend that passes for it
PLATE = 1.5  # colour σ (0..255) under which a part of the ground's seed is one flat plate
EDGE_BAND = 0.03  # share of the canvas's side along its edges where a clean ground is fitted
PAGE_GRID = 1 << 20  # pixels of the grid on which the page's colour is told along its edges
PAGE_TRIED = 8  # largest pieces of that band whose colours are tried as the page's
EDGE_MARGIN = 8  # px kept between elements and the pixels the background model learns from
MIN_AREA = 6  # components smaller than this are noise, not elements
SURFACE = 0.001  # share of the canvas from which a flat area counts as a designed surface
JPEG_GRID = 0.04  # how many more zero DCT coefficients the 8×8 grid has than a shifted one
JPEG_ZEROS = 0.2  # share of high-frequency coefficients that even a fine JPEG zeroes
JPEG_BLOCKS = 4000  # 8×8 blocks sampled per grid for that test
JPEG_SURE = 2.0  # standard errors by which the grid's zero share leads the shifted one's,
JPEG_BUSY = 0.75  # or the share of the shifted grid's count of busy blocks the grid has
# at most: JPEG's zeroed coefficients leave its own blocks quiet (a clean design: ~1)
PICTURE = 0.002  # share of the canvas from which a textured patch can be a picture
PICTURE_COLOURS = 80  # colours (4 bits a channel) a picture shows; flat art shows ≲ 50
FRAMED = 15.0  # colour σ (0..255) of the ring around a picture: a ground or a frame, not
# more of a photograph that is the ground itself (≳ 20)
GREY_PICTURE = (12, 0.62)  # a picture in few colours: this many, the two commonest holding
# at most this share of it (text and flat art: mostly their own two colours, ≳ 0.7)
GREY_LEVELS = 12  # of 16 brightness levels, each holding 2 % of it: a black-and-white photo
THICK = 4  # px from its edge that most of such a photo's patch lies (a text line's does not)
PICTURE_SOLIDITY = 0.2  # share of its box a picture's texture fills; outlined text ≲ 0.1
PIECE_REACH = 2 * EDGE_MARGIN  # px around a piece of the ground's seed that the residual
# test dropped, whose kept ground is fitted with it: twice the margin the model keeps
PIECE_SHARE = 0.9  # share of such a piece that one smooth surface with that ground explains
PIECE_GRAIN = 1.0  # σ of the ground's grain up to which such pieces are looked at: a drawn
# gradient's rounding leaves ~0.5; on paper and noise (≳ 1.5) a faint see-through panel
# or a shadow's rim breaks into pieces at the threshold by chance (translucent_on_texture
# seeds 0-11: 30 of the 34 pieces one surface explained were no ground)


@dataclass
class Background:
    mask: np.ndarray  # (H, W) bool: pixels that show the background
    model: np.ndarray  # (H, W, 4) float32 RGBA 0..255: the background behind everything
    threshold: float  # colour distance that separated background from elements
    grain: float  # σ of the background's texture around its smooth model
    photo: bool = False  # a photograph (photo.py): its model is no smooth fit to read veils off


def channels(image: np.ndarray) -> np.ndarray:
    """RGBA as float32 with colour premultiplied, so transparent pixels look alike."""
    f = image.astype(np.float32)
    f[..., :3] *= f[..., 3:4] / 255.0
    return f


def largest_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max over channels of |a − b| for (…, 4) arrays (cheaper than .max(axis=-1))."""
    d = np.abs(a - b)
    return np.maximum(np.maximum(d[..., 0], d[..., 1]), np.maximum(d[..., 2], d[..., 3]))


def estimate_background(
    f: np.ndarray, flat: np.ndarray, exact: bool = True, seed: np.ndarray | None = None
) -> Background:
    """The background region and a smooth model of it under the whole canvas.

    Seed: the flat region touching the most border pixels (designs are framed by their
    background). Then the seed is grown to every pixel within a noise-scaled distance of
    a smooth model fitted to it (so holes in letters and far-apart bits join it), and
    the model is refitted once, away from the elements' edges. ``exact``: the pixels
    are as drawn (not a JPEG smoothed for analysis, whose ground only looks clean).
    ``seed``: where the ground is known to show, when the caller knows better.
    """
    seed = _border_region(flat) if seed is None else seed
    model = smooth_model(f, seed)
    residual = largest_difference(f, model)
    noise = float(np.median(residual[seed])) * 1.4826  # MAD → σ for Gaussian grain
    threshold = max(MIN_THRESHOLD, 4.0 * noise)
    clean = exact and (noise <= CLEAN or _plain_edges(f, seed))
    if clean:  # soft-edged cards a step off the page joined its flat seed: the surface
        # fitted to the seed along the canvas's edges, where the page shows, says which
        surface = _page_surface(f, _page(f, seed & _edge_band(seed.shape)))
        off = seed & ~_ground(f, surface, largest_difference(f, surface), threshold, clean)
        shade = off & (f[..., :3] <= surface[..., :3] + 1.0).all(axis=-1)  # shadows' bodies
        seed &= ~(_plates(off, f) | shade)
        del surface, off, shade
        model = smooth_model(f, seed)
        residual = largest_difference(f, model)
    areas = _colour_areas(f) if clean else None
    mask = _ground_mask(f, model, residual, threshold, areas)
    del model, residual  # canvas-sized: freed before the refit allocates its own
    model = smooth_model(f, _away_from_edges(mask))
    residual = largest_difference(f, model)
    mask = _ground_mask(f, model, residual, threshold, areas)
    if noise <= PIECE_GRAIN:
        mask |= _ground_pieces(f, model, mask, seed & ~mask, threshold, clean)
    if clean:
        mask &= ~_slivers(mask, residual)
    return Background(mask, model, threshold, noise)


def _ground_pieces(
    f: np.ndarray, model: np.ndarray, mask: np.ndarray, dropped: np.ndarray, threshold, clean
) -> np.ndarray:
    """The pieces of ``dropped`` (the ground's flat seed less ``mask``) that are ground
    after all. The model learns EDGE_MARGIN away from the elements, so in a channel of
    ground narrower than twice that between two of them, or under a gradient's bright or
    dark middle that they hide, it is extrapolated and off by more than the threshold: a
    piece reached from the ground by flat steps alone became an element. Such a piece is
    ground when one smooth (degree-2) surface fitted to it and the kept ground within
    PIECE_REACH passes the ground test on PIECE_SHARE of it: a card's flat colour is a
    step that no such surface bends to. A piece that darkens or lightens the model as a
    black or white veil does (a soft shadow's body, a glow: their falloff is as smooth
    and flat-connected) stays off."""
    import cv2

    out = np.zeros_like(mask)
    count, parts, stats, _ = cv2.connectedComponentsWithStats(dropped.astype(np.uint8), 8)
    height, width = mask.shape
    for i in range(1, count):
        x, y, w, h, area = stats[i]
        if area < MIN_AREA:
            continue
        box = (
            slice(max(0, y - PIECE_REACH), min(height, y + h + PIECE_REACH)),
            slice(max(0, x - PIECE_REACH), min(width, x + w + PIECE_REACH)),
        )
        piece = parts[box] == i
        if _veil_like(f[box][piece], model[box][piece]):
            continue
        kept = mask[box]
        if kept.sum() < area:
            continue
        surface = smooth_model(f[box], kept | piece, trend=True)
        near = _ground(f[box], surface, largest_difference(f[box], surface), threshold, clean)
        if (piece & near).sum() >= PIECE_SHARE * area:
            out[box] |= piece
    return out


def _veil_like(pixels: np.ndarray, under: np.ndarray) -> bool:
    """Whether ``pixels`` over ``under`` ((n, 4) each) read, on average, as a black or a
    white veil: R, G and B (those veil.MIN_CONTRAST clear of its colour) give one
    opacity. With fewer than two such channels nothing tells it from one: taken as one."""
    seen, ground = pixels[:, :3].mean(axis=0), under[:, :3].mean(axis=0)
    for reach, change in ((ground, ground - seen), (255.0 - ground, seen - ground)):
        usable = reach > veil.MIN_CONTRAST  # towards black, then towards white
        if usable.sum() < 2:
            return True
        a = change[usable] / reach[usable]
        if a.min() > 0 and a.max() - a.min() <= veil.MAX_SPREAD:
            return True
    return False


def _plain_edges(f: np.ndarray, seed: np.ndarray) -> bool:
    """Whether ``seed`` shows one flat colour (σ under PLATE) all along the canvas's
    edges: a page with no grain. A white card a step off it that joined the seed, or a
    broad soft shadow on it, bends the smooth model into a residual of some levels,
    which is no grain of the page."""
    band = seed & _edge_band(seed.shape)
    return bool(band.any()) and float(f[band][:, :3].std(axis=0).max()) < PLATE


def _slivers(mask: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """On a ground with no grain, pieces of it cut off from the canvas's edge, nowhere
    three pixels wide and not exactly its colour (off by SLIVER_OFF on average): the
    anti-aliased ring around small dark text on a white card passes for the light grey
    page. A letter's counter on the page is the page's exact colour, and stays ground."""
    import cv2

    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 2:
        return np.zeros_like(mask)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    size = np.maximum(np.bincount(parts.ravel(), minlength=count), 1)
    off = np.bincount(parts.ravel(), residual.ravel().astype(np.float64), count) / size
    wide = (np.bincount(parts[inner], minlength=count) > 0) | (off < SLIVER_OFF)
    edge = np.unique(np.concatenate([parts[0], parts[-1], parts[:, 0], parts[:, -1]]))
    wide[edge] = True
    wide[0] = True
    return ~wide[parts]


def _plates(mask: np.ndarray, f: np.ndarray) -> np.ndarray:
    """The parts of ``mask`` that are each one flat colour (σ under PLATE): a card, not
    the bright middle of a radial gradient the edge-fitted surface cannot reach."""
    import cv2

    count, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return mask
    n = np.bincount(parts.ravel(), minlength=count).astype(np.float64)
    spread = np.zeros(count)
    for c in range(3):
        values = f[..., c].ravel().astype(np.float64)
        mean = np.bincount(parts.ravel(), values, count) / np.maximum(n, 1)
        square = np.bincount(parts.ravel(), values * values, count) / np.maximum(n, 1)
        spread = np.maximum(spread, np.sqrt(np.maximum(square - mean * mean, 0.0)))
    flat = spread < PLATE
    flat[0] = False
    return flat[parts]


def _page(f: np.ndarray, band: np.ndarray) -> np.ndarray:
    """The part of ``band`` that is the page: the pieces between colour steps of more
    than CLEAN_THRESHOLD of the colour that holds the most of it. A white app bar and tab
    bar along the top and bottom edges of a light grey screen are pieces of another
    colour (fitted with the page, they bent its surface up to them and joined it); a
    gradient's steps are far finer, so all of it is one piece. The band as it is when
    no piece of the page's colour holds most of it. Read on a grid of at most
    PAGE_GRID pixels: a step between two colours shows as well there."""
    import cv2

    h, w = band.shape
    k = max(1, math.ceil(math.sqrt(h * w / PAGE_GRID)))
    rgb, ring = f[::k, ::k, :3], band[::k, ::k]
    step = np.zeros(ring.shape, bool)  # where a neighbour's colour is more than a step off
    step[:, 1:] |= (np.abs(rgb[:, 1:] - rgb[:, :-1]) > CLEAN_THRESHOLD).any(axis=-1)
    step[1:] |= (np.abs(rgb[1:] - rgb[:-1]) > CLEAN_THRESHOLD).any(axis=-1)
    # or, across an anti-aliased edge (a white bar 5 levels off the page: 250, 252, 255
    # holds no such step between neighbours), between the pixels either side of it
    step[:, 1:-1] |= (np.abs(rgb[:, 2:] - rgb[:, :-2]) > CLEAN_THRESHOLD).any(axis=-1)
    step[1:-1] |= (np.abs(rgb[2:] - rgb[:-2]) > CLEAN_THRESHOLD).any(axis=-1)
    count, pieces, stats, _ = cv2.connectedComponentsWithStats(
        (ring & ~step).astype(np.uint8), connectivity=4
    )
    if count <= 2:
        return band
    sizes = stats[1:, cv2.CC_STAT_AREA]
    where = pieces[ring]
    means = np.stack(
        [np.bincount(where, rgb[..., c][ring], count)[1:] / sizes for c in range(3)], axis=-1
    )
    # the colour whose pieces hold the most of the band, tried on the largest pieces:
    # a tab bar along the bottom edge is one piece, the page beside it two strips
    tried = np.argsort(-sizes)[:PAGE_TRIED]
    alike = np.abs(means[tried, None] - means[None]).max(axis=-1) <= CLEAN_THRESHOLD
    alike = alike[int(np.argmax(alike @ sizes))]
    if sizes[alike].sum() < 0.5 * ring.sum():
        return band
    page = np.concatenate([[False], alike])[pieces].astype(np.uint8)
    return band & (cv2.resize(page, (w, h), interpolation=cv2.INTER_NEAREST) > 0)


def _page_surface(f: np.ndarray, page: np.ndarray) -> np.ndarray:
    """The surface fitted to ``page``: a plane, fitted to the pixels a first plane
    explains (within PLATE), when they are most of it (a flat page, a linear gradient);
    else a degree-2 surface (a radial gradient). Where the page shows only along two
    opposite edges, the faint shadows of cards that reach into that band would bend a
    degree-2 surface's curvature, and the open page in the middle of the screen read
    as a lighter step."""
    ys, xs = np.nonzero(page)
    if not ys.size:
        return smooth_model(f, page, trend=True)
    h, w = page.shape
    terms = np.stack([np.ones(ys.size), xs / w, ys / h], axis=-1)
    values = f[ys, xs].astype(np.float64)
    step = max(1, ys.size // 20000)  # a subsample fits a plane just as well
    coef, *_ = np.linalg.lstsq(terms[::step], values[::step], rcond=None)
    near = np.abs(terms @ coef - values).max(axis=-1) <= PLATE
    if 2 * int(near.sum()) <= ys.size:
        return smooth_model(f, page, trend=True)
    explained = np.zeros_like(page)
    explained[ys[near], xs[near]] = True
    return smooth_model(f, explained, degree=1, trend=True)


def _edge_band(shape: tuple[int, int]) -> np.ndarray:
    """Pixels within EDGE_BAND of the canvas's side (at least 8) of the canvas's edge."""
    h, w = shape
    margin = max(8, round(EDGE_BAND * min(h, w)))
    band = np.ones(shape, bool)
    band[margin : h - margin, margin : w - margin] = False
    return band


def _ground(f: np.ndarray, model: np.ndarray, residual: np.ndarray, threshold, clean) -> np.ndarray:
    """Pixels within ``threshold`` of the model. On a ground with no grain (``clean``:
    rendered UI, vector art) a smaller step that is not a darkening counts as an element
    too: a white card on a light UI's page is as little as three levels off it. (A soft
    shadow's faint tail darkens; pipeline._shadow_tail gives it to its shadow.)"""
    near = residual < threshold
    if not clean:
        return near
    darker = (f[..., :3] <= model[..., :3] + 1.0).all(axis=-1)
    step = np.where(model[..., 3] > 254.0, CLEAN_THRESHOLD, FRINGE_THRESHOLD)
    return near & ((residual < step) | darker)


def _ground_mask(f: np.ndarray, model: np.ndarray, residual: np.ndarray, threshold, areas):
    """_ground, specks folded; on an opaque ground with no grain (``areas``: its areas
    of one exact colour, see _colour_areas), with every such area that is mostly
    ground: a smooth model that sags (bent by the shadows' faint tails it learnt from)
    reads the open page in the middle of a screen as a lighter step of 3 levels, an
    element with no edge, though it is the page's very colour. (On transparency the
    model's first guess is rougher: it stays as read.)"""
    mask = _clean(_ground(f, model, residual, threshold, areas is not None))
    if areas is None:
        return mask
    total = np.bincount(areas.ravel())
    held = np.bincount(areas[mask], minlength=total.size)
    return mask | ((2 * held > total)[areas] & (model[..., 3] > 254.0))


def _colour_areas(f: np.ndarray) -> np.ndarray:
    """Labels of the areas of one exact colour (4-connected)."""
    from skimage.measure import label

    code = np.ascontiguousarray(np.rint(f).clip(0, 255).astype(np.uint8)).view(np.uint32)
    # RGBA as one number, kept off -1 (no pixel is background to label)
    areas = label(code[..., 0].astype(np.int64), background=-1, connectivity=1)
    return areas.astype(np.int32)  # held while the model is refitted: half the memory


def without(background: Background, f: np.ndarray, found: np.ndarray) -> Background:
    """``background`` less the pixels ``found`` (pictures whose light parts it took),
    its model refitted without them: no ghost of a photograph under it."""
    refit = refitted(background, f, found)
    refit.mask &= ~found
    return refit


def refitted(background: Background, f: np.ndarray, away: np.ndarray) -> Background:
    """``background`` with its model refitted from its pixels outside ``away`` (around
    drop shadows: the smooth model bends to a soft shadow's body, which then reads as
    ground and stays on it)."""
    model = smooth_model(f, _away_from_edges(background.mask & ~away))
    return replace(background, mask=background.mask.copy(), model=model)


def compressed(image: np.ndarray) -> bool:
    """Whether ``image`` was JPEG-compressed: on the 8×8 grid JPEG quantised, a busy
    block's high-frequency DCT coefficients are mostly zero; on a grid shifted by four
    pixels they are not (flat designs and photos never tell the two grids apart). The
    lead must stand clear of chance (a clean design's few busy blocks, the corners of a
    handful of cards, give shares that swing by 0.2 with the grid's offset), or JPEG's
    grid must also hold clearly fewer busy blocks than the shifted one."""
    import cv2

    luma = cv2.cvtColor(np.ascontiguousarray(image[..., :3]), cv2.COLOR_RGB2GRAY)
    luma = luma.astype(np.float32) - 128.0
    on_grid, shifted = (_zero_share(luma[shift:, shift:]) for shift in (0, 4))
    if on_grid is None or shifted is None:
        return False
    (share, busy), (other, busy_shifted) = on_grid, shifted
    if share - other <= JPEG_GRID or share <= JPEG_ZEROS:
        return False
    chance = JPEG_SURE * math.sqrt(share * (1.0 - share) / busy)
    return share - other > chance or busy < JPEG_BUSY * busy_shifted


def _zero_share(luma: np.ndarray) -> tuple[float, int] | None:
    """(share of near-zero high-frequency DCT coefficients in the busy 8×8 blocks, how
    many blocks are busy), or None when too few are."""
    import cv2

    h, w = luma.shape[0] // 8 * 8, luma.shape[1] // 8 * 8
    if not (h and w):  # smaller than one block: nothing to tell
        return None
    blocks = luma[:h, :w].reshape(h // 8, 8, w // 8, 8).swapaxes(1, 2).reshape(-1, 8, 8)
    step = max(1, len(blocks) // JPEG_BLOCKS)
    high = np.stack([np.abs(cv2.dct(b)[3:, 3:]).ravel() for b in blocks[::step]])
    busy = high.max(axis=1) > 2.0
    count = int(busy.sum())
    return (float((high[busy] < 0.75).mean()), count) if count >= 10 else None


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


def pictures(image: np.ndarray, flat: np.ndarray, background: Background) -> np.ndarray:
    """Where photographs sit inside a design (in frames, on cards, as avatars): bool.

    A picture is a patch of texture (what is left of the foreground once its large
    flat surfaces are taken out) of some size, filling a fair share of its box, that
    shows many colours: text and flat art, anti-aliasing included, are blends of a
    few; and that does not touch the canvas's edge and is framed by a plain ring
    (texture at the edge or all around is the ground: a photograph, or a design on
    one). It is the patch's convex hull, so the picture's
    own flat areas (a sky, a wall the colour of the ground) belong to it; what lies on
    the picture goes with it.
    """
    import cv2

    fg = ~background.mask
    count, pieces, stats, _ = cv2.connectedComponentsWithStats(
        (flat & fg).astype(np.uint8), connectivity=4
    )
    surface = np.zeros(count, bool)
    surface[1:] = stats[1:, cv2.CC_STAT_AREA] >= SURFACE * flat.size
    texture = (fg & ~surface[pieces]).astype(np.uint8)
    texture = cv2.morphologyEx(texture, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) & fg
    count, patches, stats, _ = cv2.connectedComponentsWithStats(texture, connectivity=8)
    found = np.zeros(flat.shape, bool)
    for i in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= PICTURE * flat.size) + 1:
        x, y, w, h, area = stats[i]
        edge = x == 0 or y == 0 or x + w == flat.shape[1] or y + h == flat.shape[0]
        if edge or area < PICTURE_SOLIDITY * w * h:
            continue
        patch = patches[y : y + h, x : x + w] == i
        pixels = image[y : y + h, x : x + w][patch]
        if not _many_colours(pixels, _solid(patch), _solid(patch, THICK)):
            continue
        hull = np.zeros(patch.shape, np.uint8)
        cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(patch.astype(np.uint8))), 1)
        if _framed(image, hull.astype(bool), (y, x)):
            found[y : y + h, x : x + w] |= hull.astype(bool)
    return found


def _framed(image: np.ndarray, hull: np.ndarray, corner: tuple[int, int]) -> bool:
    """Whether the ring three pixels wide around ``hull`` (a crop at ``corner``) is
    plain: one colour, or a gentle gradient."""
    import cv2

    (y, x), (h, w) = corner, hull.shape
    top, left = max(0, y - 3), max(0, x - 3)
    rows, cols = (
        slice(top, min(image.shape[0], y + h + 3)),
        slice(left, min(image.shape[1], x + w + 3)),
    )
    inside = np.zeros((rows.stop - rows.start, cols.stop - cols.start), np.uint8)
    inside[y - top : y - top + h, x - left : x - left + w] = hull
    ring = (cv2.dilate(inside, np.ones((7, 7), np.uint8)) > 0) & ~inside.astype(bool)
    return bool(ring.any()) and float(image[rows, cols][ring][:, :3].std(axis=0).max()) <= FRAMED


def _solid(patch: np.ndarray, margin: int = 2) -> bool:
    """Whether most of ``patch`` is more than ``margin`` pixels from its edge: a block
    of texture, not strokes (small text is all anti-aliased rim)."""
    import cv2

    side = 2 * margin + 1
    inner = cv2.erode(patch.astype(np.uint8), np.ones((side, side), np.uint8))
    return int(inner.sum()) >= 0.5 * int(patch.sum())


def _many_colours(pixels: np.ndarray, solid: bool, thick: bool = False) -> bool:
    """Whether ``pixels`` show the spread of colours of a photograph: many colours (4
    bits a channel) that each hold a noticeable share, or, for a black-and-white one
    (when ``solid``: thin text's rims spread over its two colours too), some, with no
    two of them holding most of it, or, when ``thick`` too, most brightness levels each
    holding a share (a grey photograph has only 16 colours at 4 bits; a line of small
    text is a solid patch once closed, and its rims spread over the levels too)."""
    q = pixels[:, :3].astype(np.int32) >> 4
    counts = np.bincount((q[:, 0] << 8) | (q[:, 1] << 4) | q[:, 2], minlength=4096)
    colours = int((counts >= max(3, 0.0005 * len(pixels))).sum())
    if colours >= PICTURE_COLOURS:
        return True
    least, share = GREY_PICTURE
    if not solid or colours < least:
        return False
    levels = np.bincount(pixels[:, :3].astype(np.int32).sum(1) // 48, minlength=16)
    if thick and int((levels >= 0.02 * len(pixels)).sum()) >= GREY_LEVELS:
        return True
    top = np.argsort(counts)[-2:]
    centres = np.stack([top >> 8, (top >> 4) & 15, top & 15], -1) * 16 + 8
    near = np.abs(pixels[:, None, :3].astype(np.int32) - centres[None]).max(-1).min(-1) <= 24
    return float(near.mean()) <= share


def with_pictures(flat: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``flat`` with each picture one flat surface (one region, lifted as it shows),
    cut from the flat pixels around it by a one-pixel ring (a frame stays its own)."""
    import cv2

    inner = cv2.erode(found.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return (flat & ~found) | inner


def _away_from_edges(mask: np.ndarray) -> np.ndarray:
    """Background pixels a margin away from everything else: soft shadow tails and
    halos just outside elements would otherwise be pushed into the holes."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * EDGE_MARGIN + 1,) * 2)
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderValue=1).astype(bool)
    return inner if inner.sum() > 0.25 * mask.sum() else mask


def flat_pixels(f: np.ndarray, smeared: bool = False) -> np.ndarray:
    """Pixels that differ from each 4-neighbour by less than FLAT_STEP: not on an edge.

    ``smeared`` (a JPEG): nor where a ramp is steepest that rises by FLAT_STEP or more
    over RAMP pixels each side, every step of it the same way. JPEG spreads a step of
    a few tens of levels (a dark photo on a navy card; 4:2:0 chroma most of all) over
    up to eight pixels, each step under FLAT_STEP: the two surfaces would be one flat
    area, one region. Ringing goes up and down, a strong edge's tail flattens out, and
    a designed gradient rises under a level per pixel: none of them is such a ramp.
    """
    step = np.zeros(f.shape[:2], np.float32)
    dx = largest_difference(f[:, 1:], f[:, :-1])
    dy = largest_difference(f[1:], f[:-1])
    step[:, :-1] = np.maximum(step[:, :-1], dx)
    step[:, 1:] = np.maximum(step[:, 1:], dx)
    step[:-1] = np.maximum(step[:-1], dy)
    step[1:] = np.maximum(step[1:], dy)
    flat = step < FLAT_STEP
    if smeared:
        flat &= ~_ramps(f)
    return flat


def _ramps(f: np.ndarray) -> np.ndarray:
    """Where a faint ramp along a row, a column or a diagonal is steepest: RAMP pixels
    each side of the pixel, each step rising the same way, FLAT_STEP or more in all,
    under RAMP_RISE over twice that (in one of R, G and B)."""
    import cv2

    height, width = f.shape[:2]
    band, found = np.zeros((height, width), bool), np.zeros((height, width), bool)
    pad, inner = 2 * RAMP, (slice(2 * RAMP, 2 * RAMP + height), slice(2 * RAMP, 2 * RAMP + width))
    for c in range(3):
        channel = np.ascontiguousarray(f[..., c])
        padded = cv2.copyMakeBorder(channel, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            at = {k: _shifted(padded, k * dy, k * dx) for k in range(-RAMP, RAMP + 1)}
            # the steps p − 2v → p + 2v are the forward differences at p − 2v .. p + v
            forward = np.zeros_like(padded)
            forward[inner] = at[1] - at[0]
            kernel, anchor = _line(2 * RAMP, dy, dx, RAMP)
            up = cv2.erode(forward, kernel, anchor=anchor)[inner] > 0
            down = cv2.dilate(forward, kernel, anchor=anchor)[inner] < 0
            ramp = (up | down) & (np.abs(at[RAMP] - at[-RAMP]) >= FLAT_STEP)
            # a faint edge: twice as far each way, it spans under RAMP_RISE (a strong
            # edge's smeared tail, a blurred shadow's deep falloff span more)
            kernel, anchor = _line(4 * RAMP + 1, dy, dx, 2 * RAMP)
            top = cv2.dilate(padded, kernel, anchor=anchor)[inner]
            span = top - cv2.erode(padded, kernel, anchor=anchor)[inner]
            ramp &= span < RAMP_RISE
            slope = np.abs(at[1] - at[-1])
            steepest = (slope >= np.abs(at[2] - at[0])) & (slope > np.abs(at[0] - at[-2]))
            band |= ramp
            found |= ramp & steepest
    # The steepest pixels, closed over one-pixel gaps within the ramps: a line that
    # parts the two surfaces, not a band wide enough to seed strokes of its own.
    found = cv2.dilate(found.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    found &= band
    # an edge runs on; JPEG's speckle around a strong edge is in short bits
    _, parts, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), 8)
    long = stats[:, cv2.CC_STAT_AREA] >= RAMP_LENGTH
    long[0] = False
    return long[parts]


def _line(length: int, dy: int, dx: int, before: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(kernel, anchor) for cv2.erode and dilate: ``length`` pixels along (dy, dx),
    ``before`` of them behind the anchor."""
    kernel = np.zeros((length if dy else 1, length if dx else 1), np.uint8)
    for k in range(length):
        kernel[k * dy, k * dx if dx >= 0 else length - 1 - k] = 1
    x = before if dx > 0 else (length - 1 - before if dx < 0 else 0)
    return kernel, (x, before * dy)


def _shifted(padded: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The canvas that ``padded`` (2·RAMP pixels each side) holds, moved by (dy, dx)."""
    pad = 2 * RAMP
    height, width = padded.shape[0] - 2 * pad, padded.shape[1] - 2 * pad
    return padded[pad + dy : pad + dy + height, pad + dx : pad + dx + width]


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
