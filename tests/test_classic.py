"""The classic backend: N layers, exact-enough composite, soft edges, filled background."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, occlusion, veil
from layerctl.backends.classic.fill import pull_push
from layerctl.backends.classic.regions import Region
from layerctl.stack import composite

pytest.importorskip("cv2")
pytest.importorskip("scipy")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def run(image: np.ndarray, n: int) -> list[np.ndarray]:
    return ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=n))


def test_available_without_importing() -> None:
    ok, why = ClassicBackend.available(BackendSettings())
    assert ok, why


@pytest.mark.parametrize("n", [1, 2, 3, 4, 6])
def test_n_layers_that_composite_to_the_input(flat_design: np.ndarray, n: int) -> None:
    layers = run(flat_design, n)
    assert len(layers) == min(n, 3)  # the design holds a background and two elements
    assert all(layer[..., 3].max() > 12 for layer in layers)  # none empty or near-empty
    assert all(layer.shape == flat_design.shape and layer.dtype == np.uint8 for layer in layers)
    assert psnr(composite(layers), flat_design) >= 40.0


def test_background_is_filled_and_elements_have_soft_edges(flat_design: np.ndarray) -> None:
    background, *rest = run(flat_design, 3)
    assert (background[..., 3] == 255).all()
    # Under the disc the background is the cream paper colour, not red.
    assert np.abs(background[26, 28, :3].astype(int) - [240, 236, 220]).max() <= 3
    alpha = np.concatenate([layer[..., 3].ravel() for layer in rest])
    assert ((alpha > 0) & (alpha < 255)).sum() > 20  # anti-aliased rims are partial


def test_input_alpha_is_kept() -> None:
    image = np.zeros((40, 60, 4), np.uint8)
    image[10:30, 15:45] = (20, 200, 90, 255)
    layers = run(image, 2)
    assert psnr(composite(layers), image) >= 40.0
    assert composite(layers)[0, 0, 3] == 0


def test_default_backend_through_the_api(flat_design: np.ndarray) -> None:
    from layerctl import api

    stack = api.decompose(flat_design, 4, backend="classic")
    assert len(stack) == 3 and stack.metadata["backend"] == "classic"
    assert [layer.name for layer in stack.layers] == ["Background", "Shape 1", "Shape 2"]
    assert stack.metadata["notes"] == ["found 3 layers (asked for up to 4)"]
    assert psnr(stack.composite(), flat_design) >= 40.0


def _draw(size: tuple[int, int], background, shapes) -> np.ndarray:
    """A 4× supersampled, box-filtered drawing: ``shapes`` are (kind, box, rgba), bottom first."""
    from PIL import Image, ImageDraw

    scale = 4
    canvas = Image.new("RGBA", (size[0] * scale, size[1] * scale), background)
    for kind, box, fill in shapes:
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(layer)
        getattr(draw, kind)([v * scale for v in box], fill=fill)
        canvas = Image.alpha_composite(canvas, layer)
    return np.asarray(canvas.reduce(scale)).copy()


def test_overlapping_shapes_split_in_order_with_the_hidden_part_filled() -> None:
    rect, disc = (40, 90, 200, 255), (230, 60, 40, 255)
    image = _draw(
        (120, 90),
        (235, 235, 225, 255),
        [("rectangle", (10, 20, 70, 60), rect), ("ellipse", (50, 30, 100, 80), disc)],
    )
    background, lower, upper = run(image, 3)
    assert psnr(composite([background, lower, upper]), image) >= 40.0
    # The rectangle goes on under the disc (amodal completion), the disc is whole on top.
    assert lower[45, 60, 3] == 255 and np.abs(lower[45, 60, :3].astype(int) - rect[:3]).max() < 8
    assert upper[55, 75, 3] == 255 and np.abs(upper[55, 75, :3].astype(int) - disc[:3]).max() < 8
    assert upper[25, 20, 3] == 0  # the disc layer holds no rectangle


@pytest.mark.parametrize("mark", [("ellipse", (50, 35, 80, 65)), ("text", (30, 25))])
def test_the_card_under_an_element_has_no_outline_of_its_rim(mark) -> None:
    """The card layer is its own flat colour over the element's whole soft footprint:
    the anti-aliased rim goes with the element, not a light ring left in the card."""
    from PIL import Image, ImageDraw, ImageFont

    card, white = (40, 70, 120, 255), (255, 255, 255, 255)
    image = _draw((120, 100), (235, 230, 220, 255), [("rectangle", (15, 15, 105, 85), card)])
    kind, where = mark
    scale = 4
    big = Image.new("RGBA", (120 * scale, 100 * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(big)
    if kind == "text":
        font = ImageFont.load_default(size=40 * scale)
        draw.text((where[0] * scale, where[1] * scale), "SO", fill=white, font=font)
    else:
        draw.ellipse([v * scale for v in where], fill=white)
    element = np.asarray(big.reduce(scale))
    image = composite([image, element])
    footprint = element[..., 3] > 0
    assert ((element[..., 3] > 0) & (element[..., 3] < 255)).sum() > 20  # it has a rim
    background, card_layer, top = run(image, 3)
    assert psnr(composite([background, card_layer, top]), image) >= 40.0
    under = card_layer[footprint].astype(int)
    assert under[:, 3].min() >= 250  # faint rims (a few % white) may stay, barely
    assert np.abs(under[:, :3] - card[:3]).max() <= 6


def test_a_drop_shadow_becomes_a_soft_black_layer() -> None:
    import cv2

    h, w = 80, 120
    image = np.zeros((h, w, 4), np.float32)
    image[...] = (200, 220, 240, 255)
    shadow = np.zeros((h, w), np.float32)
    shadow[30:60, 40:90] = 0.5
    shadow = cv2.GaussianBlur(shadow, (0, 0), 4)
    image[..., :3] *= 1 - shadow[..., None]
    image[22:52, 32:82, :3] = (220, 60, 50)
    image = np.rint(image).astype(np.uint8)
    layers = run(image, 3)
    assert psnr(composite(layers), image) >= 40.0
    seen = [layer for layer in layers[1:] if 0 < layer[56, 86, 3] < 200]
    assert seen and seen[0][56, 86, :3].max() < 20  # black, partly transparent


def test_a_star_stays_on_its_drop_shadow() -> None:
    """The shadow's crescent beside a star has a hull that takes in the star's points,
    which read as the star lying under it (a star layer filled to a pentagon). A soft
    black veil lies under what it touches: the star is whole on top, its notches clear,
    and the shadow goes on under the whole star, as the shape that casts it."""
    import cv2
    from PIL import Image, ImageDraw

    h, w, scale = 100, 120, 4
    cx, cy, outer, inner = 55, 48, 30, 12
    points = [
        (cx + r * np.sin(k * np.pi / 5), cy - r * np.cos(k * np.pi / 5))
        for k, r in enumerate([outer, inner] * 5)
    ]
    big = Image.new("L", (w * scale, h * scale), 0)
    ImageDraw.Draw(big).polygon([(x * scale, y * scale) for x, y in points], fill=255)
    star = np.asarray(big.reduce(scale), np.float32) / 255.0
    shadow = cv2.GaussianBlur(np.roll(star, (6, 6), (0, 1)), (0, 0), 3) * 0.5
    rgb = np.empty((h, w, 3), np.float32)
    rgb[...] = (230, 160, 215)
    rgb *= 1 - shadow[..., None]
    rgb = rgb * (1 - star[..., None]) + np.array([180, 40, 110]) * star[..., None]
    image = np.dstack([np.rint(rgb), np.full((h, w), 255)]).astype(np.uint8)
    tip, notch = (cy - outer + 4, cx), (int(cy + 0.5 * inner), int(cx + 1.4 * inner))
    assert star[notch] == 0
    # Three layers: the shadow has one of its own, under the whole star.
    layers = run(image, 3)
    assert psnr(composite(layers), image) >= 40.0
    assert layers.roles == ["Background", "Shadow", "Shape"]
    assert layers[2][tip][3] == 255
    assert np.abs(layers[2][tip][:3].astype(int) - (180, 40, 110)).max() <= 6
    assert layers[2][notch][3] == 0  # no pentagon
    assert layers[1][notch][:3].max() < 20  # the shadow under it is black
    assert layers[1][cy, cx][3] > 64 and layers[1][cy, cx][:3].max() < 20  # and goes on under
    # Two: the shadow joins the star that casts it, not the background.
    layers = run(image, 2)
    assert psnr(composite(layers), image) >= 40.0
    assert layers.roles == ["Background", "Shape"] and layers[1][tip][3] == 255
    assert layers[1][notch][3] < 255 and layers[1][notch][:3].max() < 20  # shadow, no pentagon


@pytest.mark.slow
@pytest.mark.parametrize("out", ["poster.psd", "poster.ora", "poster"])
def test_cli_decomposes_the_example_in_every_format(cli, tmp_path, out: str) -> None:
    from pathlib import Path

    from layerctl import formats
    from layerctl.imageio import read_image

    example = Path(__file__).resolve().parents[1] / "examples" / "poster.png"
    result = cli("decompose", example, "-n", "4", "-o", tmp_path / out, "--backend", "classic")
    assert result.code == 0, result.stderr
    stack = formats.read(tmp_path / out)
    assert len(stack.leaves()) == 4
    assert psnr(stack.composite(), read_image(example).pixels) >= 40.0


# --- the pieces, on arrays small enough to reason about ----------------------------


def test_pull_push_keeps_known_pixels_and_fills_holes_between_them() -> None:
    values = np.zeros((8, 8, 1), np.float32)
    values[:, :4] = 10.0
    values[:, 4:] = 30.0
    known = np.ones((8, 8), np.float32)
    known[2:6, 3:5] = 0
    filled = pull_push(values, known)
    assert np.array_equal(filled[known > 0], values[known > 0])
    assert (filled[2:6, 3:5] > 10).all() and (filled[2:6, 3:5] < 30).all()


def test_a_soft_black_falloff_is_a_shadow_veil() -> None:
    under = np.tile([[200.0, 150.0, 100.0]], (50, 1))
    a = np.linspace(0.05, 0.6, 50)[:, None]
    seen = (1 - a) * under
    found = veil.fit(seen, under)
    assert found is not None and found.colour.tolist() == [0.0, 0.0, 0.0]
    assert veil.fit(np.full((50, 3), 90.0), under) is None  # one flat colour: opaque


def test_one_overlay_over_a_gradient_is_found_by_regression() -> None:
    under = np.stack([np.linspace(40, 220, 60)] * 3, axis=1) * [1.0, 0.8, 0.6]
    k, a = np.array([250.0, 240.0, 30.0]), 0.4
    found = veil.fit(a * k + (1 - a) * under, under)
    assert found is not None
    assert found.opacity == pytest.approx(a, abs=0.01)
    assert np.abs(found.colour - k).max() < 2


def test_an_overlay_seen_over_two_colours() -> None:
    k, a = np.array([0.0, 0.0, 0.0]), 0.5
    ground, shape = np.array([230.0, 200.0, 120.0]), np.array([40.0, 90.0, 200.0])
    found = veil.across(a * k + (1 - a) * ground, ground, a * k + (1 - a) * shape, shape)
    assert found is not None and found.opacity == pytest.approx(a)
    assert veil.across(ground, ground, shape, shape) is None  # nothing over them


def test_a_shape_seen_through_an_overlay_goes_on_under_it() -> None:
    """An overlay crossing a shape's edge shows the shape through it; that part is the
    shape's (under the veil), not a hole in the shape and an opaque patch in the veil."""
    shape, ground = (230, 240, 150, 255), (20, 60, 70, 255)
    image = _draw(
        (140, 110),
        ground,
        [("rectangle", (30, 20, 80, 80), shape), ("rectangle", (20, 40, 120, 100), (0, 0, 0, 128))],
    )
    background, lower, veil_layer = run(image, 3)
    assert psnr(composite([background, lower, veil_layer]), image) >= 40.0
    assert np.abs(lower[60, 50].astype(int) - shape).max() <= 6  # under the overlay
    for where in ((60, 50), (90, 100)):  # over the shape and over the ground alike
        assert veil_layer[where][:3].max() <= 6 and abs(int(veil_layer[where][3]) - 128) <= 6
    assert veil_layer[30, 50][3] == 0


