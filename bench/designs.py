"""Layered designs drawn the way people make them, to test a decomposer on unseen work.

    python bench/designs.py --sheet out.png [--per-family 2] [--max-megapixels 1] [--seed 0]

An independent generator: it was written from what posters, social cards, slides, UI
mockups and flyers look like, without reading any backend or the older
``bench/synthetic.py``, so a score on it says how a backend does on work nobody tuned it
on. ``sample(family, seed)`` gives one design: its ground-truth layers as a designer's
file holds them (one element per layer, bottom first, the background first), the role of
each layer, and the image a backend sees (their composite, or its JPEG for ``jpeg``).
Edges are anti-aliased by drawing at 2-4x and averaging coverage, so rims are soft as in
real renders; text uses FreeType's own anti-aliasing.

Families (every one at 0.3-4 MP, portrait, square and landscape):
  text_on_shapes          posters, banners, card rows, badges: titles partly on a shape
  shape_overlaps          2-5 stacked shapes (discs, rounded rects, stars, blobs, polygons)
  strokes                 rings, outlined shapes, borders, rules, arrows, hollow lettering
  translucent_on_texture  30-80 % panels, glows, scrims, soft shadows on paper, canvas,
                          grain, noise, halftone dots or a scanned texture
  photo_ground            a photograph under scrims or tints, a headline, a button, a logo
  photo_frames            photo grids, polaroids, a hero photo, a profile card and avatar
  ui_screens              app and web screens: bars, list cards, avatars, fields, buttons
  slides                  slides and report pages: title, bullets, chart or photo, page no.
  jpeg                    any of the above, JPEG-compressed at quality 70-92
"""

from __future__ import annotations

import argparse
import colorsys
import functools
import io
import itertools
import math
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FAMILIES: tuple[str, ...] = (
    "text_on_shapes",
    "shape_overlaps",
    "strokes",
    "translucent_on_texture",
    "photo_ground",
    "photo_frames",
    "ui_screens",
    "slides",
    "jpeg",
)
ROLES = ("Background", "Text", "Shape", "Shadow", "Overlay", "Photo", "Stroke")
MIN_MEGAPIXELS, MAX_MEGAPIXELS = 0.3, 4.0
# Portrait, square and landscape formats of real outputs: stories, feed posts, A-series
# flyers, slides, banners, phone screens.
ASPECTS = (9 / 16, 4 / 5, 2 / 3, 210 / 297, 1.0, 4 / 3, 297 / 210, 3 / 2, 16 / 9, 1.91, 9 / 19.5)

RGB = tuple[float, float, float]
Points = list[tuple[float, float]]


@dataclass
class Sample:
    """One design: the backend's input, its true layers (bottom first) and their roles."""

    image: np.ndarray  # (H, W, 4) uint8, what the backend sees
    layers: list[np.ndarray]  # full-canvas straight-alpha RGBA uint8, background first
    names: list[str]  # one of ROLES per layer
    source: str  # how it was made, in a few words


@dataclass
class _Patch:
    """An element before placement: straight colour and coverage on its own box."""

    x: int
    y: int
    rgb: np.ndarray  # (h, w, 3) float 0..255, or broadcastable (3,)
    alpha: np.ndarray  # (h, w) float 0..1


# --- colour ----------------------------------------------------------------------------

# Palettes in the spirit of what designers pick from palette sites: one dark, one light,
# a few accents.
_PALETTES = (
    "264653 2a9d8f e9c46a f4a261 e76f51",
    "003049 d62828 f77f00 fcbf49 eae2b7",
    "0b132b 1c2541 3a506b 5bc0be 6fffe9",
    "ffbe0b fb5607 ff006e 8338ec 3a86ff",
    "2b2d42 8d99ae edf2f4 ef233c d90429",
    "606c38 283618 fefae0 dda15e bc6c25",
    "cdb4db ffc8dd ffafcc bde0fe a2d2ff",
    "14213d fca311 e5e5e5 000000 ffffff",
    "22223b 4a4e69 9a8c98 c9ada7 f2e9e4",
    "f72585 7209b7 3a0ca3 4361ee 4cc9f0",
    "355070 6d597a b56576 e56b6f eaac8b",
    "011627 fdfffc 2ec4b6 e71d36 ff9f1c",
    "10002b 240046 5a189a 9d4edd e0aaff",
    "1b4332 2d6a4f 52b788 95d5b2 d8f3dc",
    "780000 c1121f fdf0d5 003049 669bbc",
    "f4f1de e07a5f 3d405b 81b29a f2cc8f",
)


def _hex(code: str) -> RGB:
    return tuple(float(int(code[i : i + 2], 16)) for i in (0, 2, 4))


def _hls(h: float, lightness: float, s: float) -> RGB:
    return tuple(255.0 * c for c in colorsys.hls_to_rgb(h % 1.0, lightness, s))


def _palette(rng: np.random.Generator) -> list[RGB]:
    """Five colours: a curated palette, or one built from a hue scheme."""
    if rng.random() < 0.6:
        colours = [_hex(c) for c in _PALETTES[rng.integers(len(_PALETTES))].split()]
    else:
        base = rng.random()
        offsets = [
            (0, 0.08, -0.08, 0.16, 0.04),  # analogous
            (0, 0.5, 0.04, 0.54, 0.0),  # complementary
            (0, 1 / 3, 2 / 3, 0.0, 1 / 3),  # triadic
            (0, 0, 0, 0, 0.0),  # monochrome
        ][rng.integers(4)]
        lights = rng.permutation([0.18, 0.35, 0.5, 0.68, 0.88])
        colours = [
            _hls(base + o, float(li), float(rng.uniform(0.35, 0.95)))
            for o, li in zip(offsets, lights, strict=True)
        ]
    return [colours[i] for i in rng.permutation(len(colours))]


def _luma(c: RGB) -> float:
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]


def _distance(a: RGB, b: RGB) -> float:
    return math.dist(a, b)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(x + (y - x) * t for x, y in zip(a, b, strict=True))


WHITE: RGB = (255.0, 255.0, 255.0)
INK: RGB = (24.0, 24.0, 28.0)


# --- text ------------------------------------------------------------------------------

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONTS_BOLD = (
    "DejaVuSans-Bold",
    "DejaVuSansCondensed-Bold",
    "DejaVuSerif-Bold",
    "DejaVuSerifCondensed-Bold",
    "DejaVuSans-BoldOblique",
    "DejaVuSansMono-Bold",
    "DejaVuSerif-BoldItalic",
)
_FONTS_TEXT = (
    "DejaVuSans",
    "DejaVuSansCondensed",
    "DejaVuSerif",
    "DejaVuSans-ExtraLight",
    "DejaVuSerif-Italic",
    "DejaVuSans-Oblique",
    "DejaVuSansMono",
)

_TITLES = (
    "SUMMER FEST",
    "Grand Opening",
    "BLACK FRIDAY",
    "New Collection",
    "Live Music",
    "Open House",
    "MEGA SALE",
    "Coffee & Co.",
    "Design Week",
    "Save the Date",
    "Hello Spring",
    "Workshop",
    "TECH SUMMIT",
    "Fresh Deals",
    "Weekend Market",
    "Yoga in the Park",
    "Book Club",
    "JAZZ NIGHT",
    "Welcome!",
    "Q3 Results",
    "Product Roadmap",
    "Get Started",
    "Limited Edition",
    "Free Shipping",
    "Happy Birthday",
    "Creative Studio",
    "Farmers Market",
    "Join Our Team",
    "WINTER SALE",
    "Night Run 10K",
    "Art Fair",
    "Street Food",
    "Big Ideas",
    "Thank You",
    "Meet the Team",
    "Launch Day",
    "Pizza Party",
    "GAME ON",
    "Sunday Brunch",
    "Travel More",
    "Kids Camp",
    "Vinyl Swap",
    "Autumn Menu",
    "Photo Walk",
    "Hackathon",
)
_SUBTITLES = (
    "Sat 14 June · 7 PM",
    "Up to 50% off everything",
    "Doors open at 8",
    "Tickets from $25",
    "Free entry for members",
    "Hand-made with love",
    "Only this weekend",
    "Central Park, NYC",
    "Limited seats available",
    "Your best year yet",
    "Since 1998",
    "Everything must go",
    "Register before May 3",
    "Fresh from the oven",
    "Now booking for autumn",
    "A night of music and friends",
    "Revenue up 24% year over year",
    "Three simple steps",
)
_CTA = (
    "Shop now",
    "Learn more",
    "Sign up",
    "Book now",
    "Download",
    "Continue",
    "RSVP",
    "Read more",
    "Get tickets",
    "Order online",
    "Apply today",
    "Try it free",
)
_SMALL = (
    "www.example.com",
    "@studio.lane",
    "hello@brand.co",
    "+1 555 0134",
    "#weekendvibes",
    "Menu",
    "Contact",
    "Open daily 9-5",
    "Est. 2011",
    "Free parking",
)
_LABELS = (
    "Painting",
    "Workshops",
    "Live demos",
    "Food trucks",
    "Day 1",
    "Day 2",
    "Basic",
    "Pro",
    "Team",
    "$9 / month",
    "Step 1",
    "Step 2",
    "Step 3",
    "Free Wi-Fi",
    "Vegan",
    "Kids",
)
_CAPTIONS = (
    "Lisbon, 2019",
    "Summer '22",
    "Grandma's garden",
    "Day one",
    "Road trip",
    "Us ♥",
    "Best day ever",
    "Kyoto, spring",
)
_BODY = (
    "Join us for an evening of food, music and good company. Bring a friend.",
    "Our new range is made from recycled materials and ships in plastic-free packaging.",
    "Doors open at 6 pm. Tickets include one drink and entry to the after-party.",
    "Collect points with every order and swap them for free coffee all year.",
    "We design tools that help small teams ship faster and sleep better.",
    "Fresh seasonal produce from local growers, every Saturday morning.",
)


