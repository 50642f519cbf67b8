"""The failure modes users met on images the classic backend was not tuned on, each on a
small constructed image (issue 13): text over a shape, wasted and empty layers, ghosts,
photographs, transparent grounds, and layer names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from layerctl import refine
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.classic import ClassicBackend, segment
from layerctl.stack import composite

pytest.importorskip("cv2")

CREAM, ORANGE, INK = (240, 230, 200), (240, 120, 40), (20, 20, 20)
WHITE = (255, 255, 255)


def run(image: np.ndarray, n: int):
    return ClassicBackend(BackendSettings()).decompose(image, DecomposeRequest(layers=n))


def draw(size, ground, paint) -> np.ndarray:
    """``paint(draw, scale)`` at 4× on ``ground``, box-filtered down: soft edges."""
    scale = 4
    canvas = Image.new("RGBA", (size[0] * scale, size[1] * scale), ground)
    paint(ImageDraw.Draw(canvas), scale)
    return np.asarray(canvas.reduce(scale)).copy()


def text_over_triangle() -> np.ndarray:
    font = ImageFont.load_default(size=44 * 4)

    def paint(d, s):
        d.polygon([(40 * s, 190 * s), (160 * s, 20 * s), (280 * s, 190 * s)], fill=ORANGE)
        d.text((20 * s, 150 * s), "SUMMER FEST", font=font, fill=INK)

    return draw((320, 220), CREAM, paint)


def test_dark_text_across_a_shape_owns_its_pixels_and_the_shape_stays_whole():
    image = text_over_triangle()
    layers = run(image, 4)
    assert layers.roles == ["Background", "Shape", "Text"]  # one text layer, not two
    background, triangle, text = layers
    inside = (110, 160)  # inside the triangle, between the letters: no copy of it on text
    assert text[inside][3] == 0
    letters = (text[..., 3] == 255) & (np.abs(image[..., :3].astype(int) - INK).max(-1) < 8)
    in_triangle = letters & (triangle[..., 3] > 0)
    assert in_triangle.sum() > 100
    # The triangle goes on whole under the text: orange, opaque, no text-shaped holes.
    assert (triangle[..., 3][in_triangle] == 255).all()
    off = np.abs(triangle[..., :3][in_triangle].astype(int) - ORANGE).max(axis=-1)
    assert np.percentile(off, 98) <= 12  # orange under the letters (a few edge pixels mix)
    # No ghost of the lifted text on the background.
    ground = background[..., :3][letters & (triangle[..., 3] == 0)].astype(int)
    assert np.abs(ground - CREAM).max() <= 6


def test_elements_take_layers_before_their_shadows():
    """Three elements and the drop shadow of one, four layers: each element gets its own
    and the shadow goes with the shape that casts it, not into a layer of its own."""
    import cv2

    h, w = 120, 240
    card = np.zeros((h, w), np.float32)
    card[30:90, 20:90] = 1
    shadow = cv2.GaussianBlur(np.roll(card, (5, 5), (0, 1)), (0, 0), 3) * 0.5
    rgb = np.empty((h, w, 3), np.float32)
    rgb[...] = CREAM
    rgb *= 1 - shadow[..., None]
    rgb = rgb * (1 - card[..., None]) + np.array([40, 90, 200]) * card[..., None]
    image = np.dstack([np.rint(rgb), np.full((h, w), 255)]).astype(np.uint8)
    image[40:80, 120:150, :3] = (200, 40, 40)
    image[40:80, 180:220, :3] = (40, 160, 80)
    layers = run(image, 4)
    assert len(layers) == 4 and layers.roles[0] == "Background"
    assert "Shadow" not in layers.roles
    card_layer = next(px for px in layers if px[60, 50, 3] == 255)
    assert card_layer[93, 60, 3] > 0  # its shadow's crescent is on the card's layer
    assert all((px[..., 3] > 0).sum() > 500 for px in layers)  # no sliver layers


@pytest.mark.parametrize("n", [2, 4])
def test_one_colour_gives_one_layer(n):
    image = np.full((40, 60, 4), (30, 90, 160, 255), np.uint8)
    layers = run(image, n)
    assert len(layers) == 1 and np.array_equal(layers[0], image)


def test_a_shape_on_transparency_has_no_background_and_layers_do_not_overlap():
    def paint(d, s):
        d.ellipse((10 * s, 10 * s, 60 * s, 60 * s), fill=(200, 30, 30, 255))
        d.rectangle((80 * s, 20 * s, 140 * s, 50 * s), fill=(30, 30, 200, 255))

    image = draw((160, 70), (0, 0, 0, 0), paint)
    layers = run(image, 4)
    assert layers.roles == ["Shape", "Shape"]
    written = refine.make_lossless(list(layers), image)
    assert not ((written[0][..., 3] > 0) & (written[1][..., 3] > 0)).any()
    assert np.abs(composite(written).astype(int) - image).max() <= 1


def test_a_photograph_stays_one_layer_and_says_so():
    skimage_data = pytest.importorskip("skimage.data")
    photo = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((160, 160)))
    image = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    layers = run(image, 4)
    assert len(layers) == 1 and np.array_equal(layers[0], image)
    assert len(layers.notes) == 1 and "--backend qwen" in layers.notes[0]


def test_a_photograph_inside_a_design_is_one_layer_not_shreds():
    """A picture on a slide (a photo in a frame, beside a title) is one layer: its
    texture is not cut into colour patches, and the slide is not read as a photo."""
    skimage_data = pytest.importorskip("skimage.data")
    photo = np.asarray(Image.fromarray(skimage_data.coffee()).resize((120, 90)))
    font = ImageFont.load_default(size=28 * 4)

    def paint(d, s):
        d.rectangle((166 * s, 46 * s, 294 * s, 144 * s), fill=(250, 250, 250))
        d.text((16 * s, 20 * s), "Our Team", font=font, fill=(240, 240, 240))

    image = draw((320, 180), (40, 30, 60), paint)
    image[50:140, 170:290, :3] = photo
    layers = run(image, 5)
    assert not layers.notes
    assert layers.roles[0] == "Background"
    shown = [(layer[50:140, 170:290, 3] == 255).mean() for layer in layers[1:]]
    assert max(shown) > 0.99  # one layer holds the whole photograph
    holder = layers[1 + int(np.argmax(shown))]
    assert np.abs(holder[50:140, 170:290, :3].astype(int) - photo).max() <= 2
    assert not holder[10:45, 10:150, 3].any()  # the title is a layer of its own
    assert "Shadow" not in layers.roles  # light text on a dark ground is no shadow


def test_a_black_and_white_photo_shows_a_photos_spread_of_colours():
    """A grey photograph has only 16 colours at 4 bits a channel, fewer than any colour
    photo's: its spread over the brightness levels is what marks it; text's rims are
    too thin a spread to pass."""
    skimage_data = pytest.importorskip("skimage.data")

    grey = Image.fromarray(skimage_data.camera()).convert("RGBA").resize((120, 90))
    photo = np.asarray(grey)
    texture = photo[~segment.flat_pixels(segment.channels(photo))]  # as pictures() sees it
    assert segment._many_colours(texture, solid=True, thick=True)
    words = Image.new("RGBA", (400, 100), (255, 255, 255, 255))
    ImageDraw.Draw(words).text((5, 5), "Flat art", font=ImageFont.load_default(size=80), fill=INK)
    ink = np.asarray(words)
    assert not segment._many_colours(ink[(ink[..., :3] < 250).any(-1)], solid=True, thick=True)


def test_a_speckled_ground_keeps_its_specks():
    """Stars on a night sky (or grain on paper) are the ground's texture: they stay on
    the background, not in layers of specks; the title still gets its own layer."""
    rng = np.random.default_rng(3)
    stars = rng.integers([5, 5], [395, 215], size=(60, 2))
    font = ImageFont.load_default(size=40 * 4)

    def paint(d, s):
        for x, y in stars:
            r = rng.uniform(0.8, 1.6)
            d.ellipse(((x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s), fill=(230, 230, 200))
        d.rectangle((60 * s, 90 * s, 340 * s, 150 * s), fill=(10, 10, 30))
        d.text((70 * s, 95 * s), "NIGHT SKY", font=font, fill=(250, 190, 40))

    image = draw((400, 220), (10, 10, 30), paint)
    layers = run(image, 5)
    assert layers.roles[0] == "Background"
    star = (stars[:, 1], stars[:, 0])
    outside = ~((stars[:, 0] > 55) & (stars[:, 0] < 345) & (stars[:, 1] > 85) & (stars[:, 1] < 155))
    assert (layers[0][star][outside][:, 0] > 150).mean() > 0.9  # the stars, on the ground
    for layer in layers[1:]:
        assert not (layer[..., 3][star][outside] > 0).any()
    assert any(layer[120, 200, 3] == 255 or layer[110, 80, 3] > 0 for layer in layers[1:])


def test_a_speckled_grounds_larger_blots_stay_on_it_but_a_badge_does_not():
    """Among the stars, a few galaxies several times a star's size are the ground's
    texture too; a badge of a designed size well above that is still an element."""
    rng = np.random.default_rng(5)
    stars = rng.integers([5, 5], [395, 215], size=(60, 2))
    galaxies = [(40, 40), (300, 60), (120, 180), (250, 200)]

    def paint(d, s):
        for x, y in stars:
            r = rng.uniform(0.8, 1.6)
            d.ellipse(((x - r) * s, (y - r) * s, (x + r) * s, (y + r) * s), fill=(230, 230, 200))
        for x, y in galaxies:
            d.ellipse(((x - 6) * s, (y - 4) * s, (x + 6) * s, (y + 4) * s), fill=(150, 110, 90))
        d.ellipse((330 * s, 120 * s, 380 * s, 170 * s), fill=(230, 110, 80))

    image = draw((400, 220), (10, 10, 30), paint)
    layers = run(image, 5)
    assert layers.roles[0] == "Background"
    for x, y in galaxies:
        assert layers[0][y, x, 0] > 120  # on the ground
        assert all(layer[y, x, 3] == 0 for layer in layers[1:])
    assert any(layer[145, 355, 3] == 255 for layer in layers[1:])  # the badge


def test_small_light_words_on_a_card_are_text_not_card():
    """Small light text on a dark card is all anti-aliased rim: its plain mean colour is
    half card, which read as a blend of the card and the next word, so one word went
    into the card's layer (the README poster lost "concerts"). Every word is text."""
    navy, pale = (40, 70, 120), (200, 215, 240)
    font = ImageFont.load_default(size=13 * 4)

    def paint(d, s):
        d.rounded_rectangle((20 * s, 20 * s, 300 * s, 110 * s), 10 * s, fill=navy)
        d.text((40 * s, 55 * s), "Open-air concerts · July", font=font, fill=pale)

    image = draw((320, 130), CREAM, paint)
    layers = run(image, 4)
    assert layers.roles == ["Background", "Shape", "Text"]
    words = np.abs(image[..., :3].astype(int) - pale).max(-1) < 30
    assert (layers[2][..., 3][words] > 200).mean() > 0.9
    card = layers[1][..., :3][words].astype(int)
    off = np.abs(card - navy).max(axis=-1)
    assert np.percentile(off, 98) <= 12  # the card goes on whole, navy, under the words