def _region(mask: np.ndarray) -> Region:
    import cv2

    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(cv2.findNonZero(mask.astype(np.uint8))), 1)
    box = (slice(0, mask.shape[0]), slice(0, mask.shape[1]))
    return Region(box, mask, mask, hull.astype(bool) | mask, np.zeros(4))


def test_a_disc_cut_by_a_bar_is_completed_and_ordered_under_it() -> None:
    import cv2

    disc = np.zeros((60, 60), np.uint8)
    cv2.circle(disc, (30, 30), 20, 1, -1)
    bar = np.zeros((60, 60), bool)
    bar[5:30, 0:60] = True
    visible = disc.astype(bool) & ~bar
    lower, upper = _region(visible), _region(bar)
    whole = occlusion.complete(lower, bar)
    assert whole[20, 30] and not whole[5, 5]  # the disc's top half comes back, no more
    assert occlusion._relation(lower, upper) == "under"
    ranks, above, _ = occlusion.order([lower, upper], {(1, 2)})
    assert ranks == [0, 1] and above[0] == {1}


@pytest.mark.parametrize("kind", ["plain", "gradient", "noise", "transparent"])
def test_images_without_elements_are_all_background(kind):
    rng = np.random.default_rng(0)
    image = np.zeros((48, 64, 4), np.uint8)
    image[..., 3] = 255
    if kind == "plain":
        image[..., :3] = (200, 30, 30)
    elif kind == "gradient":
        image[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    elif kind == "noise":
        image[..., :3] = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    else:
        image[...] = 0
    layers = ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=3))
    assert len(layers) == 1 and layers[0].shape == image.shape  # never padded with empties
    diff = np.abs(composite(layers).astype(int) - image.astype(int))
    assert diff[..., 3].max() <= 1


