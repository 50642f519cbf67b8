"""Our PPTX and SVG drawn by the programs people open them with: LibreOffice Impress,
Chromium, librsvg (``rsvg-convert``) and Inkscape must each show the input poster.

The result is the classic decomposition of examples/poster.png, with two layers put in
a group and a hidden magenta layer on top (a renderer that showed it, or lost a layer,
fails the PSNR by far). Each render is compared with the input at PSNR >= 40 dB.
Sizes: a PPTX pixel is 9525 EMU (96 dpi) and LibreOffice's PNG export renders a slide
at 96 dpi, so its PNG has the canvas's size with no resizing; an SVG user unit is one
pixel and Chromium draws the page at device scale 1. Tests skip, saying why, when a
program is missing (Debian packages libreoffice-impress, chromium, librsvg2-bin,
inkscape). With LAYERCTL_SCREENSHOTS=DIR the renders are also saved there (the
README's pictures come from it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from chromium import needs_chromium, run_chromium
from PIL import Image

from layerctl import formats
from layerctl.stack import Layer, LayerStack

pytestmark = [pytest.mark.slow, pytest.mark.clients]
MIN_PSNR = 40.0
POSTER = Path(__file__).parent.parent / "examples" / "poster.png"
SCREENSHOTS = os.environ.get("LAYERCTL_SCREENSHOTS")  # read before conftest clears LAYERCTL_*


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def poster() -> np.ndarray:
    with Image.open(POSTER) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[LayerStack, Path]:
    """The poster's layers, grouped and with a hidden layer, as poster.pptx and poster.svg."""
    import layerctl

    pytest.importorskip("pptx", reason="writing PPTX needs the pptx extra (python-pptx)")
    layers = layerctl.decompose(str(POSTER), layers=4, backend="classic", seed=0).layers
    height, width = layers[0].pixels.shape[:2]
    magenta = np.zeros((height, width, 4), np.uint8)
    magenta[...] = (255, 0, 255, 255)
    grouped = [layers[0], Layer.group("Shapes", layers[1:3]), *layers[3:]]
    stack = LayerStack([*grouped, Layer("hidden", magenta, visible=False)], {"test": "poster"})
    folder = tmp_path_factory.mktemp("renders")
    for name in ("poster.pptx", "poster.svg"):
        formats.write(stack, folder / name)
    return stack, folder


def _rendered(path: Path, size: tuple[int, int], poster: np.ndarray, name: str) -> None:
    """``path`` (a render) has the canvas's size and shows the poster; kept if asked."""
    with Image.open(path) as image:
        assert image.size == size, f"{name} rendered {image.size}, the canvas is {size}"
        pixels = np.asarray(image.convert("RGB"))
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(SCREENSHOTS) / f"{name}.png")
    assert psnr(pixels, poster) >= MIN_PSNR, f"{name}: {psnr(pixels, poster):.1f} dB"


def _program(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (Debian package {package})")
    return found


def _soffice(tmp_path: Path, *args: str) -> None:
    soffice = _program("soffice", "libreoffice-impress")
    profile = (tmp_path / "lo-profile").as_uri()  # its own: a running office would take it
    done = subprocess.run(
        [soffice, f"-env:UserInstallation={profile}", "--headless", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_impress_draws_the_pptx_as_the_input(results, poster, tmp_path: Path) -> None:
    stack, folder = results
    _soffice(
        tmp_path, "--convert-to", "png", "--outdir", str(tmp_path), str(folder / "poster.pptx")
    )
    _rendered(tmp_path / "poster.png", stack.size, poster, "impress")


def test_impress_sees_every_layer_and_the_group(results, tmp_path: Path) -> None:
    """Impress's own file (ODP) of our slide: a named shape per layer, the group a group,
    the hidden layer hidden."""
    stack, folder = results
    _soffice(
        tmp_path, "--convert-to", "odp", "--outdir", str(tmp_path), str(folder / "poster.pptx")
    )
    with zipfile.ZipFile(tmp_path / "poster.odp") as archive:
        content = archive.read("content.xml").decode()
    names = re.findall(r'<draw:(?:frame|g)[^>]* draw:name="([^"]*)"', content)
    assert sorted(names) == sorted(layer.name for layer in stack.walk())
    assert re.search(r'<draw:g[^>]* draw:name="Shapes"', content)
    shown = {
        name: 'display="none"' not in tag  # LibreOffice writes drawooo:display
        for tag, name in re.findall(r'(<draw:frame[^>]* draw:name="([^"]*)"[^>]*>)', content)
    }
    assert shown == {layer.name: layer.visible for layer in stack.leaves()}


def _svg_page(folder: Path, size: tuple[int, int]) -> Path:
    """A page showing poster.svg through an <img> at its size, at the top left."""
    page = folder / "page.html"
    page.write_text(
        "<!doctype html><style>html,body{margin:0;overflow:hidden}img{display:block}</style>"
        f'<img src="poster.svg" width="{size[0]}" height="{size[1]}">'
    )
    return page


@needs_chromium
def test_chromium_draws_the_svg_as_the_input(results, poster, tmp_path: Path) -> None:
    stack, folder = results
    page = _svg_page(folder, stack.size)
    shot = tmp_path / "chromium.png"
    window = f"--window-size={stack.size[0]},{stack.size[1]}"
    flags = ["--hide-scrollbars", "--force-device-scale-factor=1", window]
    run_chromium(tmp_path, *flags, f"--screenshot={shot}", page.as_uri())
    _rendered(shot, stack.size, poster, "chromium")


def test_rsvg_draws_the_svg_as_the_input(results, poster, tmp_path: Path) -> None:
    stack, folder = results
    rsvg = _program("rsvg-convert", "librsvg2-bin")
    out = tmp_path / "rsvg.png"
    subprocess.run([rsvg, str(folder / "poster.svg"), "-o", str(out)], check=True, timeout=120)
    _rendered(out, stack.size, poster, "rsvg")


def test_inkscape_exports_the_svg_as_the_input(results, poster, tmp_path: Path) -> None:
    stack, folder = results
    inkscape = _program("inkscape", "inkscape")
    out = tmp_path / "inkscape.png"
    done = subprocess.run(
        [inkscape, "--export-type=png", f"--export-filename={out}", str(folder / "poster.svg")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},  # its preferences, not the user's
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _rendered(out, stack.size, poster, "inkscape")