def test_a_soft_drop_shadow_leaves_no_ghost_on_the_background():
    """The ground's smooth model bends to a soft shadow's body, which then read as
    ground: the background kept a dark ring where the disc's shadow was (the README
    poster). The shadow's body and tail go with the shadow; the ground is plain."""
    import cv2

    h, w = 160, 220
    disc = np.zeros((h, w), np.float32)
    cv2.circle(disc, (110, 75), 50, 1.0, -1, lineType=cv2.LINE_AA)
    shadow = cv2.GaussianBlur(np.roll(disc, (8, 8), (0, 1)), (0, 0), 6) * 0.35
    rgb = np.empty((h, w, 3), np.float32)
    rgb[...] = CREAM
    rgb *= 1 - shadow[..., None]
    rgb = rgb * (1 - disc[..., None]) + np.array(ORANGE) * disc[..., None]
    image = np.dstack([np.rint(rgb), np.full((h, w), 255)]).astype(np.uint8)
    layers = run(image, 3)
    assert layers.roles[0] == "Background"
    ground = np.abs(layers[0][..., :3].astype(int) - CREAM).max(axis=-1)
    assert ground.max() <= 14  # was a ring 40 levels dark
    written = refine.make_lossless(list(layers), image)
    assert np.abs(composite(written).astype(int) - image).max() <= 1


