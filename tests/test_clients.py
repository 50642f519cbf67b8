"""Real third-party programs open our files right: ImageMagick, GIMP and Krita.

Each program must see our layers and flatten the file to our composite (PSNR ≥ 40 dB).
Tests skip, saying why, when a program is missing; on Debian they come from the
``imagemagick``, ``gimp``, ``krita`` and ``xvfb`` packages.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_stack import make_stack, tree

from layerctl import formats
from layerctl.stack import LayerStack

pytestmark = [pytest.mark.slow, pytest.mark.clients]
MIN_PSNR = 40.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def flat(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[LayerStack, Path]:
    """Our stack written once as PSD, PSB and ORA, into a folder the clients share."""
    folder = tmp_path_factory.mktemp("clients")
    stack = make_stack()
    for name in ("stack.psd", "stack.psb", "stack.ora"):
        formats.write(stack, folder / name)
    return stack, folder


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr[-2000:]}"
    return done


def _imagemagick() -> tuple[str, str]:
    """``convert`` and ``identify`` of a real ImageMagick (the first on PATH may not be)."""
    for convert in dict.fromkeys(filter(None, [shutil.which("convert"), "/usr/bin/convert"])):
        identify = Path(convert).with_name("identify")
        try:
            version = subprocess.run([convert, "-version"], capture_output=True, text=True).stdout
        except OSError:
            continue
        if "ImageMagick" in version and identify.exists():
            return convert, str(identify)
    pytest.skip("ImageMagick is not installed (Debian package imagemagick)")


@pytest.mark.parametrize("name", ["stack.psd", "stack.psb"])
def test_imagemagick_lists_merged_and_layers_and_flattens_psd(
    results, tmp_path: Path, name: str
) -> None:
    convert, identify = _imagemagick()
    stack, folder = results
    psd = folder / name
    frames = _run([identify, str(psd)]).stdout.strip().splitlines()
    # ImageMagick lists the merged image, then the pixel layers; it skips groups and
    # 0×0 (empty) layers.
    painted = [layer for layer in stack.leaves() if not layer.is_empty()]
    assert len(frames) == 1 + len(painted)
    _run([convert, f"{psd}[0]", str(tmp_path / "merged.png")])
    _run([convert, str(psd), "-delete", "0", "-background", "none", "-layers", "merge",
          "+repage", str(tmp_path / "layers.png")])  # fmt: skip
    assert psnr(flat(tmp_path / "merged.png"), stack.composite()) >= MIN_PSNR
    assert psnr(flat(tmp_path / "layers.png"), stack.composite()) >= MIN_PSNR


GIMP_SCRIPT = """
(define (count-items items)
  (let loop ((xs (vector->list items)) (n 0))
    (if (null? xs) n
        (loop (cdr xs)
              (+ n 1 (if (= (car (gimp-item-is-group (car xs))) 1)
                         (count-items (cadr (gimp-item-get-children (car xs))))
                         0))))))
(let* ((img (car (gimp-file-load RUN-NONINTERACTIVE "{psd}" "{psd}")))
       (port (open-output-file "{count}")))
  (display (count-items (cadr (gimp-image-get-layers img))) port)
  (close-output-port port)
  (let ((merged (car (gimp-image-merge-visible-layers img CLIP-TO-IMAGE))))
    (file-png-save2 RUN-NONINTERACTIVE img merged "{png}" "{png}" 0 9 0 0 0 0 0 0 1)))
"""


def test_gimp_sees_every_layer_and_group_and_flattens_psd(results, tmp_path: Path) -> None:
    gimp = shutil.which("gimp-console") or shutil.which("gimp-console-2.10")
    if gimp is None:
        pytest.skip("GIMP is not installed (Debian package gimp; needs gimp-console)")
    stack, folder = results
    count, png = tmp_path / "count.txt", tmp_path / "flat.png"
    script = GIMP_SCRIPT.format(psd=folder / "stack.psd", count=count, png=png)
    _run([gimp, "-i", "-d", "-f", "-b", script, "-b", "(gimp-quit 0)"])
    assert int(count.read_text()) == len(list(stack.walk()))  # layers and groups
    assert psnr(flat(png), stack.composite()) >= MIN_PSNR


def test_gimp_loads_our_psd_without_warnings(results) -> None:
    """The full ``gimp`` (not gimp-console) reports exiv2's complaints about our XMP."""
    gimp = shutil.which("gimp")
    if gimp is None:
        pytest.skip("GIMP is not installed (Debian package gimp)")
    _, folder = results
    psd = folder / "stack.psd"
    load = f'(gimp-file-load RUN-NONINTERACTIVE "{psd}" "{psd}")'
    done = _run([gimp, "-i", "-b", load, "-b", "(gimp-quit 0)"])
    assert "XMP" not in done.stderr and "namespace" not in done.stderr


def _krita() -> list[str]:
    krita, xvfb = shutil.which("krita"), shutil.which("xvfb-run")
    if krita is None or xvfb is None:
        pytest.skip("Krita needs the Debian packages krita and xvfb (for xvfb-run)")
    return [xvfb, "-a", krita, "--export", "--export-filename"]


def _run_krita(args: list[str], tries: int = 3) -> None:
    """xvfb-run -a can lose a race for its display number to another X server starting
    at the same moment (Krita then aborts: "could not connect to display"): try again."""
    for _ in range(tries):
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
        if "could not connect to display" not in done.stderr:
            break
    assert done.returncode == 0, f"{args[0]} failed: {done.stderr[-2000:]}"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("stack.ora", "krita.psd"), ("stack.psd", "krita.ora"), ("stack.psb", "krita.ora")],
)
def test_krita_flattens_our_file_and_keeps_its_layers(
    results, tmp_path: Path, ours: str, theirs: str
) -> None:
    """Krita flattens our file to our composite, and re-saved in the other format it
    holds the same tree (names, groups, visibility, pixels) for our reader."""
    export = _krita()
    stack, folder = results
    png = tmp_path / "flat.png"
    _run_krita([*export, str(png), str(folder / ours)])
    assert psnr(flat(png), stack.composite()) >= MIN_PSNR
    _run_krita([*export, str(tmp_path / theirs), str(folder / ours)])
    assert tree(formats.read(tmp_path / theirs)) == tree(stack)
