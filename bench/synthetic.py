"""Seeded synthetic flat designs with known layers: ground truth for the classic backend.

Each design is a list of full-canvas RGBA layers, bottom first, drawn 4× supersampled
and box-filtered down, so edges are anti-aliased the way renderers draw them. One
element is one layer (a shape, a line of text, an icon, a drop shadow, an overlay),
as in Crello-style design data. Categories:

  shapes     solid background, 2–4 solid shapes (they may overlap)
  gradients  linear/radial gradient background, gradient-filled shapes
  textured   grainy/paper background, solid shapes
  text       a banner and 2–3 lines of anti-aliased text in several fonts
  icons      3–4 pictograms (several parts, one colour, or a two-colour badge)
  overlays   a semi-transparent band or card (30–70 % opacity) over content
  shadows    shapes with their own blurred drop-shadow layer below them
  poster     all of the above mixed

``python bench/synthetic.py OUT --per-category 6`` writes each design as a PNG stack
(``OUT/<category>-<k>/``) plus its flat ``OUT/<category>-<k>.png``.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = (512, 384)  # width, height
SS = 4  # supersampling factor for anti-aliased edges
WORDS = [
    "SUMMER SALE", "Grand Opening", "50% OFF", "Coffee & Co", "Workshop", "Hello World",
    "New Season", "Join us", "Free Delivery", "Open Daily", "Big Ideas", "Fresh Bakery",
    "Live Music", "Book Now", "Since 1998", "Thank you",
]  # fmt: skip
FONT_NAMES = [
    "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "LiberationSans-Regular.ttf",
    "LiberationSerif-Bold.ttf", "LiberationMono-Regular.ttf", "DejaVuSansCondensed-Oblique.ttf",
    "NotoSansMono-Regular.ttf", "LiberationSans-BoldItalic.ttf",
]  # fmt: skip

Layer = np.ndarray  # (H, W, 4) uint8


def fonts() -> list[str]:
    """Paths of the benchmark's fonts found on this machine (empty: Pillow's own font)."""
    found = []
    for name in FONT_NAMES:
        hits = glob.glob(f"/usr/share/fonts/**/{name}", recursive=True)
        if hits:
            found.append(sorted(hits)[0])
    return found


def star_points(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """A five-pointed star's ten vertices, tip up, inner radius 0.45 r."""
    return [
        (cx + r * (1 if k % 2 == 0 else 0.45) * np.sin(k * np.pi / 5),
         cy - r * (1 if k % 2 == 0 else 0.45) * np.cos(k * np.pi / 5))
        for k in range(10)
    ]  # fmt: skip