def test_a_white_card_on_a_light_page_is_a_layer():
    """UI cards are ten levels off the page, under the background threshold that grainy
    grounds need: on a ground with no grain, a lighter step that small is an element
    (and the anti-aliased ring of the text on it, near the page's colour, is no page)."""
    font = ImageFont.load_default(size=14 * 4)

    def paint(d, s):
        d.rounded_rectangle((30 * s, 30 * s, 190 * s, 110 * s), 8 * s, fill=(255, 255, 255))
        d.text((50 * s, 60 * s), "Alex Morgan", font=font, fill=(30, 30, 40))

    image = draw((240, 150), (245, 245, 247), paint)
    layers = run(image, 4)
    assert layers.roles == ["Background", "Shape", "Text"]
    assert (layers[1][40:100, 40:180, 3] == 255).mean() > 0.995  # the card, under its text too
    assert np.abs(layers[0][40, 100, :3].astype(int) - (245, 245, 247)).max() <= 2


def test_alike_cards_each_go_on_under_their_words():
    """Three alike cards are one region of three pieces, no one shape to complete: each
    card still goes on under the words on it, or the card layer has text-shaped holes
    and the lossless step paints the words' ghosts into the background."""
    font = ImageFont.load_default(size=14 * 4)
    names = ("Alex Morgan", "Priya Shah", "Sam Lee")

    def paint(d, s):
        for k, name in enumerate(names):
            top = 20 + 70 * k
            d.rounded_rectangle((20 * s, top * s, 200 * s, (top + 55) * s), 8 * s, fill=WHITE)
            d.text((40 * s, (top + 18) * s), name, font=font, fill=(30, 30, 40))

    image = draw((240, 240), (245, 245, 247), paint)
    layers = run(image, 4)
    cards = layers[layers.roles.index("Shape")]
    for k in range(3):
        top = 20 + 70 * k
        assert (cards[top + 8 : top + 47, 30:190, 3] == 255).mean() > 0.995
    ground = refine.make_lossless(list(layers), image)[0][..., :3].astype(int)
    for k in range(3):  # no ghosts of the words under the cards
        top = 20 + 70 * k
        assert np.abs(ground[top + 8 : top + 47, 30:190] - (245, 245, 247)).max() <= 3


