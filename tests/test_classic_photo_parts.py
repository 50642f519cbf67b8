"""Parts of a design on a photograph that photo.py must not leave on the ground
(issue 13): the label on a button filled with a gradient, white letters across a pale
part of the photograph, and a photograph enlarged until it is smooth."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from test_classic_photo_ground import photograph, poster, run

cv2 = pytest.importorskip("cv2")

INK = (20, 20, 30)


def gradient_button(size=(480, 320)) -> tuple[np.ndarray, np.ndarray]:
    """(image, label coverage): a button filled with a left-to-right orange ramp and a
    dark label on it, drawn at 4× on a photograph and box-filtered down."""
    scale, (w, h) = 4, size
    big = Image.fromarray(photograph("chelsea", size)).resize((w * scale, h * scale))
    box = (40 * scale, 200 * scale, 260 * scale, 270 * scale)
    ramp = np.linspace([250, 150, 40], [255, 200, 80], box[2] - box[0])
    fill = np.broadcast_to(ramp, (box[3] - box[1], *ramp.shape)).round().astype(np.uint8)
    shape = Image.new("L", big.size, 0)
    ImageDraw.Draw(shape).rounded_rectangle(box, 12 * scale, fill=255)
    paint = Image.new("RGB", big.size)
    paint.paste(Image.fromarray(fill), box[:2])
    big.paste(paint.convert("RGBA"), mask=shape)
    label = Image.new("L", big.size, 0)
    font = ImageFont.load_default(size=30 * scale)
    ImageDraw.Draw(label).text((70 * scale, 215 * scale), "Learn more", font=font, fill=255)
    big.paste(Image.new("RGBA", big.size, (*INK, 255)), mask=label)
    return np.asarray(big.reduce(scale)).copy(), np.asarray(label.reduce(scale))


def test_the_label_on_a_gradient_button_leaves_the_photograph():
    """The label's holes in the button are blends of the ramp's colour where they lie
    and the ink, not of its median colour: they go with the button, not the ground."""
    image, label = gradient_button()
    layers = run(image, 4)
    assert not layers.notes
    inside = label == 255
    ground = layers[0][..., :3][inside].astype(float)
    assert np.abs(ground - INK).max(axis=-1).min() > 60  # no dark letters left on it
    text = [px for px, role in zip(layers, layers.roles, strict=True) if role == "Text"]
    assert len(text) == 1 and (text[0][..., 3][inside] >= 200).mean() >= 0.75


def white_title_on_a_pale_patch(size=(480, 320)) -> tuple[np.ndarray, np.ndarray]:
    """(image, title coverage): bold white letters drawn at 4× across a soft-edged pale patch
    of the photograph (a white cup, a bright sky), box-filtered down."""
    scale, (w, h) = 4, size
    photo = photograph("chelsea", size).astype(np.float32)
    yy, xx = np.mgrid[:h, :w]
    patch = np.exp(-((((xx - 200) / 200.0) ** 2 + ((yy - 70) / 60.0) ** 2) ** 2))
    shade = 5 * np.sin(xx / 37.0) * np.cos(yy / 23.0)  # smooth, as no plane is
    pale = np.stack([244 + shade, 241 + shade, 236 + shade], axis=-1)
    photo[..., :3] = patch[..., None] * pale + (1 - patch[..., None]) * photo[..., :3]
    big = Image.fromarray(photo.round().astype(np.uint8)).resize((w * scale, h * scale))
    title = Image.new("L", big.size, 0)
    font = ImageFont.load_default(size=52 * scale)
    draw = ImageDraw.Draw(title)
    draw.text((30 * scale, 40 * scale), "SUMMER SALE", font=font, fill=255, stroke_width=2 * scale)
    big.paste(Image.new("RGBA", big.size, (255, 255, 255, 255)), mask=title)
    return np.asarray(big.reduce(scale)).copy(), np.asarray(title.reduce(scale))


def test_white_letters_on_a_pale_part_of_the_photograph_are_lifted():
    """The letters on the patch join it in one flat area (their rims step a few levels
    at a time), but each letter's fill is one exact white: it is found as a glyph, and
    the patch stays on the photograph."""
    image, title = white_title_on_a_pale_patch()
    layers = run(image, 3)
    assert not layers.notes
    inside = title == 255
    lifted = max(float((px[..., 3][inside] >= 200).mean()) for px in layers[1:])
    assert lifted >= 0.95
    # the patch, as white as the letters' rims, is the photograph's: no thin part of a
    # letter reaches into a flat area that broad
    near = cv2.dilate((title > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
    for px in layers[1:]:
        assert (px[..., 3][near == 0] > 10).mean() < 0.002


def test_an_enlarged_smooth_photograph_under_a_headline_is_a_photograph():
    """Enlarged 3× the cat is so smooth that little of it reads as texture (1.7 % of the
    canvas: flat designs leave under 1 %), yet it has a photograph's grain: with
    elements on it, it is their ground, not flat art whose fur is lifted as shapes."""
    image, _, button, text = poster((1400, 1050))
    layers = run(image, 4)
    assert not layers.notes and layers.roles == ["Background", "Text", "Shape"]
    assert max(float((px[..., 3][button == 255] >= 200).mean()) for px in layers[1:]) >= 0.97
    near = cv2.dilate(((button > 0) | (text > 0)).astype(np.uint8), np.ones((9, 9), np.uint8))
    for px in layers[1:]:  # nothing of the photograph comes with them
        assert (px[..., 3][near == 0] > 10).mean() < 0.002
