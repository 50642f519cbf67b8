"""Reading input images into RGBA uint8 (outputs are written by layerctl.outputs).

Every input mode Pillow knows (L, LA, P with transparency, RGB, RGBA, I;16, CMYK, …)
becomes straight-alpha RGBA uint8 with EXIF orientation applied; the ICC profile is kept
so writers can carry it. Failures become :class:`BadInput` with one line of text.
"""

from __future__ import annotations

import hashlib
import os
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

from layerctl.limits import DEFAULT_MAX_PIXELS


@dataclass
class InputImage:
    pixels: np.ndarray  # (H, W, 4) uint8
    path: Path
    sha256: str
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)  # warnings worth telling the user


def read_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> InputImage:
    """Decode ``path`` to RGBA uint8, refusing anything over ``max_pixels`` before decoding."""
    path = Path(path)
    try:
        _check_file(path, max_pixels)
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
        image = _open_psd_composite(path, data, max_pixels)
    else:
        image, frames = _open_with_pillow(path, data, max_pixels)
        if frames > 1:
            notes.append(f"{path.name} is animated; using its first frame")
    _check_size(path, image.size, max_pixels)
    icc = image.info.get("icc_profile") or None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = ImageOps.exif_transpose(image) or image
            pixels = to_rgba(image)
    except MemoryError:
        raise
    except Exception as exc:  # damaged EXIF or pixel data: Pillow raises many types
        raise BadInput(f"{path}: corrupt or truncated image ({_short(exc)})") from None
    return InputImage(pixels, path, digest, icc, notes)


def quiet_decoders() -> None:
    """Silence Pillow's and psd-tools' loggers for this process.

    They log the damage they skip ("Unknown key", "More samples per pixel than can be
    decoded"), which logging's fallback handler would print under our one-line errors.
    """
    import logging

    for name in ("PIL", "psd_tools"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _check_file(path: Path, max_pixels: int) -> None:
    """Refuse what is not a regular file (a FIFO or /dev/zero never ends) or is too big.

    The byte limit is an uncompressed 16-bit RGBA image at the pixel limit, plus room
    for metadata: no image format layerctl reads needs more.
    """
    info = path.stat()
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: not a regular file")
    limit = 8 * max_pixels + (64 << 20)
    if info.st_size > limit:
        raise BadInput(
            f"{path}: {info.st_size >> 20} MiB is larger than any image within the pixel limit",
            hint="raise it with --max-pixels",
        )


def _open_with_pillow(path: Path, data: bytes, max_pixels: int) -> tuple[Image.Image, int]:
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
            _check_size(path, image.size, max_pixels)
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


def _open_psd_composite(path: Path, data: bytes, max_pixels: int) -> Image.Image:
    try:
        psd = open_psd(data)
        _check_size(path, psd.size, max_pixels)  # before composite() allocates the canvas
        image = psd.composite()
    except BadInput:
        raise
    except Exception as exc:  # psd-tools raises many types on damaged files
        raise BadInput(f"{path}: not a readable PSD ({_short(exc)})") from None
    if image is None:
        raise BadInput(f"{path}: PSD has no composite image")
    return image


def _check_size(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise BadInput(f"{path}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise BadInput(
            f"{path}: {w}x{h} is {w * h / 1e6:.0f} MP, over the {max_pixels / 1e6:.0f} MP limit",
            hint="raise it with --max-pixels",
        )


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
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]