def test_split_of_a_plain_shape_is_not_padded(cli, tmp_path):
    from layerctl import formats

    def paint(d, s):
        d.ellipse((20 * s, 10 * s, 80 * s, 70 * s), fill=(200, 30, 30, 255))

    path = tmp_path / "circle.png"
    Image.fromarray(draw((100, 80), (255, 255, 255, 255), paint)).save(path)
    out = tmp_path / "circle.psd"
    assert cli("decompose", path, "-o", out, "-n", "3", "-b", "classic").code == 0
    stack = formats.read(out)
    assert [layer.name for layer in stack.layers] == ["Background", "Shape"]
    result = cli("split", out, "--layer", "Shape", "-n", "3", "-b", "classic")
    assert result.code == 1 and "holds one element" in result.stderr


def test_jpeg_inputs_are_read_as_flat_graphics():
    """JPEG's ringing breaks the flat areas regions grow from (unsmoothed, this design
    reads as a photograph): a compressed design is recognised (the 8×8 grid) and
    smoothed for analysis, and the layers still match the input."""
    import io

    image = text_over_triangle()
    buffer = io.BytesIO()
    Image.fromarray(image[..., :3]).save(buffer, "JPEG", quality=80)
    jpeg = np.asarray(Image.open(buffer).convert("RGBA")).copy()
    assert segment.compressed(jpeg) and not segment.compressed(image)
    layers = run(jpeg, 4)
    assert layers.roles[:3] == ["Background", "Shape", "Text"]
    letters = np.abs(image[..., :3].astype(int) - INK).max(-1) < 8
    assert (layers[2][..., 3][letters] > 200).mean() > 0.8  # the text, nearly whole
    written = refine.make_lossless(list(layers), jpeg)
    assert np.abs(composite(written).astype(int) - jpeg).max() <= 1


