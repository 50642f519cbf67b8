"""Parts of a design on a photograph that photo.py must not leave on the ground
(issue 13): the label on a button filled with a gradient."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from test_classic_photo_ground import photograph, run

pytest.importorskip("cv2")

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