@functools.cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A DejaVu face where installed, else Pillow's bundled scalable font."""
    try:
        return ImageFont.truetype(str(_FONT_DIR / f"{name}.ttf"), size)
    except OSError:
        return ImageFont.load_default(size)


_MEASURE = ImageDraw.Draw(Image.new("L", (1, 1)))


def _text_box(text: str, font, stroke: int = 0, spacing: float = 0.2) -> tuple[int, ...]:
    gap = int(font.size * spacing) if hasattr(font, "size") else 4
    return _MEASURE.multiline_textbbox((0, 0), text, font, spacing=gap, stroke_width=stroke)


def _fit_font(name: str, text: str, width: float, height: float, cap: float = 1e9) -> int:
    """Largest size (px) at which ``text`` fits ``width`` x ``height``."""
    box = _text_box(text, _font(name, 100))
    w, h = max(1, box[2] - box[0]), max(1, box[3] - box[1])
    return max(8, int(min(100 * width / w, 100 * height / h, cap)))


def _wrap(text: str, chars: int) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > chars:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])


# --- geometry --------------------------------------------------------------------------


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0) -> Points:
    n = max(48, int(2 * math.pi * max(rx, ry) / 2))
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return _rotate(list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t), strict=True)), cx, cy, angle)


def _rrect(cx: float, cy: float, w: float, h: float, r: float, angle: float = 0.0) -> Points:
    """Rounded rectangle as a polygon, so it can rotate like everything else."""
    r = max(0.0, min(r, w / 2, h / 2))
    pts: Points = []
    n = max(2, int(r / 2))
    for qx, qy, start in ((1, 1, 0.0), (-1, 1, 0.5), (-1, -1, 1.0), (1, -1, 1.5)):
        ox, oy = cx + qx * (w / 2 - r), cy + qy * (h / 2 - r)
        for k in range(n + 1):
            t = math.pi * (start + 0.5 * k / n)
            pts.append((ox + r * math.cos(t), oy + r * math.sin(t)))
    return _rotate(pts, cx, cy, angle)


def _star(cx: float, cy: float, r: float, points: int, inner: float, angle: float) -> Points:
    pts = []
    for k in range(2 * points):
        rad = r if k % 2 == 0 else r * inner
        t = angle + math.pi * k / points - math.pi / 2
        pts.append((cx + rad * math.cos(t), cy + rad * math.sin(t)))
    return pts


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> Points:
    t = np.linspace(0, 2 * math.pi, 240, endpoint=False)
    rad = np.ones_like(t)
    for k in (2, 3, 4):
        rad += rng.uniform(0.03, 0.14) * np.sin(k * t + rng.uniform(0, 2 * math.pi))
    rad *= r / rad.max()
    return list(zip(cx + rad * np.cos(t), cy + rad * np.sin(t), strict=True))


def _rotate(pts: Points, cx: float, cy: float, degrees: float) -> Points:
    if not degrees:
        return pts
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in pts]


def _bounds(pts: Points, pad: float = 0.0) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad


# --- rasterising -----------------------------------------------------------------------


def _supersample(area: float) -> int:
    """Coverage samples per pixel side: 4 for small elements, fewer where memory counts."""
    return 4 if area <= 4e5 else 3 if area <= 1.2e6 else 2


class _Raster:
    """Coverage masks on one integer box, drawn at ``ss``x and box-averaged down."""

    def __init__(self, box: tuple[float, float, float, float], clip: tuple[int, int]):
        self.x0 = max(math.floor(box[0]) - 1, -4)
        self.y0 = max(math.floor(box[1]) - 1, -4)
        x1 = min(math.ceil(box[2]) + 1, clip[0] + 4)
        y1 = min(math.ceil(box[3]) + 1, clip[1] + 4)
        self.w, self.h = max(1, x1 - self.x0), max(1, y1 - self.y0)
        self.ss = _supersample(self.w * self.h)

    def local(self, pts: Points) -> Points:
        return [((x - self.x0) * self.ss, (y - self.y0) * self.ss) for x, y in pts]

    def mask(self, paint: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
        img = Image.new("L", (self.w * self.ss, self.h * self.ss), 0)
        paint(ImageDraw.Draw(img))
        return np.asarray(img.reduce(self.ss), np.float32) / 255.0

    def fill(self, pts: Points) -> np.ndarray:
        return self.mask(lambda d: d.polygon(self.local(pts), fill=255))

    def stroke(self, pts: Points, width: float, closed: bool = True) -> np.ndarray:
        """A stroke centred on the path, with round joins and caps."""
        local = self.local(pts + pts[:2] if closed else pts)
        w = max(1, round(width * self.ss))

        def paint(d: ImageDraw.ImageDraw) -> None:
            d.line(local, fill=255, width=w, joint="curve")
            if not closed:
                for x, y in (local[0], local[-1]):
                    d.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=255)

        return self.mask(paint)

    def patch(self, parts: Sequence[tuple[np.ndarray, RGB | np.ndarray]]) -> _Patch:
        return _paint(self.x0, self.y0, parts)


def _paint(x: int, y: int, parts: Sequence[tuple[np.ndarray, RGB | np.ndarray]]) -> _Patch:
    """Parts of one element (coverage, colour) laid over each other into one patch."""
    h, w = parts[0][0].shape
    pre = np.zeros((h, w, 3), np.float32)
    acc = np.zeros((h, w), np.float32)
    for alpha, colour in parts:
        rgb = np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3))
        pre = rgb * alpha[..., None] + pre * (1.0 - alpha[..., None])
        acc = alpha + acc * (1.0 - alpha)
    rgb = np.divide(pre, acc[..., None], out=np.zeros_like(pre), where=acc[..., None] > 0)
    return _Patch(x, y, rgb, acc)


def _linear(w: int, h: int, stops: Sequence[RGB], degrees: float) -> np.ndarray:
    """(h, w, 3) linear gradient through evenly spaced ``stops`` along ``degrees``."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    xs = np.linspace(-0.5, 0.5, w, dtype=np.float32)[None, :]
    ys = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None]
    t = xs * c * (w / max(w, h)) + ys * s * (h / max(w, h))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return _ramp(t, stops)


def _radial(w: int, h: int, stops: Sequence[RGB], cx: float, cy: float) -> np.ndarray:
    xs = (np.arange(w, dtype=np.float32)[None, :] - cx * w) / max(w, h)
    ys = (np.arange(h, dtype=np.float32)[:, None] - cy * h) / max(w, h)
    t = np.sqrt(xs * xs + ys * ys)
    return _ramp(np.clip(t / max(float(t.max()), 1e-6), 0, 1), stops)


def _ramp(t: np.ndarray, stops: Sequence[RGB]) -> np.ndarray:
    pos = np.linspace(0, 1, len(stops))
    cols = np.asarray(stops, np.float32)
    return np.stack([np.interp(t, pos, cols[:, k]).astype(np.float32) for k in range(3)], -1)


def _blur(values: np.ndarray, sigma: float, outside_zero: bool = True) -> np.ndarray:
    """Gaussian blur; coverage is zero beyond its box, a texture continues (mirrored)."""
    import cv2

    if sigma < 0.3:
        return values
    border = cv2.BORDER_CONSTANT if outside_zero else cv2.BORDER_REFLECT
    return cv2.GaussianBlur(values, (0, 0), sigma, borderType=border)


def _noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    """Smooth noise of unit spread, with about ``cells`` blotches along the long side.

    Blurred white noise on a coarse grid, then enlarged: round blotches, unlike value
    noise, whose grid shows as squares.
    """
    gw = max(2, round(4 * cells * w / max(w, h)))
    gh = max(2, round(4 * cells * h / max(w, h)))
    grid = _blur(rng.standard_normal((gh, gw), dtype=np.float32), 2.0, outside_zero=False)
    grid /= max(float(grid.std()), 1e-6)
    return np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC))


# --- photographs -----------------------------------------------------------------------

_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "motorcycle",
    "camera",
)


@functools.cache
def _photo_source(name: str) -> np.ndarray:
    """A photograph that ships inside scikit-image's wheel (no download)."""
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    return np.ascontiguousarray(np.dstack([img] * 3) if img.ndim == 2 else img[..., :3])