@pytest.mark.parametrize("size", [11, 14, 20])
def test_small_black_text_is_one_text_layer_not_a_shadow(size):
    """Thin dark glyphs read as black at some opacity too; their strokes are too thin
    to hold a shadow's falloff, and their rim-diluted colours still make one word."""
    image = Image.new("RGBA", (300, 60), (240, 235, 225, 255))
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(image).text((20, 20), "HELLO WORLD", fill=INK, font=font)
    layers = run(np.asarray(image).copy(), 6)
    assert layers.roles == ["Background", "Text"]


def test_a_split_shadow_hides_no_opaque_black_under_its_caster():
    """Splitting a layer that holds a disc and its soft shadow (on transparency): the
    shadow's hidden part keeps the shadow's opacity, not an opaque black fill."""
    import cv2

    h, w = 120, 160
    disc = np.zeros((h, w), np.float32)
    cv2.circle(disc, (70, 55), 35, 1.0, -1)
    shadow = cv2.GaussianBlur(np.roll(disc, (6, 6), (0, 1)), (0, 0), 3) * 0.5
    alpha = disc + shadow * (1 - disc)
    rgb = (np.array(ORANGE) * disc[..., None]) / np.maximum(alpha, 1e-6)[..., None]
    image = np.dstack([np.rint(rgb), np.rint(alpha * 255)]).astype(np.uint8)
    layers = run(image, 3)
    under_disc = disc > 0.99
    assert (layers[-1][..., 3][under_disc] == 255).all()  # the disc, on top
    for lower in layers[:-1]:  # the shadow's parts: see-through under it, as they show
        assert (lower[..., 3][under_disc] < 200).all()


DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans-{}.ttf"


@pytest.mark.parametrize(("style", "size"), [("", 14), ("Bold", 14), ("Bold", 20), ("Bold", 24)])
def test_dark_words_on_a_white_card_on_a_light_page(style, size):
    """The commonest UI there is: two lines of dark words on a white card on a light
    grey page. The card is a Shape under a Text layer: not taken into the page (its
    edge's step is no grain of the page), not an Overlay over the words (a crumb of a
    glyph's rim is no part of a veil across an edge), and the words are not a
    Shadow (a blurred shadow never reaches their solid body's opacity)."""
    if style and not Path(DEJAVU.format(style)).exists():
        pytest.skip("needs fonts-dejavu-core")
    font = ImageFont.truetype(DEJAVU.format(style), size * 4) if style else None
    font = font or ImageFont.load_default(size=size * 4)

    def paint(d, s):
        d.rounded_rectangle((20 * s, 20 * s, 460 * s, 140 * s), 12 * s, fill=WHITE)
        d.text((40 * s, 40 * s), "Alex Morgan", fill=INK, font=font)
        d.text((40 * s, 40 * s + size * s * 1.3), "Sent you a file", fill=INK, font=font)

    image = draw((480, 170), (246, 248, 247, 255), paint)
    layers = run(image, 5)
    assert layers.roles == ["Background", "Shape", "Text"]
    background, card, words = layers
    off_page = np.abs(background[..., :3].astype(int) - (246, 248, 247)).max(-1) > 2
    assert off_page.mean() < 0.001  # no ghost of the card: a few of its corners' rim pixels
    assert (card[30:130, 300:450, 3] == 255).all() and (card[30:130, 300:450, :3] == 255).all()
    ink = np.abs(image[..., :3].astype(int) - INK).max(-1) < 8
    assert (words[..., 3][ink] > 200).mean() > 0.9