def test_scattered_pieces_are_not_completed_by_their_hull_but_one_piece_is() -> None:
    glyphs = np.zeros((40, 80), bool)
    for x in range(5, 75, 10):
        glyphs[10:30, x : x + 4] = True  # a line of thin "letters"
    bar = np.zeros((40, 80), bool)
    bar[15:25, 30:60] = True
    word = _region(glyphs & ~bar)
    assert not occlusion.complete(word, bar, hull_if_sparse=False)[20, 37]  # between letters
    assert occlusion.complete(word, bar)[20, 37]  # the hull, for the ordering cue
    corner = np.zeros((40, 80), bool)
    corner[5:35, 10:70] = True
    corner_cover = np.zeros((40, 80), bool)
    corner_cover[5:32, 10:67] = True
    piece = _region(corner & ~corner_cover)  # one thin L-shaped sliver of a card
    assert piece.area < occlusion.MIN_SOLIDITY * piece.hull.sum()
    assert occlusion._scattered(word, bar) and not occlusion._scattered(piece, corner_cover)
    assert occlusion.complete(piece, corner_cover, hull_if_sparse=False)[20, 40]


def test_pieces_are_completed_only_across_the_occluders_between_them() -> None:
    """A disc cut in two by a band goes on under the band; two same-coloured bars of a
    chart with another bar between them and open ground around do not reach under it."""
    yy, xx = np.mgrid[:40, :80]
    triangle = (yy > 5) & (np.abs(xx - 40) < (yy - 5) * 1.1)
    band = np.zeros((40, 80), bool)
    band[18:24] = True
    cut = _region(triangle & ~band)
    assert not occlusion._scattered(cut, band)
    assert occlusion.complete(cut, band, hull_if_sparse=False)[20, 40]
    bars = np.zeros((40, 80), bool)
    bars[5:38, 10:20] = bars[20:38, 50:60] = True
    middle = np.zeros((40, 80), bool)
    middle[12:38, 30:40] = True
    pair = _region(bars)
    assert occlusion._scattered(pair, middle)
    assert not occlusion.complete(pair, middle, hull_if_sparse=False)[30, 35]