class Canvas:
    """Draws one design's layers with a seeded generator."""

    def __init__(self, seed: int, size: tuple[int, int] = SIZE) -> None:
        self.rng = np.random.default_rng(seed)
        self.w, self.h = size
        self.fonts = fonts()

    # --- colours -------------------------------------------------------------------
    def colour(self, light: bool | None = None) -> np.ndarray:
        """A saturated or pastel colour; ``light`` picks the brightness band."""
        import colorsys

        hue = self.rng.random()
        sat = self.rng.uniform(0.45, 0.9)
        if light is None:
            light = bool(self.rng.random() < 0.5)
        val = self.rng.uniform(0.85, 0.98) if light else self.rng.uniform(0.3, 0.7)
        if light:
            sat *= 0.4
        return np.array(colorsys.hsv_to_rgb(hue, sat, val)) * 255.0

    def contrasting(self, under: np.ndarray) -> np.ndarray:
        """A colour that stands out against ``under`` (mean RGB)."""
        for _ in range(20):
            c = self.colour(light=float(np.mean(under)) < 128)
            if np.abs(c - under).max() > 80:
                return c
        return 255.0 - under

    # --- fills ---------------------------------------------------------------------
    def gradient(self, a: np.ndarray, b: np.ndarray, radial: bool = False) -> np.ndarray:
        y, x = np.mgrid[0 : self.h, 0 : self.w].astype(np.float32)
        if radial:
            cx, cy = self.rng.uniform(0.2, 0.8) * self.w, self.rng.uniform(0.2, 0.8) * self.h
            t = np.hypot(x - cx, y - cy) / np.hypot(self.w, self.h) * 1.6
        else:
            angle = self.rng.uniform(0, np.pi)
            t = (x * np.cos(angle) + y * np.sin(angle)) / (self.w + self.h) * 1.4 + 0.2
        t = np.clip(t, 0, 1)[..., None]
        return a * (1 - t) + b * t

    def texture(self, base: np.ndarray) -> np.ndarray:
        """Paper: soft blotches plus fine grain around ``base``."""
        import cv2

        blotch = cv2.GaussianBlur(
            self.rng.normal(0, 1, (self.h, self.w)).astype(np.float32), (0, 0), 12
        )
        blotch = blotch / (np.abs(blotch).max() + 1e-6) * 10
        grain = self.rng.normal(0, 4, (self.h, self.w)).astype(np.float32)
        return base + (blotch + grain)[..., None]

    # --- masks ---------------------------------------------------------------------
    def mask(self, draw: Callable[[ImageDraw.ImageDraw, float], None]) -> np.ndarray:
        """Coverage (0..1) of what ``draw(d, scale)`` paints, anti-aliased by box filtering."""
        big = Image.new("L", (self.w * SS, self.h * SS), 0)
        draw(ImageDraw.Draw(big), SS)
        return np.asarray(big.reduce(SS), np.float32) / 255.0

    def box(self, min_frac: float = 0.15, max_frac: float = 0.45) -> tuple[float, ...]:
        bw = self.rng.uniform(min_frac, max_frac) * self.w
        bh = self.rng.uniform(min_frac, max_frac) * self.h
        x0 = self.rng.uniform(0.03 * self.w, self.w * 0.97 - bw)
        y0 = self.rng.uniform(0.03 * self.h, self.h * 0.97 - bh)
        return x0, y0, x0 + bw, y0 + bh

    def shape_mask(self, kind: str | None = None) -> np.ndarray:
        kind = kind or str(self.rng.choice(["rect", "round", "ellipse", "triangle", "star"]))
        x0, y0, x1, y1 = self.box()

        def draw(d: ImageDraw.ImageDraw, s: float) -> None:
            box = [x0 * s, y0 * s, x1 * s, y1 * s]
            if kind == "rect":
                d.rectangle(box, fill=255)
            elif kind == "round":
                d.rounded_rectangle(box, radius=min(x1 - x0, y1 - y0) * s * 0.2, fill=255)
            elif kind == "ellipse":
                d.ellipse(box, fill=255)
            elif kind == "triangle":
                d.polygon(
                    [((x0 + x1) / 2 * s, y0 * s), (x1 * s, y1 * s), (x0 * s, y1 * s)], fill=255
                )
            else:
                cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
                d.polygon([(px * s, py * s) for px, py in star_points(cx, cy, r)], fill=255)

        return self.mask(draw)

    def text_mask(self, text: str | None = None, height: float | None = None) -> np.ndarray:
        text = text or str(self.rng.choice(WORDS))
        px = height or self.rng.uniform(28, 64)
        if self.fonts:
            font = ImageFont.truetype(str(self.rng.choice(self.fonts)), int(px * SS))
        else:
            font = ImageFont.load_default(size=int(px * SS))
        probe = ImageDraw.Draw(Image.new("L", (1, 1)))
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        tw, th = (right - left) / SS, (bottom - top) / SS
        if tw > self.w * 0.92:
            return self.text_mask(text, px * self.w * 0.9 / tw)
        x = self.rng.uniform(0.04 * self.w, self.w * 0.96 - tw)
        y = self.rng.uniform(0.04 * self.h, self.h * 0.96 - th)

        def draw(d: ImageDraw.ImageDraw, s: float) -> None:
            d.text((x * s - left, y * s - top), text, font=font, fill=255)

        return self.mask(draw)

    def icon_mask(self) -> np.ndarray:
        """A pictogram of several parts: house, heart, pin, check badge or sun."""
        kind = str(self.rng.choice(["house", "heart", "pin", "badge", "sun"]))
        r = self.rng.uniform(0.06, 0.11) * self.w
        cx = self.rng.uniform(r * 1.3, self.w - r * 1.3)
        cy = self.rng.uniform(r * 1.3, self.h - r * 1.3)

        def draw(d: ImageDraw.ImageDraw, s: float) -> None:
            def p(x: float, y: float) -> tuple[float, float]:
                return ((cx + x * r) * s, (cy + y * r) * s)

            if kind == "house":
                d.polygon([p(-1, -0.1), p(0, -1), p(1, -0.1)], fill=255)
                d.rectangle([*p(-0.7, -0.1), *p(0.7, 1)], fill=255)
                d.rectangle([*p(-0.2, 0.35), *p(0.2, 1)], fill=0)
            elif kind == "heart":
                d.ellipse([*p(-1, -0.8), *p(0.05, 0.2)], fill=255)
                d.ellipse([*p(-0.05, -0.8), *p(1, 0.2)], fill=255)
                d.polygon([p(-0.93, -0.1), p(0.93, -0.1), p(0, 1)], fill=255)
            elif kind == "pin":
                d.ellipse([*p(-0.7, -1), *p(0.7, 0.4)], fill=255)
                d.polygon([p(-0.6, -0.05), p(0.6, -0.05), p(0, 1)], fill=255)
                d.ellipse([*p(-0.28, -0.58), *p(0.28, -0.02)], fill=0)
            elif kind == "badge":
                d.ellipse([*p(-1, -1), *p(1, 1)], fill=255)
                d.line([p(-0.5, 0), p(-0.12, 0.4), p(0.5, -0.4)], fill=0, width=int(0.22 * r * s))
            else:
                d.ellipse([*p(-0.5, -0.5), *p(0.5, 0.5)], fill=255)
                for k in range(8):
                    a = k * np.pi / 4
                    d.line([p(0.7 * np.cos(a), 0.7 * np.sin(a)), p(np.cos(a), np.sin(a))],
                           fill=255, width=int(0.15 * r * s))  # fmt: skip

        return self.mask(draw)

    # --- layers --------------------------------------------------------------------
    def full(self, rgb: np.ndarray) -> Layer:
        rgb = np.broadcast_to(rgb, (self.h, self.w, 3))
        out = np.empty((self.h, self.w, 4), np.uint8)
        out[..., :3] = np.clip(np.rint(rgb), 0, 255)
        out[..., 3] = 255
        return out

    def layer(self, coverage: np.ndarray, rgb: np.ndarray, opacity: float = 1.0) -> Layer:
        rgb = np.broadcast_to(rgb, (self.h, self.w, 3))
        alpha = np.clip(np.rint(coverage * opacity * 255), 0, 255).astype(np.uint8)
        out = np.zeros((self.h, self.w, 4), np.uint8)
        out[..., :3] = np.where(alpha[..., None] > 0, np.clip(np.rint(rgb), 0, 255), 0)
        out[..., 3] = alpha
        return out

    def background(self, kind: str) -> tuple[Layer, np.ndarray]:
        """(layer, its mean colour)."""
        base = self.colour()
        if kind == "solid":
            rgb = base
        elif kind == "gradient":
            rgb = self.gradient(base, self.colour(), radial=bool(self.rng.random() < 0.4))
        else:
            rgb = self.texture(base)
        layer = self.full(rgb)
        return layer, layer[..., :3].reshape(-1, 3).mean(axis=0)

    def solid_shape(self, under: np.ndarray) -> Layer:
        return self.layer(self.shape_mask(), self.contrasting(under))

    def gradient_shape(self, under: np.ndarray) -> Layer:
        a = self.contrasting(under)
        return self.layer(self.shape_mask(), self.gradient(a, self.contrasting(under)))

    def text(self, under: np.ndarray) -> Layer:
        return self.layer(self.text_mask(), self.contrasting(under))

    def icon(self, under: np.ndarray) -> Layer:
        return self.layer(self.icon_mask(), self.contrasting(under))

    def shadowed(self, under: np.ndarray) -> list[Layer]:
        """A shape and, below it, its drop shadow: black, blurred, offset, 35–60 %."""
        coverage = self.shape_mask()
        dx, dy = (int(v) for v in self.rng.integers(4, 12, size=2))
        shifted = np.zeros_like(coverage)
        shifted[dy:, dx:] = coverage[: self.h - dy, : self.w - dx]
        blur = Image.fromarray(np.uint8(shifted * 255)).filter(
            ImageFilter.GaussianBlur(float(self.rng.uniform(3, 8)))
        )
        soft = np.asarray(blur, np.float32) / 255.0
        shadow = self.layer(soft, np.zeros(3), float(self.rng.uniform(0.35, 0.6)))
        return [shadow, self.layer(coverage, self.contrasting(under))]

    def overlay(self) -> Layer:
        """A white, black or coloured band/card at 30–70 % opacity."""
        tone = self.rng.choice(3)
        rgb = [np.full(3, 255.0), np.zeros(3), self.colour()][tone]
        x0, y0, x1, y1 = self.box(0.4, 0.9)

        def draw(d: ImageDraw.ImageDraw, s: float) -> None:
            d.rounded_rectangle([x0 * s, y0 * s, x1 * s, y1 * s], radius=12 * s, fill=255)

        return self.layer(self.mask(draw), rgb, float(self.rng.uniform(0.3, 0.7)))