@pytest.mark.parametrize(
    ("offset", "blur", "opacity"),
    [(12, 10, 0.15), (20, 8, 0.15), (20, 16, 0.15), (24, 25, 0.25), (30, 30, 0.3)],
)
def test_a_faint_drop_shadow_is_a_see_through_shadow(offset, blur, opacity):
    """A UI card's drop shadow at 0.15 (not a poster's 0.5) falls off as much for its
    strength, and a broad one darkens the page far around the card: it is a black
    Shadow at its opacity under the card, not an opaque grey shape; and the page it
    darkens is no grain of the page (one flat colour along the canvas's edges)."""
    import cv2

    h, w = 300, 480
    card = np.zeros((h, w), np.float32)
    cv2.rectangle(card, (80, 60), (400, 200), 1.0, -1)
    shadow = cv2.GaussianBlur(np.roll(card, offset, 0), (0, 0), blur) * opacity
    ground, blue = np.array((233, 242, 219), np.float32), np.array((58, 134, 255), np.float32)
    rgb = ground * (1 - shadow[..., None])
    rgb = blue * card[..., None] + rgb * (1 - card[..., None])
    image = np.dstack([np.rint(rgb), np.full((h, w), 255)]).astype(np.uint8)
    layers = run(image, 4)
    assert layers.roles == ["Background", "Shadow", "Shape"]
    alpha, colour = layers[1][..., 3], layers[1][..., :3]
    assert alpha.max() <= opacity * 255 + 8  # see-through, as it shows
    assert colour[alpha > 8].max() <= 8  # black


def test_a_shadow_left_on_the_ground_with_its_caster_is_no_crash():
    """scikit-image's moon, enlarged: some of its craters read as drop shadows whose
    casting blot stays on the ground as texture; a spare layer for such a shadow was
    looked for in a group it was in (StopIteration, a traceback for the user)."""
    from skimage import data as skimage_data

    moon = Image.fromarray(skimage_data.moon()).resize((800, 800)).convert("RGBA")
    image = np.asarray(moon).copy()
    layers = run(image, 8)
    written = refine.make_lossless(list(layers), image)
    assert np.abs(composite(written).astype(int) - image).max() <= 1


def test_a_page_of_specks_is_all_background():
    """Thirty 2-px specks of ink on a white page (dust on a scan) are the page's
    texture, every one of them: no element is left, and that is no crash (an empty
    plan once raised ValueError)."""
    rng = np.random.default_rng(0)
    image = np.full((200, 300, 4), 255, np.uint8)
    for _ in range(30):
        y, x = rng.integers(5, 195), rng.integers(5, 295)
        image[y : y + 2, x : x + 2, :3] = rng.integers(0, 200, 3)
    layers = run(image, 4)
    assert layers.roles == ["Background"]
    assert np.abs(layers[0].astype(int) - image).max() <= 1


def test_the_parts_of_a_donut_chart_are_one_element():
    """Three arcs of a donut chart meet only at their anti-aliased seams. None lies on
    another, so they are one element on one level: one layer, not three whose seams
    overlap (which stacked them as if one hid the next)."""
    arcs = ((-90, 40, (120, 10, 180)), (40, 170, (70, 100, 240)), (170, 270, (80, 200, 240)))

    def paint(d, s):
        for start, end, colour in arcs:
            d.pieslice([60 * s, 30 * s, 240 * s, 210 * s], start, end, fill=colour)
        d.ellipse([110 * s, 80 * s, 190 * s, 160 * s], fill=(245, 245, 245))

    image = draw((300, 240), (245, 245, 245), paint)
    layers = run(image, 5)
    assert layers.roles == ["Background", "Shape"]
    for start, end, colour in arcs:
        middle = np.deg2rad((start + end) / 2)
        x, y = round(150 + 70 * np.cos(middle)), round(120 + 70 * np.sin(middle))
        assert layers[1][y, x, 3] == 255 and np.abs(layers[1][y, x, :3] - colour).max() <= 2


def test_white_bars_along_a_light_pages_edges_are_elements():
    """A phone screen: a white app bar along the top edge and a tab bar along the
    bottom of a light grey page, a white card between. Fitted with the page along the
    edges, the bars bent its surface up to them and were painted into the background;
    the page is the edges' largest piece of one colour, and the bars lie on it."""
    grey = (242, 243, 245)

    def paint(d, s):
        d.rectangle([0, 0, 240 * s, 36.5 * s], fill=WHITE)  # a soft edge joins them flat
        d.rectangle([0, 363.5 * s, 240 * s, 400 * s], fill=WHITE)
        d.rounded_rectangle([20 * s, 80 * s, 220 * s, 160 * s], 10 * s, fill=WHITE)
        d.text((60 * s, 110 * s), "Alex", font=ImageFont.load_default(size=20 * s), fill=INK)

    image = draw((240, 400), grey, paint)
    layers = run(image, 5)
    for y in (10, 390):
        assert np.abs(layers[0][y, 120, :3].astype(int) - grey).max() <= 2
        assert max(layer[y, 120, 3] for layer in layers[1:]) == 255


