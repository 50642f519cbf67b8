"""Draw ``examples/poster.png``: the small flat poster the README decomposes.

    python bench/make_example.py [examples/poster.png]

A cream background, a sun disc with a soft drop shadow, a rounded card, a star
badge on the card, a title and a subtitle: five foreground elements at three depths,
anti-aliased like a renderer's output. Deterministic; the text uses DejaVu Sans Bold
when installed (fonts-dejavu-core), else Pillow's own font.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import SS, Canvas, fonts, star_points

CREAM, SUN, CARD = np.array([246, 238, 220]), np.array([236, 110, 60]), np.array([40, 70, 120])
GOLD, WHITE = np.array([250, 200, 70]), np.array([255, 255, 255])


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    bold = [path for path in fonts() if path.endswith("DejaVuSans-Bold.ttf")]
    if bold:
        return ImageFont.truetype(bold[0], size * SS)
    return ImageFont.load_default(size=size * SS)


def poster() -> list[np.ndarray]:
    """The poster's layers, bottom first."""
    c = Canvas(seed=0, size=(512, 384))

    def disc(d: ImageDraw.ImageDraw, s: float) -> None:
        d.ellipse([300 * s, 40 * s, 460 * s, 200 * s], fill=255)

    def card(d: ImageDraw.ImageDraw, s: float) -> None:
        d.rounded_rectangle([40 * s, 150 * s, 340 * s, 330 * s], radius=18 * s, fill=255)

    def star(d: ImageDraw.ImageDraw, s: float) -> None:
        d.polygon([(x * s, y * s) for x, y in star_points(290, 185, 28)], fill=255)

    def title(d: ImageDraw.ImageDraw, s: float) -> None:
        d.text((64 * s, 200 * s), "SUMMER", font=_font(44), fill=255)

    def subtitle(d: ImageDraw.ImageDraw, s: float) -> None:
        d.text((66 * s, 262 * s), "Open-air concerts · July", font=_font(17), fill=255)

    sun = c.mask(disc)
    shifted = np.zeros_like(sun)
    shifted[8:, 8:] = sun[:-8, :-8]
    soft = Image.fromarray(np.uint8(shifted * 255)).filter(ImageFilter.GaussianBlur(6))
    shadow = np.asarray(soft, np.float32) / 255.0
    return [
        c.full(CREAM),
        c.layer(shadow, np.zeros(3), 0.35),
        c.layer(sun, SUN),
        c.layer(c.mask(card), CARD),
        c.layer(c.mask(star), GOLD),
        c.layer(c.mask(title), WHITE),
        c.layer(c.mask(subtitle), np.array([200, 215, 240])),
    ]


def main() -> None:
    from layerctl.stack import composite

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("examples/poster.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(composite(poster())[..., :3], "RGB").save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