def _photo(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """(h, w, 3) float: a random crop of a sample photo at the box's aspect, resized."""
    src = _photo_source(_PHOTOS[rng.integers(len(_PHOTOS))])
    sh, sw = src.shape[:2]
    zoom = rng.uniform(0.65, 1.0)
    cw = min(sw, sh * w / h) * zoom
    ch = cw * h / w
    x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
    img = Image.fromarray(src).resize(
        (w, h), Image.Resampling.BICUBIC, box=(x0, y0, x0 + cw, y0 + ch)
    )
    rgb = np.asarray(img, np.float32).clip(0, 255)
    return rgb[:, ::-1] if rng.random() < 0.5 else rgb


# --- the design under construction ------------------------------------------------------


class _Design:
    """A canvas, its palette and its layers; element helpers add one layer each."""

    def __init__(self, rng: np.random.Generator, w: int, h: int):
        self.rng, self.w, self.h = rng, w, h
        self.u = min(w, h) / 100.0  # one design unit: 1 % of the short side
        self.palette = _palette(rng)
        self.ground: RGB = WHITE
        self.layers: list[np.ndarray] = []
        self.names: list[str] = []
        self.notes: list[str] = []
        self.gradients = 0.25  # share of fills that are gradients
        self.shadow_opacity = (0.25, 0.6)  # print and social; UI shadows are fainter

    # randomness shorthands
    def uni(self, a: float, b: float) -> float:
        return float(self.rng.uniform(a, b))

    def pick(self, items: Sequence):
        return items[int(self.rng.integers(len(items)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    # colours
    def accent(self, avoid: Sequence[RGB] = (), min_distance: float = 70.0) -> RGB:
        """A palette colour that stands apart from ``avoid`` (and the ground)."""
        avoid = [self.ground, *avoid]
        options = [c for c in self.palette if min(_distance(c, a) for a in avoid) >= min_distance]
        if options:
            return self.pick(options)
        return max(self.palette, key=lambda c: min(_distance(c, a) for a in avoid))

    def ink_on(self, *grounds: RGB) -> RGB:
        """The palette colour, white or ink that reads best on every one of ``grounds``."""
        options = [*self.palette, WHITE, INK]
        return max(options, key=lambda c: min(abs(_luma(c) - _luma(g)) for g in grounds))

    # layers
    def add(self, role: str, patch: _Patch) -> None:
        """Place ``patch`` on a transparent full canvas, rounding once to uint8."""
        layer = np.zeros((self.h, self.w, 4), np.uint8)
        ph, pw = patch.alpha.shape
        x0, y0 = max(patch.x, 0), max(patch.y, 0)
        x1, y1 = min(patch.x + pw, self.w), min(patch.y + ph, self.h)
        if x1 <= x0 or y1 <= y0:
            return
        src = (slice(y0 - patch.y, y1 - patch.y), slice(x0 - patch.x, x1 - patch.x))
        alpha = np.rint(patch.alpha[src] * 255.0).clip(0, 255).astype(np.uint8)
        if not alpha.any():
            return
        rgb = np.broadcast_to(np.asarray(patch.rgb, np.float32), (ph, pw, 3))[src]
        layer[y0:y1, x0:x1, :3] = np.rint(rgb).clip(0, 255) * (alpha[..., None] > 0)
        layer[y0:y1, x0:x1, 3] = alpha
        self.layers.append(layer)
        self.names.append(role)

    def background(self, rgb: np.ndarray, note: str) -> None:
        self.add("Background", _Patch(0, 0, rgb, np.ones((self.h, self.w), np.float32)))
        self.ground = tuple(float(v) for v in np.asarray(rgb, np.float32).reshape(-1, 3).mean(0))
        self.notes.append(note)

    def plain_ground(self) -> None:
        """Flat colour or a gentle gradient, light more often than dark."""
        roll = self.rng.random()
        if roll < 0.35:
            base = _hls(self.uni(0, 1), self.uni(0.9, 0.97), self.uni(0.0, 0.5))
        elif roll < 0.55:
            base = _hls(self.uni(0, 1), self.uni(0.06, 0.18), self.uni(0.1, 0.6))
        else:
            base = self.pick(self.palette)
            self.palette.remove(base)
        if self.chance(0.4):
            other = _mix(base, self.pick([WHITE, INK, *self.palette]), self.uni(0.15, 0.45))
            if self.chance(0.7):
                rgb = _linear(self.w, self.h, [base, other], self.uni(0, 360))
            else:
                rgb = _radial(self.w, self.h, [other, base], self.uni(0.2, 0.8), self.uni(0.2, 0.8))
            self.background(rgb, "gradient ground")
        else:
            self.background(np.asarray(base, np.float32), "flat ground")

    def textured_ground(self) -> None:
        """Paper, canvas weave, grainy gradient, value noise, halftone dots or a scan."""
        w, h, u = self.w, self.h, self.u
        base = (
            self.pick(self.palette)
            if self.chance(0.5)
            else _hls(self.uni(0, 1), self.uni(0.75, 0.93), self.uni(0.1, 0.4))
        )
        kind = self.pick(("paper", "canvas", "grain", "noise", "dots", "scan"))
        rgb = np.empty((h, w, 3), np.float32)
        rgb[:] = base
        if kind == "grain":
            other = _mix(base, self.pick(self.palette), self.uni(0.3, 0.8))
            rgb = _linear(w, h, [base, other], self.uni(0, 360))
        shade = np.zeros((h, w), np.float32)
        if kind in ("paper", "noise"):
            fine = self.uni(1.5, 4) if kind == "paper" else self.uni(4, 10)
            shade = _noise(self.rng, w, h, 3) * self.uni(3, 7) + _noise(self.rng, w, h, 40) * fine
        elif kind == "canvas":
            period = max(3.0, u * self.uni(0.6, 1.2))
            xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)[:, None]
            shade = 5 * np.sin(2 * np.pi * xs / period) + 5 * np.sin(2 * np.pi * ys / period)
            shade = shade + _noise(self.rng, w, h, 6) * 4
        elif kind == "dots":
            step = u * self.uni(2.5, 5)
            xs, ys = np.arange(w, dtype=np.float32) % step, np.arange(h, dtype=np.float32) % step
            dist = np.hypot(xs[None, :] - step / 2, ys[:, None] - step / 2)
            dot = np.clip(step * self.uni(0.12, 0.22) - dist + 0.5, 0, 1)
            shade = -dot * self.uni(12, 30) * (1 if _luma(base) > 90 else -1)
        elif kind == "scan":
            src = self.pick(("brick", "grass", "gravel"))
            tex = np.asarray(Image.fromarray(_photo_source(src)[..., 0]).resize((w, h)), np.float32)
            shade = (tex - tex.mean()) * self.uni(0.15, 0.35)
        grain = self.rng.standard_normal((h, w), dtype=np.float32) * self.uni(2, 7)
        rgb += (shade + grain)[..., None]
        self.background(rgb.clip(0, 255), f"{kind} texture ground")

    def photo_ground(self) -> None:
        self.background(_photo(self.rng, self.w, self.h), "photo ground")

    # elements
    def shape_points(self, kind: str, cx: float, cy: float, size: float) -> Points:
        """Outline of a shape named ``kind`` about ``size`` px across, centred on (cx, cy)."""
        r, angle = size / 2, self.uni(-25, 25) if self.chance(0.4) else 0.0
        if kind == "circle":
            return _ellipse(cx, cy, r, r)
        if kind == "ellipse":
            return _ellipse(cx, cy, r, r * self.uni(0.5, 0.8), angle)
        if kind == "rrect":
            aspect = self.uni(0.45, 1.6)
            return _rrect(cx, cy, size, size * aspect, size * self.uni(0.04, 0.2), angle)
        if kind == "pill":
            return _rrect(cx, cy, size, size * self.uni(0.22, 0.4), size, angle)
        if kind == "rect":
            return _rrect(cx, cy, size, size * self.uni(0.5, 1.4), 0, angle)
        if kind == "star":
            inner = self.uni(0.45, 0.65)
            return _star(cx, cy, r, int(self.rng.integers(5, 9)), inner, math.radians(angle))
        if kind == "blob":
            return _blob(self.rng, cx, cy, r)
        sides = {"triangle": 3, "diamond": 4, "pentagon": 5, "hexagon": 6}[kind]
        return _star(cx, cy, r, sides, 1.0, math.radians(angle))

    def fill_of(self, box: _Raster, colour: RGB) -> RGB | np.ndarray:
        """Flat colour mostly; sometimes a two-stop gradient as on buttons and badges."""
        if self.chance(self.gradients):
            other = _mix(colour, self.pick([WHITE, INK, *self.palette]), self.uni(0.2, 0.5))
            return _linear(box.w, box.h, [colour, other], self.uni(0, 360))
        return colour

    def shape(
        self,
        pts: Points,
        colour: RGB,
        *,
        stroke: tuple[RGB, float] | None = None,
        role: str = "Shape",
        opacity: float = 1.0,
        shadow: bool = False,
    ) -> _Patch:
        """A filled (optionally outlined) shape layer, with its drop shadow below it."""
        pad = stroke[1] / 2 + 1 if stroke else 1
        box = _Raster(_bounds(pts, pad), (self.w, self.h))
        parts = [(box.fill(pts), self.fill_of(box, colour))]
        if stroke:
            parts.append((box.stroke(pts, stroke[1]), stroke[0]))
        patch = box.patch(parts)
        patch.alpha *= opacity
        if shadow:
            self.shadow(patch)
        self.add(role, patch)
        return patch

    def pieces(self, polys: Sequence[Points], colours: Sequence[RGB]) -> None:
        """Pieces that make one element (a dot grid, a confetti burst), in one layer."""
        box = _Raster(_bounds([p for poly in polys for p in poly], 1), (self.w, self.h))
        parts = []
        for k, colour in enumerate(colours):
            group = [box.local(poly) for poly in polys[k :: len(colours)]]
            parts.append((box.mask(lambda d, g=group: [d.polygon(p, fill=255) for p in g]), colour))
        self.add("Shape", box.patch(parts))

    def decorate(self, count: int) -> None:
        """Small accents near the edges: dot grids, confetti, rings, discs, squiggles."""
        u = self.u
        for _ in range(count):
            kind = self.pick(("dots", "confetti", "ring", "disc", "squiggle", "plus"))
            cx = self.w * self.pick((self.uni(0.04, 0.22), self.uni(0.78, 0.96)))
            cy = self.h * self.pick((self.uni(0.04, 0.22), self.uni(0.78, 0.96)))
            colour, r = self.accent(), u * self.uni(2.5, 7)
            if kind == "dots":
                cols, rows = self.rng.integers(3, 7, 2)
                step, dot = u * self.uni(2, 3.5), u * self.uni(0.3, 0.7)
                self.pieces(
                    [
                        _ellipse(cx + (i - cols / 2) * step, cy + (j - rows / 2) * step, dot, dot)
                        for i in range(cols)
                        for j in range(rows)
                    ],
                    [colour],
                )
            elif kind == "confetti":
                bits = []
                for _ in range(int(self.rng.integers(8, 20))):
                    side = u * self.uni(1.5, 3.5)
                    bits.append(
                        _rrect(
                            cx + self.uni(-10, 10) * u,
                            cy + self.uni(-10, 10) * u,
                            side,
                            side * self.uni(0.3, 1),
                            side * self.uni(0, 0.5),
                            self.uni(0, 180),
                        )
                    )
                self.pieces(bits, [self.accent() for _ in range(3)])
            elif kind == "ring":
                self.outline(_ellipse(cx, cy, r, r), colour, u * self.uni(0.5, 1.5))
            elif kind == "disc":
                self.shape(_ellipse(cx, cy, r, r), colour)
            elif kind == "squiggle":
                xs = np.linspace(-1, 1, 80)
                waves, amp = self.uni(1.5, 4), u * self.uni(1, 2.5)
                pts = [(cx + x * r * 2, cy + math.sin(x * math.pi * waves) * amp) for x in xs]
                self.outline(pts, colour, u * self.uni(0.5, 1.2), closed=False)
            else:
                arm = r * 0.3
                plus = [
                    (-arm, -r),
                    (arm, -r),
                    (arm, -arm),
                    (r, -arm),
                    (r, arm),
                    (arm, arm),
                    (arm, r),
                    (-arm, r),
                    (-arm, arm),
                    (-r, arm),
                    (-r, -arm),
                    (-arm, -arm),
                ]
                self.shape(_rotate([(cx + x, cy + y) for x, y in plus], cx, cy, 45), colour)

    def outline(self, pts: Points, colour: RGB, width: float, closed: bool = True) -> _Patch:
        """A free stroke: ring, border, rule, underline, zig-zag."""
        box = _Raster(_bounds(pts, width / 2 + 1), (self.w, self.h))
        patch = box.patch([(box.stroke(pts, width, closed), colour)])
        self.add("Stroke", patch)
        return patch

    def shadow(self, caster: _Patch, soft: float | None = None, opacity: float | None = None):
        """A drop shadow layer: the caster's coverage, offset, blurred, tinted dark."""
        u = self.u
        sigma = u * (soft if soft is not None else self.uni(0.4, 2.5))
        grow = int(3 * sigma) + 2
        angle = math.radians(self.uni(45, 135))
        dist = u * self.uni(0.3, 2.0)
        alpha = _blur(np.pad(caster.alpha, grow), sigma)
        tint = _mix(INK, self.ground, self.uni(0.0, 0.3))
        op = opacity if opacity is not None else self.uni(*self.shadow_opacity)
        self.add(
            "Shadow",
            _Patch(
                caster.x - grow + round(dist * math.cos(angle)),
                caster.y - grow + round(dist * math.sin(angle)),
                np.asarray(tint, np.float32),
                alpha * op,
            ),
        )

    def text(
        self,
        text: str,
        font: str,
        size: int,
        at: tuple[float, float],
        colour: RGB,
        *,
        anchor: str = "lt",
        align: str = "left",
        stroke: tuple[RGB | None, int] | None = None,
        angle: float = 0.0,
        shadow: bool = False,
    ) -> _Patch:
        """One text block as one layer. ``stroke`` = (colour or None for hollow, width)."""
        face = _font(font, size)
        sw = stroke[1] if stroke else 0
        x0, y0, x1, y1 = _text_box(text, face, sw)
        w, h = x1 - x0 + 2, y1 - y0 + 2
        gap = int(size * 0.2)

        def render(width: int) -> np.ndarray:
            img = Image.new("L", (w, h), 0)
            ImageDraw.Draw(img).multiline_text(
                (1 - x0, 1 - y0), text, 255, face, spacing=gap, align=align, stroke_width=width
            )
            if angle:
                img = img.rotate(angle, Image.Resampling.BICUBIC, expand=True)
            return np.asarray(img, np.float32) / 255.0

        fill = render(0)
        if stroke is None:
            parts = [(fill, colour)]
        elif stroke[0] is None:  # hollow letters: the ring only
            parts = [(np.clip(render(sw) - fill, 0, 1), colour)]
        else:
            parts = [(render(sw), stroke[0]), (fill, colour)]
        th, tw = fill.shape
        fx = {"l": 0.0, "m": 0.5, "r": 1.0}[anchor[0]]
        fy = {"t": 0.0, "m": 0.5, "b": 1.0}[anchor[1]]
        patch = _paint(round(at[0] - fx * tw), round(at[1] - fy * th), parts)
        if shadow:
            self.shadow(patch, soft=self.uni(0.2, 1.2), opacity=self.uni(0.35, 0.7))
        self.add("Text", patch)
        return patch

    def fitted_text(
        self, text: str, font: str, box: tuple[float, float, float, float], colour: RGB, **kw
    ) -> _Patch:
        """``text`` sized to fill ``box`` (x0, y0, x1, y1), anchored by ``kw['anchor']``."""
        size = _fit_font(font, text, box[2] - box[0], box[3] - box[1])
        anchor = kw.get("anchor", "lt")
        fx = {"l": 0.0, "m": 0.5, "r": 1.0}[anchor[0]]
        fy = {"t": 0.0, "m": 0.5, "b": 1.0}[anchor[1]]
        at = (box[0] + fx * (box[2] - box[0]), box[1] + fy * (box[3] - box[1]))
        return self.text(text, font, size, at, colour, **kw)

    def photo(self, pts: Points, *, border: tuple[RGB, float] | None = None) -> _Patch:
        """A photograph clipped to ``pts``, with an optional frame border, as one layer."""
        pad = border[1] / 2 + 1 if border else 1
        box = _Raster(_bounds(pts, pad), (self.w, self.h))
        parts = [(box.fill(pts), _photo(self.rng, box.w, box.h))]
        if border:
            parts.append((box.stroke(pts, border[1]), border[0]))
        return box.patch(parts)

    def title_text(self) -> str:
        title = self.pick(_TITLES)
        return title.upper() if self.chance(0.3) else title

    def drop_hidden(self, least: float = 0.1) -> None:
        """Drop elements that those above hide almost wholly (and their shadows).

        No decomposer can recover an element nobody can see, so such a layer would only
        measure luck. A shadow shows only as a rim around its caster, so it needs less.
        Coverage is checked on every 4th pixel, which is plenty for this.
        """
        through = np.ones_like(self.layers[0][::4, ::4, 3], np.float32)
        keep = [True] * len(self.layers)
        for i in range(len(self.layers) - 1, 0, -1):
            alpha = self.layers[i][::4, ::4, 3].astype(np.float32) / 255.0
            orphan = self.names[i] == "Shadow" and i + 1 < len(keep) and not keep[i + 1]
            seen = float((alpha * through).sum()) / max(float(alpha.sum()), 1e-6)
            need = least / 5 if self.names[i] == "Shadow" else least
            keep[i] = seen >= need and not orphan
            if keep[i]:
                through *= 1.0 - alpha
        self.layers = [x for x, k in zip(self.layers, keep, strict=True) if k]
        self.names = [x for x, k in zip(self.names, keep, strict=True) if k]

    def sample(self, image: np.ndarray | None, family: str) -> Sample:
        from layerctl.stack import composite

        flat = composite(self.layers)
        source = f"{family}: {', '.join(self.notes)}; {self.w}x{self.h}"
        return Sample(flat if image is None else image, self.layers, self.names, source)


# --- families --------------------------------------------------------------------------

_SHAPES = (
    "circle",
    "ellipse",
    "rrect",
    "pill",
    "rect",
    "star",
    "blob",
    "triangle",
    "diamond",
    "pentagon",
    "hexagon",
)


def _text_on_shapes(d: _Design) -> None:
    """Titles across cards, banners, badges and big discs: text partly on, partly off."""
    d.plain_ground()
    w, h, u = d.w, d.h, d.u
    layout = d.pick(("poster", "banner", "cards", "badge"))
    d.notes.append(layout)
    d.decorate(int(d.rng.integers(0, 3)))
    bold = d.pick(_FONTS_BOLD)
    if layout == "poster":
        size = min(w, h) * d.uni(0.45, 0.8)
        cx, cy = w * d.uni(0.3, 0.7), h * d.uni(0.3, 0.6)
        colour = d.accent()
        d.shape(d.shape_points(d.pick(_SHAPES), cx, cy, size), colour, shadow=d.chance(0.3))
        title = d.title_text()
        if " " in title and d.chance(0.5) and h > w * 0.9:
            title = title.replace(" ", "\n", 1)
        edge = cy + d.pick((-1, 1)) * size / 2 * d.uni(0.4, 1.0)
        tw, th = w * d.uni(0.6, 0.92), h * d.uni(0.1, 0.22)
        tx = w * d.uni(0.04, 0.96) - tw / 2 if d.chance(0.5) else (w - tw) / 2
        tx = min(max(tx, u * 3), w - tw - u * 3)
        ink = d.ink_on(d.ground, colour)
        t = d.fitted_text(
            title,
            bold,
            (tx, edge - th / 2, tx + tw, edge + th / 2),
            ink,
            anchor="mm",
            align="center",
            shadow=d.chance(0.25),
        )
        below = t.y + t.alpha.shape[0] + u * 3
        if below < h - u * 12:
            sub = d.pick(_SUBTITLES)
            d.fitted_text(
                sub,
                d.pick(_FONTS_TEXT),
                (u * 6, below, w - u * 6, below + u * 5),
                d.ink_on(d.ground),
                anchor="mt",
                align="center",
            )
        if d.chance(0.6):
            d.fitted_text(
                d.pick(_SMALL),
                d.pick(_FONTS_TEXT),
                (u * 5, h - u * 8, w * 0.5, h - u * 4),
                d.ink_on(d.ground),
            )
    elif layout == "banner":
        bh = h * d.uni(0.1, 0.2)
        by = h * d.uni(0.25, 0.7)
        bw = w * d.uni(0.6, 1.1)
        bx = d.pick((bw / 2 - u * 2, w / 2, w - bw / 2 + u * 2))
        angle = d.uni(-7, 7) if d.chance(0.5) else 0.0
        band = d.accent()
        d.shape(_rrect(bx, by, bw, bh, bh * d.uni(0, 0.15), angle), band, shadow=d.chance(0.3))
        title = d.title_text()
        th = bh * d.uni(1.1, 1.8)
        ty = by + d.pick((-1, 1)) * bh * d.uni(0.2, 0.6)
        ink = d.ink_on(d.ground, band)
        d.fitted_text(
            title,
            bold,
            (u * 6, ty - th / 2, w - u * 6, ty + th / 2),
            ink,
            anchor="mm",
            align="center",
            angle=-angle,
        )
        if d.chance(0.7):
            y = min(by + bh * 1.6, h - u * 12)
            d.fitted_text(
                d.pick(_SUBTITLES),
                d.pick(_FONTS_TEXT),
                (u * 8, y, w - u * 8, y + u * 6),
                d.ink_on(d.ground),
                anchor="mt",
            )
    elif layout == "cards":
        n = int(d.rng.integers(2, 5))
        horizontal = w >= h
        gap = u * d.uni(2, 5)
        span = (w if horizontal else h) - 2 * u * 8
        length = (span - gap * (n - 1)) / n
        across = (h if horizontal else w) * d.uni(0.35, 0.55)
        radius = u * d.uni(1, 5)
        colours = [d.accent() for _ in range(n)] if d.chance(0.5) else [d.accent()] * n
        mid = (h if horizontal else w) * d.uni(0.5, 0.62)
        shadow = d.chance(0.5)
        cards = []
        for k in range(n):
            along = u * 8 + k * (length + gap) + length / 2
            cx, cy = (along, mid) if horizontal else (mid, along)
            cw, ch = (length, across) if horizontal else (across, length)
            cards.append((cx, cy, cw, ch))
            d.shape(_rrect(cx, cy, cw, ch, radius), colours[k], shadow=shadow)
        # The title straddles the top edge of the row of cards.
        c0 = cards[0]
        ink = d.ink_on(d.ground, colours[0])
        if horizontal:
            top = c0[1] - c0[3] / 2
            box = (u * 8, top - u * 9, w - u * 8, top + u * 5)
        else:
            left = c0[0] - c0[2] / 2
            box = (left - u * 4, u * 4, left + c0[2] * 0.9, u * 4 + min(length * 0.8, u * 16))
        d.fitted_text(d.title_text(), bold, box, ink, anchor="lm")
        for (cx, cy, cw, ch), colour in zip(cards, colours, strict=True):
            label = d.pick(_LABELS)
            d.fitted_text(
                label,
                d.pick(_FONTS_TEXT),
                (cx - cw * 0.4, cy + ch * 0.15, cx + cw * 0.4, cy + ch * 0.35),
                d.ink_on(colour),
                anchor="mm",
            )
    else:  # badge
        title = d.title_text()
        tx0, ty0 = u * 7, h * d.uni(0.15, 0.45)
        box = (tx0, ty0, w * d.uni(0.7, 0.9), ty0 + h * d.uni(0.12, 0.2))
        ink = d.ink_on(d.ground)
        t = d.fitted_text(title, bold, box, ink)
        badge = d.accent([ink])
        size = min(w, h) * d.uni(0.2, 0.32)
        # It overlaps the headline's corner, as stickers do, not its words.
        bx = min(t.x + t.alpha.shape[1] + size * d.uni(-0.05, 0.2), w - size * 0.45)
        by = max(t.y - size * d.uni(0.1, 0.35), size * 0.45)
        kind = d.pick(("star", "circle", "blob", "hexagon"))
        pts = d.shape_points(kind, bx, by, size)
        if kind == "star":
            pts = _star(bx, by, size / 2, int(d.rng.integers(12, 20)), 0.85, d.uni(0, 1))
        d.shape(pts, badge, shadow=d.chance(0.4))
        d.fitted_text(
            d.pick(("-30%", "NEW", "50% OFF", "SALE", "HOT", "$9")),
            bold,
            (bx - size * 0.3, by - size * 0.2, bx + size * 0.3, by + size * 0.2),
            d.ink_on(badge),
            anchor="mm",
        )
        bw, bh = min(w * 0.45, u * 40), u * d.uni(7, 11)
        py = min(t.y + t.alpha.shape[0] + u * 8 + bh / 2, h - bh)
        button = d.accent([ink])
        d.shape(_rrect(tx0 + bw / 2, py, bw, bh, bh * d.uni(0.15, 0.5)), button)
        d.fitted_text(
            d.pick(_CTA),
            d.pick(_FONTS_BOLD),
            (tx0 + bw * 0.15, py - bh * 0.25, tx0 + bw * 0.85, py + bh * 0.25),
            d.ink_on(button),
            anchor="mm",
        )


def _shape_overlaps(d: _Design) -> None:
    """Two to five shapes stacked over each other, some with drop shadows."""
    d.plain_ground()
    w, h = d.w, d.h
    d.decorate(int(d.rng.integers(0, 2)))
    n = int(d.rng.integers(2, 6))
    cx, cy = w * d.uni(0.3, 0.7), h * d.uni(0.3, 0.7)
    shadows = d.chance(0.4)
    used: list[RGB] = []
    # Larger elements sit lower, as designers stack them, so none hides wholly.
    sizes = sorted((min(w, h) * d.uni(0.22, 0.7) for _ in range(n)), reverse=True)
    for size in sizes:
        colour = d.accent(used[-1:], 60)
        used.append(colour)
        stroke = (d.accent([colour]), d.u * d.uni(0.3, 1.2)) if d.chance(0.15) else None
        d.shape(
            d.shape_points(d.pick(_SHAPES), cx, cy, size),
            colour,
            stroke=stroke,
            shadow=shadows and d.chance(0.7),
        )
        step = size * d.uni(0.3, 0.6)
        t = d.uni(0, 2 * math.pi)
        cx = min(max(cx + step * math.cos(t), w * 0.15), w * 0.85)
        cy = min(max(cy + step * math.sin(t), h * 0.15), h * 0.85)
    if d.chance(0.3):
        d.fitted_text(
            d.pick(_SMALL),
            d.pick(_FONTS_TEXT),
            (d.u * 5, h - d.u * 9, w * 0.45, h - d.u * 4),
            d.ink_on(d.ground),
        )


def _strokes(d: _Design) -> None:
    """Outlined shapes, rings, borders, rules and outlined or hollow lettering."""
    d.plain_ground()
    w, h, u = d.w, d.h, d.u
    ink = d.ink_on(d.ground)
    if d.chance(0.5):  # a page border, inset like a certificate or menu card
        inset = u * d.uni(2, 6)
        d.outline(
            _rrect(w / 2, h / 2, w - 2 * inset, h - 2 * inset, u * d.uni(0, 4)),
            d.accent(),
            u * d.uni(0.3, 1.5),
        )
    for _ in range(int(d.rng.integers(1, 4))):
        kind = d.pick(("ring", "outlined", "filled+stroke", "ring"))
        size = min(w, h) * d.uni(0.15, 0.45)
        cx, cy = w * d.uni(0.2, 0.8), h * d.uni(0.2, 0.8)
        pts = d.shape_points(d.pick(_SHAPES), cx, cy, size)
        width = u * d.uni(0.4, 3)
        colour = d.accent()
        if kind == "filled+stroke":
            d.shape(pts, colour, stroke=(d.accent([colour]), width), shadow=d.chance(0.3))
        else:
            d.outline(pts, colour, width)
    title = d.title_text()
    ty = h * d.uni(0.3, 0.7)
    style = d.pick(("hollow", "outlined", "plain"))
    face = d.pick(_FONTS_BOLD)
    size = _fit_font(face, title, w - 12 * u, h * 0.2)
    sw = max(1, int(size * d.uni(0.04, 0.09)))
    stroke = {"hollow": (None, sw), "outlined": (d.accent([ink]), sw), "plain": None}[style]
    t = d.text(title, face, size, (w / 2, ty), ink, anchor="mm", stroke=stroke)
    d.notes.append(f"{style} title")
    # Rules and underlines: free lines, one layer each.
    tw = t.alpha.shape[1]
    if d.chance(0.7):
        y = t.y + t.alpha.shape[0] + u * d.uni(1, 3)
        d.outline(
            [(w / 2 - tw / 2, y), (w / 2 + tw / 2, y)],
            d.accent(),
            u * d.uni(0.3, 1.2),
            closed=False,
        )
    if d.chance(0.5):  # a zig-zag or wave accent
        x0, y0 = w * d.uni(0.05, 0.5), h * d.pick((d.uni(0.08, 0.22), d.uni(0.78, 0.92)))
        n, amp, step = int(d.rng.integers(4, 12)), u * d.uni(1.5, 4), u * d.uni(3, 7)
        pts = [(x0 + k * step, y0 + (amp if k % 2 else -amp)) for k in range(n)]
        d.outline(pts, d.accent(), u * d.uni(0.4, 1.2), closed=False)
    if d.chance(0.5):  # an arrow
        x0, y0 = w * d.uni(0.1, 0.5), h * d.uni(0.75, 0.9)
        x1 = x0 + w * d.uni(0.2, 0.4)
        head = u * 3
        d.outline(
            [(x0, y0), (x1, y0), (x1 - head, y0 - head), (x1, y0), (x1 - head, y0 + head)],
            ink,
            u * d.uni(0.4, 1.0),
            closed=False,
        )
    if d.chance(0.5):
        d.fitted_text(
            d.pick(_SUBTITLES),
            d.pick(_FONTS_TEXT),
            (u * 10, h * 0.8, w - u * 10, h * 0.8 + u * 5),
            ink,
            anchor="mt",
        )


def _translucent_on_texture(d: _Design) -> None:
    """See-through panels, glows and soft shadows over paper, canvas, grain and noise."""
    d.textured_ground()
    w, h, u = d.w, d.h, d.u
    if d.chance(0.5):  # a glow behind the content
        r = min(w, h) * d.uni(0.2, 0.45)
        cx, cy = w * d.uni(0.2, 0.8), h * d.uni(0.2, 0.8)
        box = _Raster(_bounds(_ellipse(cx, cy, r, r), r * 0.8), (w, h))
        core = box.fill(_ellipse(cx, cy, r * 0.7, r * 0.7))
        glow = d.pick([WHITE, *d.palette])
        d.add("Overlay", box.patch([(_blur(core, r * 0.25) * d.uni(0.5, 0.9), glow)]))
        d.notes.append("glow")
    panels = int(d.rng.integers(1, 4))
    seen: list[tuple[RGB, tuple[float, ...]]] = []  # what text may land on, and where
    for k in range(panels):
        pw, ph = w * d.uni(0.3, 0.75), h * d.uni(0.2, 0.5)
        cx, cy = w * d.uni(0.25, 0.75), h * d.uni(0.25, 0.75)
        # At most one opaque card, never the only element: this family is about veils.
        kind = d.pick(("panel", "panel", "disc", "card") if k == 1 else ("panel", "disc"))
        colour = d.pick([WHITE, INK, *d.palette])
        if kind == "card":  # an opaque card with a soft drop shadow
            pts = _rrect(cx, cy, pw, ph, u * d.uni(1, 4))
            colour = d.accent()
            seen.append((colour, _bounds(pts)))
            d.shape(pts, colour, shadow=True)
        else:
            pts = (
                _rrect(cx, cy, pw, ph, u * d.uni(0, 5))
                if kind == "panel"
                else _ellipse(cx, cy, pw / 2, pw / 2)
            )
            opacity = d.uni(0.3, 0.8)
            seen.append((_mix(d.ground, colour, opacity), _bounds(pts)))
            d.shape(pts, colour, role="Overlay", opacity=opacity, shadow=d.chance(0.3))
    if d.chance(0.3):  # a scrim: colour fading in from one edge
        fade = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
        if d.chance(0.5):
            fade = fade[::-1]
        d.add(
            "Overlay",
            _Patch(0, 0, np.asarray(d.pick([INK, *d.palette]), np.float32), fade * d.uni(0.3, 0.7)),
        )
        d.notes.append("scrim")

    def legible(box: tuple[float, float, float, float]) -> RGB:
        """An ink that reads on the ground and on every panel under ``box``."""
        under = [
            c
            for c, b in seen
            if b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3]
        ]
        return d.ink_on(d.ground, *under)

    box = (u * 8, h * d.uni(0.1, 0.5), w - u * 8, h * 0.5 + u * 8)
    d.fitted_text(d.title_text(), d.pick(_FONTS_BOLD), box, legible(box), shadow=d.chance(0.4))
    if d.chance(0.6):
        body = _wrap(d.pick(_BODY), int(d.rng.integers(22, 40)))
        box = (u * 8, h * 0.66, w * 0.8, h * 0.9)
        d.fitted_text(body, d.pick(_FONTS_TEXT), box, legible(box))


def _photo_ground(d: _Design) -> None:
    """A photograph under a headline, a scrim or tint, a button and a logo mark."""
    d.photo_ground()
    w, h, u = d.w, d.h, d.u
    light = _luma(d.ground) > 128
    bottom = d.chance(0.6)
    if d.chance(0.6):  # scrim for legibility, as on every social card
        ramp = np.linspace(0, 1, h, dtype=np.float32) ** d.uni(1, 2.5)
        ramp = ramp if bottom else ramp[::-1]
        colour = INK if d.chance(0.7) else d.pick(d.palette)
        d.add(
            "Overlay",
            _Patch(
                0,
                0,
                np.asarray(colour, np.float32),
                ramp[:, None] * np.full((1, w), d.uni(0.5, 0.85), np.float32),
            ),
        )
        d.notes.append("scrim")
        light = False
    elif d.chance(0.3):  # a whole-picture colour wash
        colour = d.pick(d.palette)
        d.add(
            "Overlay",
            _Patch(
                0, 0, np.asarray(colour, np.float32), np.full((h, w), d.uni(0.2, 0.45), np.float32)
            ),
        )
        d.notes.append("tint")
    ink = INK if light else WHITE
    y0 = h * (d.uni(0.55, 0.7) if bottom else d.uni(0.08, 0.2))
    title = d.title_text()
    if d.chance(0.3):  # a translucent bar behind the headline
        bar = _rrect(w / 2, y0 + h * 0.08, w * d.uni(0.8, 1.05), h * 0.2, u * d.uni(0, 3))
        colour, opacity = d.pick([INK, WHITE, *d.palette]), d.uni(0.5, 0.85)
        d.shape(bar, colour, role="Overlay", opacity=opacity)
        ink = d.ink_on(_mix(d.ground, colour, opacity))
    d.fitted_text(
        title, d.pick(_FONTS_BOLD), (u * 7, y0, w - u * 7, y0 + h * 0.16), ink, shadow=d.chance(0.5)
    )
    if d.chance(0.6):
        bw, bh = min(w * 0.6, u * d.uni(30, 45)), u * d.uni(8, 12)
        bx, by = u * 7 + bw / 2, min(y0 + h * 0.16 + u * 6 + bh / 2, h - bh)
        colour = d.pick(d.palette)
        d.shape(_rrect(bx, by, bw, bh, bh * d.uni(0.1, 0.5)), colour, shadow=d.chance(0.3))
        d.fitted_text(
            d.pick(_CTA),
            d.pick(_FONTS_BOLD),
            (bx - bw * 0.35, by - bh * 0.25, bx + bw * 0.35, by + bh * 0.25),
            d.ink_on(colour),
            anchor="mm",
        )
    if d.chance(0.6):  # a logo mark in a corner
        r = u * d.uni(4, 8)
        cx, cy = w - u * 5 - r, u * 5 + r
        mark = d.pick(d.palette)
        d.shape(
            d.shape_points(d.pick(("circle", "hexagon", "rrect", "diamond")), cx, cy, 2 * r), mark
        )
        d.fitted_text(
            d.pick(("A", "M", "Co", "S&P", "K")),
            d.pick(_FONTS_BOLD),
            (cx - r * 0.55, cy - r * 0.5, cx + r * 0.55, cy + r * 0.5),
            d.ink_on(mark),
            anchor="mm",
        )


def _photo_frames(d: _Design) -> None:
    """Photos in rounded frames, polaroids and avatar circles, with captions."""
    d.plain_ground()
    w, h, u = d.w, d.h, d.u
    ink = d.ink_on(d.ground)
    layout = d.pick(("grid", "polaroids", "hero", "profile"))
    d.notes.append(layout)
    d.decorate(int(d.rng.integers(0, 2)))
    if layout == "grid":
        cols, rows = (3, 2) if w > h else (2, 3)
        if d.chance(0.4):
            cols, rows = (2, 1) if w > h else (1, 2)
        top = h * 0.2
        gap = u * d.uni(1.5, 4)
        cw = (w - 2 * u * 6 - gap * (cols - 1)) / cols
        ch = (h - top - u * 6 - gap * (rows - 1)) / rows
        radius = u * d.uni(0, 4)
        border = (d.pick([WHITE, *d.palette]), u * d.uni(0.5, 1.5)) if d.chance(0.4) else None
        shadow = d.chance(0.4)
        for r in range(rows):
            for c in range(cols):
                cx = u * 6 + c * (cw + gap) + cw / 2
                cy = top + r * (ch + gap) + ch / 2
                p = d.photo(_rrect(cx, cy, cw, ch, radius), border=border)
                if shadow:
                    d.shadow(p)
                d.add("Photo", p)
        d.fitted_text(
            d.title_text(), d.pick(_FONTS_BOLD), (u * 6, u * 5, w * 0.75, top - u * 4), ink
        )
    elif layout == "polaroids":
        for _ in range(int(d.rng.integers(1, 4))):
            size = min(w, h) * d.uni(0.35, 0.55)
            cx, cy = w * d.uni(0.3, 0.7), h * d.uni(0.3, 0.65)
            angle = d.uni(-12, 12)
            margin = size * 0.06
            card = _rrect(cx, cy + margin * 1.5, size, size + margin * 5, u * 0.3, angle)
            d.shape(card, _mix(WHITE, d.ground, 0.05), shadow=True)
            photo = _rrect(cx, cy, size - 2 * margin, size - 2 * margin, 0, angle)
            d.add("Photo", d.photo(photo))
            # The caption sits in the card's wide bottom strip, turned with the card.
            ((tx, ty),) = _rotate([(cx, cy + size / 2 + margin * 1.5)], cx, cy, angle)
            d.fitted_text(
                d.pick(_CAPTIONS),
                "DejaVuSerif-Italic",
                (tx - size * 0.35, ty - margin, tx + size * 0.35, ty + margin),
                INK,
                anchor="mm",
                angle=-angle,
            )
    elif layout == "hero":
        horizontal = w > h
        pw = w * (0.55 if horizontal else 0.88)
        ph = h * (0.8 if horizontal else 0.5)
        cx = u * 6 + pw / 2
        cy = u * 6 + ph / 2
        p = d.photo(_rrect(cx, cy, pw, ph, u * d.uni(0, 6)))
        if d.chance(0.5):
            d.shadow(p)
        d.add("Photo", p)
        x0 = cx + pw / 2 + u * 5 if horizontal else u * 6
        y0 = u * 10 if horizontal else cy + ph / 2 + u * 5
        d.fitted_text(d.title_text(), d.pick(_FONTS_BOLD), (x0, y0, w - u * 6, y0 + u * 12), ink)
        body = _wrap(d.pick(_BODY), 28)
        d.fitted_text(body, d.pick(_FONTS_TEXT), (x0, y0 + u * 16, w - u * 6, y0 + u * 38), ink)
    else:  # profile card: a card with an avatar circle overlapping its top edge
        cw, ch = w * d.uni(0.6, 0.85), h * d.uni(0.45, 0.6)
        cx, cy = w / 2, h * 0.58
        card = d.accent()
        d.shape(_rrect(cx, cy, cw, ch, u * d.uni(2, 5)), card, shadow=d.chance(0.7))
        r = min(cw, ch) * d.uni(0.2, 0.3)
        border = (d.pick([WHITE, *d.palette]), u * d.uni(0.8, 2))
        d.add("Photo", d.photo(_ellipse(cx, cy - ch / 2, r, r), border=border))
        name = d.pick(("Alex Morgan", "Priya Shah", "Sam Lee", "Jordan Diaz", "Mia Chen"))
        cink = d.ink_on(card)
        d.fitted_text(
            name,
            d.pick(_FONTS_BOLD),
            (cx - cw * 0.4, cy - ch / 2 + r + u * 4, cx + cw * 0.4, cy - ch / 2 + r + u * 11),
            cink,
            anchor="mt",
        )
        d.fitted_text(
            d.pick(_SMALL),
            d.pick(_FONTS_TEXT),
            (cx - cw * 0.3, cy + u * 2, cx + cw * 0.3, cy + u * 7),
            cink,
            anchor="mt",
        )


_APPS = ("Bloom", "Kite", "Nomad", "Pulse", "Orbit", "Fern", "Atlas", "Mosaic")
_NAV = "Home    Products    Pricing    About"
_PEOPLE = ("Alex Morgan", "Priya Shah", "Sam Lee", "Jordan Diaz", "Mia Chen", "Tom Okafor")
_ROW_DETAILS = ("Designer · 2h ago", "Sent you a file", "Paid $42.00", "Online now", "3 new photos")
_BULLETS = (
    "Revenue grew 24%",
    "Two new markets",
    "Hiring 12 engineers",
    "Launch in Q2",
    "Customer NPS at 61",
    "Costs down 8%",
    "New pricing tiers",
    "Partners in the EU",
)


def _ui_screens(d: _Design) -> None:
    """App and web screens: a top bar, cards with avatars, a field, buttons, a tab bar."""
    light = d.chance(0.65)
    hue = d.uni(0, 1)
    ground = _hls(hue, d.uni(0.95, 0.99), d.uni(0, 0.3)) if light else _hls(hue, 0.1, 0.2)
    d.background(np.asarray(ground, np.float32), "light UI" if light else "dark UI")
    d.gradients, d.shadow_opacity = 0.05, (0.1, 0.25)
    w, h, u = d.w, d.h, d.u
    phone = h > w
    d.notes.append("phone" if phone else "desktop")
    surface = WHITE if light else _mix(ground, WHITE, 0.1)
    ink = INK if light else (236.0, 236.0, 242.0)
    muted = _mix(ink, ground, 0.45)
    primary = d.accent([surface])
    bold, regular = d.pick(_FONTS_BOLD[:2]), d.pick(_FONTS_TEXT[:2])
    bar_h = u * d.uni(9, 13)
    bar = primary if d.chance(0.4) else surface
    d.shape(_rrect(w / 2, bar_h / 2, w + 2, bar_h, 0), bar, shadow=bar == surface)
    d.fitted_text(
        d.pick(_APPS), bold, (u * 4, bar_h * 0.3, w * 0.35, bar_h * 0.7), d.ink_on(bar), anchor="lm"
    )
    if phone:  # a hamburger menu icon
        x1, y = w - u * 4, bar_h / 2
        lines = [_rrect(x1 - u * 3, y + k * u * 1.6, u * 6, u * 0.8, u * 0.4) for k in (-1, 0, 1)]
        d.pieces(lines, [d.ink_on(bar)])
    else:
        d.fitted_text(
            _NAV,
            regular,
            (w * 0.5, bar_h * 0.35, w - u * 4, bar_h * 0.65),
            d.ink_on(bar),
            anchor="rm",
        )
    y = bar_h + u * 6
    margin = u * 5
    d.fitted_text(d.title_text(), bold, (margin, y, w * 0.8, y + u * 9), ink)
    y += u * 13
    col_w = (w - 2 * margin) if phone else (w - 3 * margin) / 2
    rows = int(d.rng.integers(2, 4))
    row_h = u * d.uni(12, 16)
    radius = u * d.uni(1, 3)
    shadow = light and d.chance(0.6)
    for k in range(rows):
        if y + row_h > h * (0.78 if phone else 0.92):
            break
        cx, cy = margin + col_w / 2, y + row_h / 2
        d.shape(
            _rrect(cx, cy, col_w, row_h, radius),
            surface,
            shadow=shadow,
            stroke=None if shadow else (_mix(surface, ink, 0.12), u * 0.25),
        )
        r = row_h * 0.32
        ax = margin + u * 3 + r
        d.add("Photo", d.photo(_ellipse(ax, cy, r, r)))
        text = f"{_PEOPLE[k % len(_PEOPLE)]}\n{d.pick(_ROW_DETAILS)}"
        d.fitted_text(
            text,
            regular,
            (ax + r + u * 3, cy - row_h * 0.3, margin + col_w * 0.75, cy + row_h * 0.3),
            ink,
            anchor="lm",
        )
        if d.chance(0.4):  # a status pill at the row's end
            pw, ph = u * 9, u * 4
            px = margin + col_w - u * 3 - pw / 2
            tag = d.accent([surface])
            d.shape(_rrect(px, cy, pw, ph, ph / 2), tag)
            d.fitted_text(
                d.pick(("New", "Paid", "Live", "3")),
                bold,
                (px - pw * 0.3, cy - ph * 0.3, px + pw * 0.3, cy + ph * 0.3),
                d.ink_on(tag),
                anchor="mm",
            )
        y += row_h + u * 3
    # A form column: a field and buttons (beside the list on desktop, below it on phones).
    fx = margin if phone else 2 * margin + col_w
    fy = y + u * 2 if phone else bar_h + u * 19
    field_h = u * d.uni(8, 10)
    if fy + 2 * field_h + u * 4 < h - (u * 14 if phone else u * 2):
        d.shape(
            _rrect(fx + col_w / 2, fy + field_h / 2, col_w, field_h, radius),
            surface,
            stroke=(muted, u * 0.3),
        )
        d.fitted_text(
            d.pick(("Search", "Email address", "Your name", "Password")),
            regular,
            (fx + u * 3, fy + field_h * 0.3, fx + col_w * 0.6, fy + field_h * 0.7),
            muted,
            anchor="lm",
        )
        fy += field_h + u * 4
        bw = col_w if phone else col_w * 0.5
        d.shape(_rrect(fx + bw / 2, fy + field_h / 2, bw, field_h, radius), primary)
        d.fitted_text(
            d.pick(_CTA),
            bold,
            (fx + bw * 0.25, fy + field_h * 0.3, fx + bw * 0.75, fy + field_h * 0.7),
            d.ink_on(primary),
            anchor="mm",
        )
        if not phone and d.chance(0.6):  # a secondary, outlined button
            x = fx + bw + u * 3
            d.outline(_rrect(x + bw / 2, fy + field_h / 2, bw, field_h, radius), primary, u * 0.4)
            d.fitted_text(
                "Cancel",
                bold,
                (x + bw * 0.3, fy + field_h * 0.3, x + bw * 0.7, fy + field_h * 0.7),
                primary,
                anchor="mm",
            )
    if phone:  # a bottom tab bar with its icons as one element
        tab_h = u * 12
        d.shape(_rrect(w / 2, h - tab_h / 2, w + 2, tab_h, 0), surface, shadow=light)
        icons = [
            d.shape_points(kind, w * (k + 0.5) / 4, h - tab_h / 2, u * 5)
            for k, kind in enumerate(("circle", "rrect", "diamond", "hexagon"))
        ]
        d.pieces(icons[:1] + icons[2:], [muted])
        d.shape(icons[1], primary)


def _slides(d: _Design) -> None:
    """Presentation slides and report pages: title, bullets, a chart or a photo, footer."""
    d.plain_ground()
    w, h, u = d.w, d.h, d.u
    ink = d.ink_on(d.ground)
    margin = u * d.uni(5, 8)
    accent = d.accent([ink])
    if d.chance(0.5):  # an accent bar: along the left edge or under the title
        if d.chance(0.5):
            d.shape(_rrect(u * 1, h / 2, u * 2, h + 2, 0), accent)
        else:
            d.shape(_rrect(margin + u * 8, margin + h * 0.13, u * 16, u * 1, 0), accent)
    d.fitted_text(
        d.title_text(), d.pick(_FONTS_BOLD), (margin, margin, w * 0.85, margin + h * 0.1), ink
    )
    wide = w >= h
    top = margin + h * 0.17
    body_box = (margin, top, w * 0.45, h * 0.8) if wide else (margin, top, w - margin, h * 0.45)
    items = [_BULLETS[i] for i in d.rng.permutation(len(_BULLETS))[: int(d.rng.integers(3, 6))]]
    face = d.pick([f for f in _FONTS_TEXT if "ExtraLight" not in f])  # it has no bullet
    d.fitted_text("\n".join(f"• {item}" for item in items), face, body_box, ink)
    fig = (w * 0.52, top, w - margin, h * 0.82) if wide else (margin, h * 0.5, w - margin, h * 0.85)
    kind = d.pick(("bars", "donut", "line", "photo"))
    d.notes.append(f"{kind} figure")
    x0, y0, x1, y1 = fig
    colours = [d.accent([ink])] + [d.accent() for _ in range(2)]
    if kind == "bars":
        n = int(d.rng.integers(4, 8))
        slot = (x1 - x0) / n
        heights = d.rng.uniform(0.2, 1.0, n) * (y1 - y0) * 0.9
        bars = [
            _rrect(x0 + (k + 0.5) * slot, y1 - hk / 2, slot * 0.6, hk, u * 0.5)
            for k, hk in enumerate(heights)
        ]
        d.pieces(bars, colours[: int(d.rng.integers(1, 3))])
        d.outline([(x0, y1), (x1, y1)], _mix(ink, d.ground, 0.4), u * 0.3, closed=False)
    elif kind == "donut":
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        r = min(x1 - x0, y1 - y0) * 0.45
        cuts = np.cumsum(np.r_[0, d.rng.dirichlet(np.ones(3))]) * 2 * math.pi - math.pi / 2
        segments = []
        for a, b in itertools.pairwise(cuts):
            t = np.linspace(a, b, max(8, int((b - a) * r / 3)))
            outer = list(zip(cx + r * np.cos(t), cy + r * np.sin(t), strict=True))
            inner = list(
                zip(cx + 0.6 * r * np.cos(t[::-1]), cy + 0.6 * r * np.sin(t[::-1]), strict=True)
            )
            segments.append(outer + inner)
        d.pieces(segments, colours)
        d.fitted_text(
            f"{int(d.rng.integers(12, 95))}%",
            d.pick(_FONTS_BOLD),
            (cx - r * 0.4, cy - r * 0.25, cx + r * 0.4, cy + r * 0.25),
            ink,
            anchor="mm",
        )
    elif kind == "line":
        n = int(d.rng.integers(5, 10))
        values = np.cumsum(d.rng.normal(0.3, 1, n))
        values = (values - values.min()) / max(np.ptp(values), 1e-6)
        pts = [
            (x0 + (x1 - x0) * k / (n - 1), y1 - (y1 - y0) * (0.1 + 0.8 * v))
            for k, v in enumerate(values)
        ]
        grid = _mix(ink, d.ground, 0.75)
        d.pieces(
            [
                _rrect((x0 + x1) / 2, y0 + (y1 - y0) * f, x1 - x0, u * 0.25, 0)
                for f in (0.25, 0.5, 0.75, 1.0)
            ],
            [grid],
        )
        d.outline(pts, colours[0], u * d.uni(0.6, 1.2), closed=False)
        d.pieces([_ellipse(x, y, u * 1.1, u * 1.1) for x, y in pts], [colours[0]])
    else:
        p = d.photo(_rrect((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0, u * d.uni(0, 3)))
        d.add("Photo", p)
    page = f"{int(d.rng.integers(2, 40))}"
    d.fitted_text(
        page,
        d.pick(_FONTS_TEXT),
        (w - margin - u * 6, h - u * 6, w - margin, h - u * 3),
        _mix(ink, d.ground, 0.3),
        anchor="rm",
    )


_BUILDERS: dict[str, Callable[[_Design], None]] = {
    "text_on_shapes": _text_on_shapes,
    "shape_overlaps": _shape_overlaps,
    "strokes": _strokes,
    "translucent_on_texture": _translucent_on_texture,
    "photo_ground": _photo_ground,
    "photo_frames": _photo_frames,
    "ui_screens": _ui_screens,
    "slides": _slides,
}


def canvas_size(
    rng: np.random.Generator, max_megapixels: float = MAX_MEGAPIXELS
) -> tuple[int, int]:
    """(width, height): log-uniform area in 0.3..max MP, at one of the usual aspects."""
    top = max(min(max_megapixels, MAX_MEGAPIXELS), MIN_MEGAPIXELS)
    area = 1e6 * math.exp(rng.uniform(math.log(MIN_MEGAPIXELS), math.log(top)))
    aspect = ASPECTS[rng.integers(len(ASPECTS))]
    w = math.sqrt(area * aspect)
    return max(1, round(w)), max(1, round(w / aspect))


def sample(family: str, seed: int, max_megapixels: float = MAX_MEGAPIXELS) -> Sample:
    """Design number ``seed`` of ``family``; the same arguments give the same design."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    rng = np.random.default_rng([zlib.crc32(family.encode()), seed])
    base = family
    if family == "jpeg":
        base = tuple(_BUILDERS)[rng.integers(len(_BUILDERS))]
    w, h = canvas_size(rng, max_megapixels)
    design = _Design(rng, w, h)
    _BUILDERS[base](design)
    design.drop_hidden()
    if family != "jpeg":
        return design.sample(None, family)
    quality = int(rng.integers(70, 93))
    subsampling = 2 if rng.random() < 0.75 else 0  # 4:2:0 as most encoders, else 4:4:4
    from layerctl.stack import composite

    flat = Image.fromarray(composite(design.layers)[..., :3])
    buf = io.BytesIO()
    flat.save(buf, "JPEG", quality=quality, subsampling=subsampling)
    image = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGBA"))
    design.notes.append(f"from {base}, JPEG q{quality} {('4:4:4', '', '4:2:0')[subsampling]}")
    return design.sample(image, family)


# --- contact sheet -----------------------------------------------------------------------


def write_sheet(path: Path, per_family: int, seed: int, max_megapixels: float) -> None:
    """Inputs and their true layers, one block per design, for people to look at."""
    bench = str(Path(__file__).resolve().parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    from classic_quality import _save_sheets  # the same stacking as the classic bench's sheet

    from layerctl.preview import contact_sheet
    from layerctl.stack import Layer, LayerStack

    sheets = []
    for family in FAMILIES:
        for k in range(per_family):
            s = sample(family, seed + k, max_megapixels)
            stack = LayerStack([Layer(n, px) for n, px in zip(s.names, s.layers, strict=True)])
            sheets.append(contact_sheet(stack, s.image, f"{family} #{seed + k}: {s.source}")[0])
    _save_sheets(sheets, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, required=True, help="write a contact sheet PNG here")
    parser.add_argument("--per-family", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS)
    args = parser.parse_args()
    write_sheet(args.sheet, args.per_family, args.seed, args.max_megapixels)


if __name__ == "__main__":
    main()