@pytest.mark.parametrize("size", [14, 15])
def test_a_thin_glyph_goes_with_its_words_not_the_card_under_it(size):
    """A name on a white list card on a large page: some glyphs of small text (an "A",
    a "4") are too thin to hold a flat pixel and lift paler than the ink, so they were
    specks that joined what they touch most, the card, which then carried dark letters."""
    font = ImageFont.load_default(size=size)

    def paint(d, s):
        d.rounded_rectangle([20 * s, 30 * s, 300 * s, 90 * s], 6 * s, fill=WHITE)

    card = Image.fromarray(draw((900, 600), (246, 246, 247), paint))
    pen = ImageDraw.Draw(card)  # at 1×: FreeType's own anti-aliasing, as apps render
    pen.text((70, 40), "Alex Morgan", font=font, fill=(24, 24, 28))
    pen.text((70, 62), "Paid $42.00", font=font, fill=(24, 24, 28))
    layers = run(np.asarray(card).copy(), 3)
    assert layers.roles == ["Background", "Shape", "Text"]
    dark = (layers[1][..., 3] > 200) & (layers[1][..., :3].max(axis=-1) < 128)
    assert not dark.any()


def test_a_line_of_text_in_several_colours_is_one_text_layer():
    """A line "Alpha Beta Gamma" with one word highlighted in another colour is one
    line of text (a text layer with style runs), not three layers split by colour; a
    second line below stays apart."""
    font = ImageFont.load_default(size=28)
    card = Image.new("RGBA", (520, 220), (250, 250, 250, 255))
    pen = ImageDraw.Draw(card)
    x = 20
    for word, colour in (("Alpha", (200, 60, 40)), ("Beta", (40, 110, 220)), ("Gamma", INK)):
        pen.text((x, 60), word, font=font, fill=colour)
        x += pen.textlength(word + " ", font=font)
    pen.text((20, 150), "Control", font=font, fill=(120, 120, 120))
    layers = run(np.asarray(card).copy(), 6)
    assert layers.roles[0] == "Background"
    line = [k for k in range(1, len(layers)) if layers[k][60:100, :, 3].max() == 255]
    assert len(line) == 1 and layers.roles[line[0]] == "Text"
    assert layers[line[0]][140:190, :, 3].max() == 0


def test_a_shape_beside_a_panel_is_not_the_panel_seen_through():
    """A translucent green panel on a cream ground, a dark green card touching it and a
    black rule across both. The card's colour is exactly the panel's veil over black,
    so one veil explains "panel on the ground" and "card = panel over the rule"; but the
    card reaches far beyond the rule, so it is a card of its own: its own opaque layer,
    not a piece of the panel's veil."""
    green, opacity = np.array([121.0, 198.0, 103.0]), 0.56
    rule = np.array([25.0, 25.0, 29.0])
    card = tuple(int(v) for v in np.rint(opacity * green + (1 - opacity) * rule))
    s = 4
    canvas = Image.new("RGBA", (400 * s, 240 * s), (235, 235, 220, 255))
    ImageDraw.Draw(canvas).rectangle([20 * s, 110 * s, 170 * s, 200 * s], fill=card)
    panel = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    tint = (*(int(v) for v in green), round(255 * opacity))
    ImageDraw.Draw(panel).rectangle([170 * s, 40 * s, 370 * s, 130 * s], fill=tint)
    canvas = Image.alpha_composite(canvas, panel)
    ImageDraw.Draw(canvas).rectangle([10 * s, 114 * s, 380 * s, 120 * s], fill=(25, 25, 29))
    layers = run(np.asarray(canvas.reduce(s)).copy(), 5)
    holder = [k for k in range(1, len(layers)) if layers[k][170, 60, 3] == 255]
    assert len(holder) == 1
    assert np.abs(layers[holder[0]][170, 60, :3].astype(int) - card).max() <= 2
    assert layers[holder[0]][60, 300, 3] == 0  # the panel is not in the card's layer


