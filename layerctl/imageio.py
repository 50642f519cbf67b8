"""Reading input images into RGBA uint8 (outputs are written by layerctl.outputs).

Every input mode Pillow knows (L, LA, P with transparency, RGB, RGBA, I;16, CMYK, …)
becomes straight-alpha RGBA uint8 with EXIF orientation applied. An RGB ICC profile is
kept so writers can carry it; CMYK pixels are converted to sRGB through their embedded
profile (Pillow's ImageCms, relative colorimetric) and no profile is kept, since one
describing CMYK or grey would misdescribe the RGB layers (GIMP and ImageMagick reject
such files). Failures become :class:`BadInput` with one line of text.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from layerctl.errors import BadInput

if TYPE_CHECKING:
    from psd_tools import PSDImage

from layerctl.budget import DECODE, Cost, allowance, dimensions, human_bytes, human_pixels
from layerctl.budget import check as check_memory

_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")
_LONG_NUMBER = re.compile(r"\d{16,}")


@dataclass
class InputImage:
    pixels: np.ndarray  # (H, W, 4) uint8
    path: Path
    sha256: str
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)  # warnings worth telling the user


@dataclass(frozen=True)
class Limits:
    """What an input may declare, checked from its header before decoding: at most
    ``max_pixels`` (None: no cap but the memory plan's), and ``cost`` bytes per pixel
    within the memory plan (layerctl.budget, with ``--max-memory``)."""

    max_pixels: int | None = None
    cost: Cost = DECODE
    max_memory: int | None = None
    share: int = 1  # processes decoding at once (--workers): each gets its part

    def pixels(self) -> int | None:
        """The most pixels an input may have: the cap, or what the allowance pays for."""
        limit = allowance(self.max_memory, self.share)
        known = [] if self.max_pixels is None else [self.max_pixels]
        if limit is not None:
            known.append(max(limit.bytes - self.cost.fixed, 0) // max(self.cost.per_pixel, 1))
        return min(known, default=None)

    def check(self, path: Path, size: tuple[int, int]) -> None:
        w, h = size
        if w < 1 or h < 1:
            raise BadInput(f"{path}: image has no pixels ({dimensions(w, h)})")
        what = f"{dimensions(w, h)} ({human_pixels(w * h)})"
        if self.max_pixels is not None and w * h > self.max_pixels:
            size, limit = human_pixels(w * h), human_pixels(self.max_pixels)
            if size == limit:  # rounded alike: the exact counts say which is larger
                size, limit = f"{w * h} pixels", f"{self.max_pixels} pixels"
            raise BadInput(
                f"{path}: {dimensions(w, h)} is {size}, over the {limit} limit",
                hint="raise it with --max-pixels",
            )
        need = self.cost.of(w * h)
        check_memory(path, need, self.max_memory, what=f"{what} ", share=self.share)


def read_image(
    path: str | os.PathLike[str],
    max_pixels: int | None = None,
    *,
    cost: Cost = DECODE,
    max_memory: int | None = None,
    share: int = 1,
) -> InputImage:
    """Decode ``path`` to RGBA uint8, refusing before decoding an image over ``max_pixels``
    or one whose ``cost`` does not fit the memory plan (layerctl.budget)."""
    path = Path(path)
    limits = Limits(max_pixels, cost, max_memory, share)
    try:
        _check_file(path, limits)
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in a path read from stdin
        raise BadInput(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not data:
        raise BadInput(f"{path}: empty file")
    digest = hashlib.sha256(data).hexdigest()
    quiet_decoders()
    notes: list[str] = []
    if path.suffix.lower() in {".psd", ".psb"}:
        image = _open_psd_composite(path, data, limits)
    else:
        image, frames = _open_with_pillow(path, data, limits)
        if frames > 1:
            notes.append(f"{path.name} is animated; using its first frame")
    icc = image.info.get("icc_profile") or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = ImageOps.exif_transpose(image) or image
            if image.mode == "CMYK":
                image = _cmyk_to_srgb(image, icc)
            pixels = to_rgba(image)
    except MemoryError:
        raise
    except Exception as exc:  # damaged EXIF or pixel data: Pillow raises many types
        raise BadInput(f"{path}: corrupt or truncated image ({_short(exc)})") from None
    return InputImage(pixels, path, digest, rgb_profile(icc), notes)


def rgb_profile(icc: bytes | None) -> bytes | None:
    """``icc`` when it is an ICC profile of an RGB colour space, else None: the data
    colour space sits at bytes 16-20 of the header (ICC.1:2022, 7.2.6)."""
    return icc if icc and len(icc) >= 128 and icc[16:20] == b"RGB " else None


def _cmyk_to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK to sRGB through the embedded profile; without one (or with one LittleCMS
    cannot use), Pillow's naive formula, the best guess there is."""
    if icc:
        import io

        from PIL import ImageCms

        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass
    return image.convert("RGB")


def quiet_decoders() -> None:
    """Silence Pillow's and psd-tools' loggers for this process.

    They log the damage they skip ("Unknown key", "More samples per pixel than can be
    decoded"), which logging's fallback handler would print under our one-line errors.
    """
    import logging

    for name in ("PIL", "psd_tools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _check_file(path: Path, limits: Limits) -> None:
    """Refuse what is not a regular file (a FIFO or /dev/zero never ends) or is too big.

    The byte limit is an uncompressed 16-bit RGBA image at the pixel limit, plus room
    for metadata: no image format layerctl reads needs more.
    """
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: not a regular file")
    pixels = limits.pixels()
    if pixels is not None and info.st_size > 8 * pixels + (64 << 20):
        raise BadInput(
            f"{path}: {human_bytes(info.st_size)} is larger than any image within the limits",
            hint="raise --max-pixels or --max-memory",
        )


def _open_with_pillow(path: Path, data: bytes, limits: Limits) -> tuple[Image.Image, int]:
    """The decoded first frame and the number of frames."""
    import io

    try:
        with warnings.catch_warnings():
            # Pillow warns on damage it skips ("Tag data larger than file"): not for users.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we check the size ourselves, with our own limit
            try:
                image = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = old
            limits.check(path, image.size)
            image.load()
            frames = getattr(image, "n_frames", 1)  # seeks through every frame's header
    except (BadInput, MemoryError):
        raise
    except UnidentifiedImageError:
        raise BadInput(f"{path}: not an image Pillow can read") from None
    except Exception as exc:  # damaged files: Pillow raises OSError, TypeError, KeyError, …
        raise BadInput(f"{path}: corrupt or truncated image ({_short(exc)})") from None
    return image, frames


def open_psd(data: bytes) -> PSDImage:
    """Parse a PSD from memory: a section length past the end then reads short instead
    of making a file object allocate the declared gigabytes."""
    import io

    from psd_tools import PSDImage

    return PSDImage.open(io.BytesIO(data))


def _open_psd_composite(path: Path, data: bytes, limits: Limits) -> Image.Image:
    from layerctl.errors import BadResult
    from layerctl.formats.psd import read_metadata as check_whole

    try:  # psd-tools decodes a cut-off RLE merged image without a word
        check_whole(path)
    except BadResult as exc:
        raise BadInput(exc.message, exc.hint) from None
    try:
        psd = open_psd(data)
        limits.check(path, psd.size)  # before composite() allocates the canvas
        image = psd.composite()
    except (BadInput, MemoryError):
        raise
    except Exception as exc:  # psd-tools raises many types on damaged files
        raise BadInput(f"{path}: not a readable PSD ({_short(exc)})") from None
    if image is None:
        raise BadInput(f"{path}: PSD has no composite image")
    return image


def to_rgba(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to straight-alpha RGBA uint8 (16-bit scaled, CMYK converted)."""
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        arr = np.asarray(image, dtype=np.uint32)
        peak = 65535 if arr.max(initial=0) > 255 or image.mode.startswith("I;16") else 255
        gray = (arr.astype(np.float64) * 255.0 / peak).round().clip(0, 255).astype(np.uint8)
        image = Image.fromarray(gray, "L")
    elif image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        image = Image.fromarray((arr.clip(0, 1) * 255).round().astype(np.uint8), "L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("PA")
    elif image.mode in {"RGBa", "La"}:
        image = image.convert(image.mode.replace("a", "A"))
    return np.ascontiguousarray(np.asarray(image.convert("RGBA"), dtype=np.uint8))


def _short(exc: BaseException) -> str:
    """The first line of ``exc``, without Python reprs (``<_io.BytesIO object at 0x…>``)
    and with long numbers cut, for a one-line message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _REPR.sub("", text).strip()
    return _LONG_NUMBER.sub(lambda m: m.group()[:12] + "…", text)[:160]