def design(category: str, seed: int, size: tuple[int, int] = SIZE) -> list[Layer]:
    """The ground-truth layers (bottom first) of design ``seed`` of ``category``."""
    c = Canvas(seed * 1000 + CATEGORIES.index(category), size)
    pick = c.rng.integers
    if category == "shapes":
        bg, under = c.background("solid")
        return [bg, *(c.solid_shape(under) for _ in range(pick(2, 5)))]
    if category == "gradients":
        bg, under = c.background("gradient")
        return [bg, *(c.gradient_shape(under) for _ in range(pick(2, 4)))]
    if category == "textured":
        bg, under = c.background("texture")
        return [bg, *(c.solid_shape(under) for _ in range(pick(2, 4)))]
    if category == "text":
        bg, under = c.background(str(c.rng.choice(["solid", "gradient"])))
        return [bg, c.solid_shape(under), *(c.text(under) for _ in range(pick(2, 4)))]
    if category == "icons":
        bg, under = c.background("solid")
        return [bg, *(c.icon(under) for _ in range(pick(3, 5)))]
    if category == "overlays":
        bg, under = c.background(str(c.rng.choice(["gradient", "texture"])))
        return [bg, c.solid_shape(under), c.overlay(), c.text(under)]
    if category == "shadows":
        bg, under = c.background("solid")
        return [bg, *c.shadowed(under), *c.shadowed(under)]
    if category == "poster":
        bg, under = c.background(str(c.rng.choice(["solid", "gradient", "texture"])))
        return [bg, *c.shadowed(under), c.icon(under), c.overlay(), c.text(under)]
    raise ValueError(f"unknown category {category!r}")


CATEGORIES = ("shapes", "gradients", "textured", "text", "icons", "overlays", "shadows", "poster")


def write_set(out: Path, per_category: int, first_seed: int = 0) -> list[Path]:
    """Write every design as a PNG stack plus its flat PNG; returns the stack folders."""
    from layerctl import formats
    from layerctl.stack import Layer as StackLayer
    from layerctl.stack import LayerStack, composite

    written = []
    for category in CATEGORIES:
        for k in range(per_category):
            layers = design(category, first_seed + k)
            name = f"{category}-{k}"
            stack = LayerStack(
                [
                    StackLayer("Background" if i == 0 else f"Element {i}", px)
                    for i, px in enumerate(layers)
                ],
                metadata={"category": category, "seed": first_seed + k},
            )
            formats.write(stack, out / name, force=True)
            Image.fromarray(composite(layers), "RGBA").save(out / f"{name}.png")
            written.append(out / name)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-category", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    paths = write_set(args.out, args.per_category, args.seed)
    print(f"wrote {len(paths)} designs to {args.out} (fonts: {len(fonts())} found)")


if __name__ == "__main__":
    main()