def test_a_see_through_bar_across_a_shape_on_transparency_lets_it_show():
    """On a transparent canvas, a red bar at 46 % opacity across an opaque green bar:
    where they cross the input shows their blend. The green bar is one whole layer,
    under the crossing too, and the red bar keeps its own colour and opacity there."""
    s = 4
    green = Image.new("RGBA", (240 * s, 160 * s), (0, 0, 0, 0))
    ImageDraw.Draw(green).rectangle([100 * s, 10 * s, 140 * s, 150 * s], fill=(0, 240, 120))
    red = Image.new("RGBA", green.size, (0, 0, 0, 0))
    ImageDraw.Draw(red).rectangle([20 * s, 60 * s, 220 * s, 100 * s], fill=(230, 30, 40, 117))
    image = np.asarray(Image.alpha_composite(green, red).reduce(s)).copy()
    layers = run(image, 3)
    crossing, bar_alone = (80, 120), (80, 50)
    under = [k for k in range(len(layers)) if layers[k][crossing][3] == 255]
    assert len(under) == 1 and tuple(layers[under[0]][crossing][:3]) == (0, 240, 120)
    over = [k for k in range(len(layers)) if 0 < layers[k][bar_alone][3] < 255]
    assert len(over) == 1 and over[0] > under[0]
    assert abs(int(layers[over[0]][crossing][3]) - 117) <= 3
    assert np.abs(layers[over[0]][crossing][:3].astype(int) - (230, 30, 40)).max() <= 4


def cards(offset: int = 0) -> np.ndarray:
    """Five white cards on a light page: four in a column, one off to the side."""

    def paint(d, s):
        for top in (20, 110, 200, 290):
            d.rounded_rectangle(
                [(v + offset) * s for v in (20, top, 180, top + 60)], radius=6 * s, fill=WHITE
            )
        d.rounded_rectangle([(v + offset) * s for v in (240, 20, 460, 60)], 6 * s, fill=WHITE)

    return draw((480, 370), (240, 240, 242, 255), paint)


@pytest.mark.parametrize("offset", range(8))
def test_cards_on_the_jpeg_grid_are_no_jpeg(offset):
    """Cards whose edges fall on the 8×8 grid, as a UI's 8-point grid puts them, have few
    busy blocks (their corners): the zero shares of two grids differ by chance there,
    which once read as a JPEG's blocking and smeared the cards into the page."""
    assert not segment.compressed(cards(offset))


def test_cards_scattered_over_a_page_are_named_shapes_not_text():
    """The column of cards is one region of several pieces that fill little of their
    hull, in a tall row, as a line of glyphs is; but each piece is a solid card, so its
    layer is a Shape."""
    layers = run(cards(), 3)
    column = [k for k in range(1, len(layers)) if layers[k][50, 100, 3] == 255]
    assert len(column) == 1 and all(layers[column[0]][y, 100, 3] == 255 for y in (140, 320))
    assert layers.roles[1:] == ["Shape", "Shape"]


def test_a_disc_half_under_a_card_goes_on_as_a_whole_disc():
    """A disc whose top half lies under a card shows only its lower half: its fitted
    ellipse goes on under the card, past the box of the half that shows, so the
    disc's layer holds the whole disc (and overlaps the card's, as drawn)."""

    def paint(d, s):
        d.ellipse([90 * s, 90 * s, 210 * s, 210 * s], fill=(110, 20, 90))
        d.rectangle([40 * s, 40 * s, 300 * s, 150 * s], fill=(115, 55, 48))

    layers = run(draw((340, 240), (160, 215, 222, 255), paint), 3)
    assert len(layers) == 3
    disc, card = layers[1], layers[2]
    assert disc[180, 150, 3] == 255 and card[100, 150, 3] == 255
    hidden = disc[100:145, 100:200]  # the disc's top half, under the card
    inside = (np.subtract.outer(np.arange(100, 145), 150) ** 2)[:, None] + (
        np.arange(100, 200) - 150
    ) ** 2 < 55**2
    assert (hidden[..., 3][inside] == 255).all()
    assert np.abs(hidden[inside][:, :3].astype(int) - (110, 20, 90)).max() <= 3
