"""Reading every input kind into RGBA, and one-line errors for every bad one."""

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerctl.errors import BadInput
from layerctl.imageio import read_image


def _save(path: Path, image: Image.Image, **kw) -> Path:
    image.save(path, **kw)
    return path


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width × height but carries (almost) no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\0" * 16)
    body += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("L", "PNG"),
        ("LA", "PNG"),
        ("RGB", "JPEG"),
        ("RGBA", "WEBP"),
        ("RGB", "BMP"),
        ("RGBA", "TIFF"),
        ("CMYK", "JPEG"),
        ("I;16", "PNG"),
        ("RGB", "GIF"),
    ],
)
def test_modes_become_rgba_uint8(tmp_path, mode, fmt):
    image = Image.new(
        mode,
        (7, 5),
        {"L": 128, "LA": (128, 200), "CMYK": (0, 255, 255, 0), "I;16": 40000}.get(
            mode, (10, 200, 30, 255)[: len(mode)]
        ),
    )
    path = _save(tmp_path / f"x.{fmt.lower()}", image, format=fmt)
    result = read_image(path)
    assert result.pixels.shape == (5, 7, 4) and result.pixels.dtype == np.uint8
    if mode == "I;16":
        assert abs(int(result.pixels[0, 0, 0]) - round(40000 * 255 / 65535)) <= 1
    if mode == "LA":
        assert result.pixels[0, 0, 3] == 200


def test_palette_transparency_is_kept(tmp_path):
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((0, 0), 0)
    path = _save(tmp_path / "p.png", image, transparency=0)
    pixels = read_image(path).pixels
    assert pixels[0, 0, 3] == 0 and tuple(pixels[1, 1]) == (255, 0, 0, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (6, 3), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = _save(tmp_path / "r.jpg", image, exif=exif.tobytes())
    assert read_image(path).pixels.shape == (6, 3, 4)


def test_icc_profile_and_sha256_are_kept(tmp_path):
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = _save(tmp_path / "c.png", Image.new("RGB", (3, 3)), icc_profile=icc)
    result = read_image(path)
    assert result.icc_profile == icc
    import hashlib

    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_animated_gif_uses_first_frame_with_a_note(tmp_path):
    frames = [Image.new("RGB", (4, 4), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "a.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    result = read_image(path)
    assert tuple(result.pixels[0, 0, :3]) == (255, 0, 0)
    assert any("animated" in note for note in result.notes)


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    good = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 9, 9)).save(good, "PNG")
    jpeg = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(jpeg, "JPEG")
    files = {
        "missing": None,
        "empty": b"",
        "truncated png": good.getvalue()[:60],
        "truncated jpeg": jpeg.getvalue()[: len(jpeg.getvalue()) // 3],
        "html as png": b"<!doctype html><html><body>hi</body></html>",
        "huge header": _png_header_only(60000, 60000),
        "2^31 wide": _png_header_only(2**31 - 1, 1),
    }
    paths = {}
    for name, data in files.items():
        path = tmp_path / (name.replace(" ", "_") + ".png")
        if data is not None:
            path.write_bytes(data)
        paths[name] = path
    paths["folder"] = tmp_path
    return paths


def test_bad_inputs_raise_one_line_bad_input(tmp_path):
    for name, path in _bad_inputs(tmp_path).items():
        with pytest.raises(BadInput) as info:
            read_image(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message, name


def test_pixel_limit_is_configurable(tmp_path):
    path = _save(tmp_path / "big.png", Image.new("RGB", (100, 100)))
    with pytest.raises(BadInput, match="--max-pixels"):
        read_image(path, max_pixels=9_999)
    assert read_image(path, max_pixels=10_000).pixels.shape == (100, 100, 4)


CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


def _cmyk_jpeg(path: Path, icc: bytes | None) -> Path:
    """A CMYK JPEG: a cyan patch on white (ink 0), with or without an embedded profile."""
    ink = np.zeros((24, 32, 4), np.uint8)
    ink[4:20, 6:26] = (200, 10, 0, 0)
    extra = {"icc_profile": icc} if icc else {}
    return _save(path, Image.fromarray(ink, "CMYK"), quality=95, **extra)


@pytest.mark.skipif(not CMYK_PROFILE.is_file(), reason="needs Debian's ghostscript profiles")
def test_cmyk_is_converted_through_its_profile_and_the_profile_dropped(tmp_path):
    from PIL import ImageCms

    icc = CMYK_PROFILE.read_bytes()
    path = _cmyk_jpeg(tmp_path / "cmyk.jpg", icc)
    got = read_image(path)
    assert got.icc_profile is None  # a CMYK profile would misdescribe RGB layers
    with Image.open(path) as image:
        naive = np.asarray(image.convert("RGB"))
        srgb = ImageCms.createProfile("sRGB")
        cmyk = ImageCms.getOpenProfile(io.BytesIO(icc))
        managed = ImageCms.profileToProfile(image, cmyk, srgb, outputMode="RGB")
    np.testing.assert_array_equal(got.pixels[..., :3], np.asarray(managed.convert("RGB")))
    assert np.abs(got.pixels[..., :3].astype(int) - naive).max() > 10  # not the naive formula
    assert (got.pixels[..., 3] == 255).all()


def test_cmyk_without_profile_is_converted_naively(tmp_path):
    path = _cmyk_jpeg(tmp_path / "plain.jpg", None)
    got = read_image(path)
    assert got.icc_profile is None
    with Image.open(path) as image:
        np.testing.assert_array_equal(got.pixels[..., :3], np.asarray(image.convert("RGB")))


def test_cmyk_input_gives_a_psd_imagemagick_reads(tmp_path):
    """End to end: no CMYK profile in the RGB result (ImageMagick refused those)."""
    import shutil
    import subprocess

    from layerctl import formats
    from layerctl.stack import Layer, LayerStack

    icc = CMYK_PROFILE.read_bytes() if CMYK_PROFILE.is_file() else None
    got = read_image(_cmyk_jpeg(tmp_path / "cmyk.jpg", icc))
    stack = LayerStack([Layer("all", got.pixels)], icc_profile=got.icc_profile)
    formats.write(stack, tmp_path / "out.psd")
    assert formats.read(tmp_path / "out.psd").icc_profile is None
    identify = "/usr/bin/identify"
    if shutil.which(identify):
        subprocess.run([identify, str(tmp_path / "out.psd")], check=True, capture_output=True)


def test_16_bit_grey_becomes_scaled_uint8_rgba(tmp_path):
    """A 16-bit grey PNG reaches backends as plain 8-bit RGBA, grey in all three channels."""
    grey = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    path = _save(tmp_path / "g16.png", Image.fromarray(grey))
    pixels = read_image(path).pixels
    assert pixels.dtype == np.uint8 and pixels.shape == (30, 40, 4)
    expected = np.round(grey / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(pixels[..., 0], expected)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()
    assert (pixels[..., 3] == 255).all()
