"""A corpus of hostile inputs through the real CLI, each in a memory- and time-limited process.

Every case must end in exit 0 with a complete output, or exit 1 with one ``error:`` line
and nothing written — no hang, no traceback, no internal error, no partial output. The
files are built here: damaged images for ``decompose``, damaged results (PSD, OpenRaster,
PNG stack, PPTX, SVG) for ``compose``, which reads a result and writes one image.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import resource
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sample_stack import make_stack

from layerctl import formats
from layerctl.stack import Layer, LayerStack

MEMORY_LIMIT = 3 << 30  # address space for one CLI run; the classic backend needs < 1 GiB here
SECONDS = 120  # per CLI run; the slowest case takes a few seconds

pytestmark = pytest.mark.slow


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``layerctl ARGS`` in a fresh process with limited address space and a timeout."""
    return subprocess.run(
        [sys.executable, "-m", "layerctl", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SECONDS,
        preexec_fn=_limit_memory,
        # Two threads: each BLAS/OpenMP thread reserves address space, more with more cores.
        env={**os.environ, "COLUMNS": "1000", "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
    )


OWN_LINES = ("wrote ", "warning: ", "error: ")


def assert_clean(result: subprocess.CompletedProcess[str], expected: int) -> None:
    """Exit ``expected``; a failure is exactly one ``error:`` line; never a traceback, and
    nothing on stderr but layerctl's own lines (no library warnings or log messages)."""
    stderr = result.stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert result.returncode == expected, stderr
    if expected == 1:
        assert stderr.startswith("error: ") and stderr.count("\n") == 1, stderr
    assert all(line.lstrip().startswith(OWN_LINES) for line in stderr.splitlines()), stderr
    assert " object at 0x" not in stderr, stderr  # no Python reprs
    assert not re.search(r"\d{20}", stderr), stderr  # no unbounded numbers echoed back


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- images for ``decompose`` ---------------------------------------------------------


def _png(image: Image.Image, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **kw)
    return buffer.getvalue()


def _design(width: int = 48, height: int = 32) -> Image.Image:
    """A background with two shapes: something to decompose."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[...] = (240, 230, 220)
    pixels[height // 4 : height // 2, width // 8 : width // 2] = (200, 30, 30)
    pixels[height // 2 :, width // 2 :] = (30, 60, 200)
    return Image.fromarray(pixels)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width × height but whose IDAT holds a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kw)
    return buffer.getvalue()


def _palette_with_transparency() -> bytes:
    image = _design().convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    return _png(image, transparency=0)


def _animated(fmt: str) -> bytes:
    frames = [_design(), _design().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _sixteen_bit() -> bytes:
    gray = np.asarray(_design().convert("L")).astype(np.uint16) * 257
    gray[0, 0] = 65535 - 1000  # a value 8 bits cannot hold
    return _png(Image.fromarray(gray))  # mode I;16


def _wide() -> bytes:
    """100 000 × 1: a valid image no backend expects."""
    row = np.zeros((1, 100_000, 3), np.uint8)
    row[0, 30_000:60_000] = (200, 30, 30)
    return _png(Image.fromarray(row))


def _black_10000() -> bytes:
    """292 KB of PNG, 100 MP: the classic backend would need ~65 GB (issue 14)."""
    return _png(Image.new("RGB", (10_000, 10_000)))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A 631-byte JPEG whose frame header declares ``width`` x ``height``."""
    data = bytearray(_save(Image.new("RGB", (8, 8)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _tiff_broken_second_page() -> bytes:
    """Two pages; the second page's ImageWidth tag (256) renamed, so it has no width.

    Pillow decodes page one, then fails counting frames (TypeError: Missing dimensions).
    """
    data = bytearray(_save(_design(), "TIFF", save_all=True, append_images=[_design()]))
    first = struct.unpack_from("<I", data, 4)[0]
    count = struct.unpack_from("<H", data, first)[0]
    second = struct.unpack_from("<I", data, first + 2 + 12 * count)[0]
    for entry in range(struct.unpack_from("<H", data, second)[0]):
        at = second + 2 + 12 * entry
        if struct.unpack_from("<H", data, at)[0] == 256:
            struct.pack_into("<H", data, at, 0xFFFE)
    return bytes(data)


GOOD_PNG = _png(_design())
GOOD_JPEG = _save(_design(), "JPEG")

# name -> (file name, bytes, expected exit code)
IMAGES: dict[str, tuple[str, Callable[[], bytes], int]] = {
    "empty file": ("empty.png", lambda: b"", 1),
    "truncated PNG": ("cut-png.png", lambda: GOOD_PNG[: len(GOOD_PNG) // 2], 1),
    "truncated JPEG": ("cut-jpeg.jpg", lambda: GOOD_JPEG[: len(GOOD_JPEG) // 2], 1),
    "JPEG named .png": ("jpeg.png", lambda: GOOD_JPEG, 0),
    "PNG named .jpg": ("png.jpg", lambda: GOOD_PNG, 0),
    "HTML named .png": ("page.png", lambda: b"<!doctype html><html><body>x</body></html>", 1),
    "60000x60000 header": ("huge.png", lambda: png_header_only(60_000, 60_000), 1),
    "2^31x1 header": ("wide-header.png", lambda: png_header_only(2**31 - 1, 1), 1),
    "all-black 10000x10000": ("black.png", _black_10000, 1),
    "JPEG declaring 65500x65500": ("bomb.jpg", lambda: jpeg_declaring(65_500, 65_500), 1),
    "1x1": ("dot.png", lambda: _png(Image.new("RGB", (1, 1), (10, 20, 30))), 0),
    "100000x1": ("line.png", _wide, 0),
    "16-bit": ("gray16.png", _sixteen_bit, 0),
    "CMYK JPEG": ("cmyk-jpeg.jpg", lambda: _save(_design().convert("CMYK"), "JPEG"), 0),
    "CMYK TIFF": ("cmyk-tiff.tif", lambda: _save(_design().convert("CMYK"), "TIFF"), 0),
    "TIFF with a broken second page": ("pages.tif", _tiff_broken_second_page, 1),
    "palette with transparency": ("palette.png", _palette_with_transparency, 0),
    "animated GIF": ("anim-gif.gif", lambda: _animated("GIF"), 0),
    "animated PNG": ("anim-png.png", lambda: _animated("PNG"), 0),
    "animated WebP": ("anim-webp.webp", lambda: _animated("WEBP"), 0),
    "name with spaces": ("my image (1).png", lambda: GOOD_PNG, 0),
    "Unicode name": ("Ébène 文字 🎨.png", lambda: GOOD_PNG, 0),
    "leading dash": ("-n.png", lambda: GOOD_PNG, 0),
}


@pytest.mark.parametrize("case", IMAGES)
def test_hostile_image_through_decompose(tmp_path: Path, case: str) -> None:
    name, build, expected = IMAGES[case]
    src = tmp_path / "in"
    src.mkdir()
    (src / name).write_bytes(build())
    out = tmp_path / "out"
    out.mkdir()
    # "--" ends the options, so a name starting with "-" is still a file.
    # OpenRaster: a PSD cannot hold the 100000 px wide case (test_outputs_safety.py).
    result = run_cli("decompose", "-o", out / "result.ora", "--", src / name, cwd=tmp_path)
    assert_clean(result, expected)
    assert listing(src) == [name]
    assert listing(out) == (["result.ora"] if expected == 0 else [])
    if expected == 0:
        assert formats.read(out / "result.ora").layers


def test_the_corpus_as_one_batch(tmp_path: Path) -> None:
    """All images in one folder: exit 3, a result for each good one, a record for each bad one."""
    src = tmp_path / "in"
    src.mkdir()
    for name, build, _ in IMAGES.values():
        (src / name).write_bytes(build())
    out = tmp_path / "out"
    result = run_cli("decompose", src, "-o", out, "--format", "ora", "--json", cwd=tmp_path)
    assert result.returncode == 3, result.stderr  # stderr: the summary table and failures
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    statuses = {Path(r["input"]).name: r["status"] for r in records}
    assert statuses == {name: "ok" if code == 0 else "failed" for name, _, code in IMAGES.values()}
    assert all("internal error" not in (r["error"] or "") for r in records)
    assert listing(out) == sorted(Path(n).stem + ".ora" for n, _, c in IMAGES.values() if c == 0)


def test_special_files_are_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO would block a read forever, /dev/zero never ends, a symlink loop never resolves."""
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    for source in [fifo, Path("/dev/zero"), tmp_path / "loop.png"]:
        result = run_cli("decompose", source, "-o", tmp_path / "out.psd", cwd=tmp_path)
        assert_clean(result, 1)
        assert not (tmp_path / "out.psd").exists()


@pytest.mark.parametrize("name", ["x.psd", "x.ora", "x.pptx", "x.svg"])
def test_a_fifo_named_like_a_result_is_refused_without_blocking(tmp_path: Path, name: str):
    os.mkfifo(tmp_path / name)
    assert_clean(run_cli("compose", name, "-o", "flat.png", cwd=tmp_path), 1)
    assert listing(tmp_path) == [name]


# --- results for ``compose``: PSD ------------------------------------------------------


def _u32(data: bytes | bytearray, at: int) -> int:
    return struct.unpack_from(">I", data, at)[0]


def _psd_offsets(data: bytes) -> dict[str, int]:
    """Where the PSD sections and the first layer record start (Adobe PSD spec, "File Header")."""
    color_mode = 26
    resources = color_mode + 4 + _u32(data, color_mode)
    layer_mask = resources + 4 + _u32(data, resources)
    first_record = layer_mask + 4 + 4 + 2
    return {
        "color mode": color_mode,
        "resources": resources,
        "layer and mask": layer_mask,
        "layer info": layer_mask + 4,
        "first record": first_record,
        "channels of first record": first_record + 16,
    }


def _designed_stack() -> LayerStack:
    """A background, a shape and a group: a plausible result with a decomposable composite."""
    background = np.asarray(_design().convert("RGBA")).copy()
    shape = np.zeros_like(background)
    shape[4:12, 30:44] = (20, 160, 40, 255)
    return LayerStack([Layer("bg", background), Layer.group("g", [Layer("shape", shape)])])


def _psd(stack: LayerStack | None = None) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.psd"
        formats.write(stack or _designed_stack(), path)
        return path.read_bytes()


def _patched(data: bytes, field: str, value: int, size: int = 4) -> bytes:
    out = bytearray(data)
    at = _psd_offsets(data)[field]
    out[at : at + size] = value.to_bytes(size, "big")
    return bytes(out)


def _psd_header(width: int, height: int, channels: int = 4) -> bytes:
    out = bytearray(_psd())
    struct.pack_into(">HII", out, 12, channels, height, width)
    return bytes(out)


def _nested(depth: int) -> LayerStack:
    """``depth`` groups inside each other around one small layer."""
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[2:6, 2:6] = (200, 30, 30, 255)
    layer = Layer("leaf", pixels)
    for level in range(depth):
        layer = Layer.group(f"g{level}", [layer])
    return LayerStack([Layer("bg", np.full((8, 8, 4), 255, np.uint8)), layer])


def _zero_size_layers() -> LayerStack:
    """A background under two fully transparent layers, which PSD stores as 0×0 layers."""
    background = np.asarray(_design().convert("RGBA")).copy()
    empty = np.zeros_like(background)
    return LayerStack([Layer("bg", background), Layer("a", empty), Layer("b", empty.copy())])


def _huge_layer_rect() -> bytes:
    data = bytearray(_psd())
    at = _psd_offsets(data)["first record"]
    struct.pack_into(">iiii", data, at, 0, 0, 2**30, 2**30)  # top, left, bottom, right
    return bytes(data)


# name -> (bytes, exit code of compose (reads the layers), of decompose (reads the merged image))
PSDS: dict[str, tuple[Callable[[], bytes], int, int]] = {
    "truncated header": (lambda: _psd()[:20], 1, 1),
    "truncated in the layers": (
        lambda: (d := _psd())[: _psd_offsets(d)["first record"] + 40],
        1,
        1,
    ),
    "truncated merged image": (lambda: _psd()[:-200], 0, 1),
    "bogus color-mode length": (lambda: _patched(_psd(), "color mode", 0x7FFFFFF0), 1, 1),
    "bogus resources length": (lambda: _patched(_psd(), "resources", 0xFFFFFFFF), 1, 1),
    "bogus layer-and-mask length": (
        lambda: _patched(_psd(), "layer and mask", 0x7FFFFFFF),
        1,
        1,
    ),
    "bogus layer-info length": (lambda: _patched(_psd(), "layer info", 0xFFFFFFF0), 1, 1),
    "header 30000x30000": (lambda: _psd_header(30_000, 30_000), 1, 1),
    "header 0x0": (lambda: _psd_header(0, 0), 1, 1),
    "56 channels in header": (lambda: _psd_header(48, 32, channels=56), 0, 1),
    "65535 channels in header": (lambda: _psd_header(48, 32, channels=0xFFFF), 1, 1),
    "65535 channels in a layer": (
        lambda: _patched(_psd(), "channels of first record", 0xFFFF, size=2),
        1,
        1,
    ),
    "layer rect 2^30 square": (_huge_layer_rect, 1, 0),
    "40 nested groups": (lambda: _psd(_nested(40)), 0, 0),
    "200 nested groups": (lambda: _psd(_nested(200)), 1, 0),
    "zero-size layers": (lambda: _psd(_zero_size_layers()), 0, 0),
    "unknown tagged block": (lambda: _psd().replace(b"8BIMluni", b"8BIMlunX", 1), 0, 0),
}


@pytest.mark.parametrize("case", PSDS)
def test_hostile_psd_through_compose_and_decompose(tmp_path: Path, case: str) -> None:
    build, compose_code, decompose_code = PSDS[case]
    (tmp_path / "x.psd").write_bytes(build())
    result = run_cli("compose", "x.psd", "-o", "flat.png", cwd=tmp_path)
    assert_clean(result, compose_code)
    assert listing(tmp_path) == sorted(["x.psd"] + (["flat.png"] if compose_code == 0 else []))
    # The same file as an input image: decompose reads its merged image instead.
    result = run_cli("decompose", "x.psd", "-o", "layers.ora", cwd=tmp_path)
    assert_clean(result, decompose_code)
    assert ("layers.ora" in listing(tmp_path)) == (decompose_code == 0)


# --- results for ``compose``: OpenRaster -----------------------------------------------

STACK_XML = (
    '<?xml version="1.0"?><image version="0.0.5" w="8" h="8">'
    '<stack><layer name="a" src="{src}" x="0" y="0"/></stack></image>'
)


def _ora(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster", zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _layer_png() -> bytes:
    return _png(Image.new("RGBA", (8, 8), (200, 30, 30, 255)))


def _zip_bomb_xml() -> bytes:
    """stack.xml inflating to 200 MB from ~200 KB: whitespace after the real document."""
    header = STACK_XML.format(src="data/a.png").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"image/openraster", zipfile.ZIP_STORED)
        with archive.open("stack.xml", "w", force_zip64=True) as member:
            member.write(header)
            block = b" " * (1 << 20)
            for _ in range(200):
                member.write(block)
        archive.writestr("data/a.png", _layer_png())
    return buffer.getvalue()


def _zip_bomb_png() -> bytes:
    """A layer PNG whose IHDR declares 60000×60000 (~14 GB of pixels) in a tiny entry."""
    return _ora(
        {
            "stack.xml": STACK_XML.format(src="data/a.png").encode(),
            "data/a.png": png_header_only(60_000, 60_000),
        }
    )


def _billion_laughs() -> bytes:
    entities = '<!ENTITY a0 "ha">' + "".join(
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    )
    xml = f'<?xml version="1.0"?><!DOCTYPE image [{entities}]>' + STACK_XML.split("?>", 1)[
        1
    ].replace('name="a"', 'name="&a9;"').format(src="data/a.png")
    return _ora({"stack.xml": xml.encode(), "data/a.png": _layer_png()})


def one_member_ora(side: int, layers: int) -> bytes:
    """A ``side`` x ``side`` canvas whose ``layers`` layers all point at one 1x1 PNG:
    a few hundred bytes that expand to layers x side² pixels (issue 14)."""
    nodes = '<layer name="l" src="data/a.png" x="0" y="0"/>' * layers
    xml = f'<?xml version="1.0"?><image w="{side}" h="{side}"><stack>{nodes}</stack></image>'
    return _ora({"stack.xml": xml.encode(), "data/a.png": _png(Image.new("RGBA", (1, 1), "red"))})


def _not_png_member() -> bytes:
    """A layer "PNG" that is text: Pillow's message names a BytesIO object."""
    return _ora({"stack.xml": STACK_XML.format(src="data/a.png").encode(), "data/a.png": b"text"})


def _long_number_canvas() -> bytes:
    xml = STACK_XML.replace('w="8"', f'w="{"9" * 400}"').format(src="data/a.png")
    return _ora({"stack.xml": xml.encode(), "data/a.png": _layer_png()})


def _nested_ora(depth: int) -> bytes:
    inner = '<layer name="leaf" src="data/a.png" x="0" y="0"/>'
    for level in range(depth):
        inner = f'<stack name="g{level}">{inner}</stack>'
    xml = f'<?xml version="1.0"?><image w="8" h="8"><stack>{inner}</stack></image>'
    return _ora({"stack.xml": xml.encode(), "data/a.png": _layer_png()})


ORAS: dict[str, tuple[Callable[[], bytes], int]] = {
    "zip bomb stack.xml": (_zip_bomb_xml, 1),
    "layer PNG declaring 60000x60000": (_zip_bomb_png, 1),
    "billion laughs": (_billion_laughs, 1),
    "src with path traversal": (
        lambda: _ora({"stack.xml": STACK_XML.format(src="../../../etc/passwd").encode()}),
        1,
    ),
    "entry named ../../evil.png": (
        lambda: _ora(
            {
                "stack.xml": STACK_XML.format(src="../../evil.png").encode(),
                "../../evil.png": _layer_png(),
            }
        ),
        0,
    ),
    "missing stack.xml": (lambda: _ora({"data/a.png": _layer_png()}), 1),
    "canvas 10^9 wide": (
        lambda: _ora(
            {
                "stack.xml": STACK_XML.replace('w="8"', 'w="1000000000"')
                .format(src="data/a.png")
                .encode(),
                "data/a.png": _layer_png(),
            }
        ),
        1,
    ),
    "200 nested stacks": (lambda: _nested_ora(200), 0),
    "5000 nested stacks": (lambda: _nested_ora(5000), 1),
    "not a zip": (lambda: b"PK\x03\x04" + b"\0" * 100, 1),
    "16 layers of 10000x10000 on one 1x1 PNG": (lambda: one_member_ora(10_000, 16), 1),
    "100000 layers": (lambda: one_member_ora(8, 100_000), 1),
    "2000 layers on one PNG": (lambda: one_member_ora(8, 2000), 0),
    "a layer PNG that is not one": (_not_png_member, 1),
    "a 400-digit canvas width": (_long_number_canvas, 1),
}


@pytest.mark.parametrize("case", ORAS)
def test_hostile_ora_through_compose(tmp_path: Path, case: str) -> None:
    build, expected = ORAS[case]
    work = tmp_path / "a" / "b" / "c"  # room for "../../" to point somewhere real
    work.mkdir(parents=True)
    (work / "x.ora").write_bytes(build())
    result = run_cli("compose", "x.ora", "-o", "flat.png", cwd=work)
    assert_clean(result, expected)
    assert listing(tmp_path) == sorted(
        ["a", "a/b", "a/b/c", "a/b/c/x.ora"] + (["a/b/c/flat.png"] if expected == 0 else [])
    )


# --- results for ``compose``: PNG stacks -----------------------------------------------


def _stack_folder(root: Path) -> Path:
    folder = root / "stack"
    formats.write(make_stack(), folder)
    return folder


def _edit_manifest(folder: Path, change: Callable[[dict], None]) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def _first_file(value: str) -> Callable[[Path], None]:
    return lambda folder: _edit_manifest(folder, lambda m: m["layers"][0].update(file=value))


def _symlink_out(folder: Path) -> None:
    secret = folder.parent / "secret.png"
    Image.new("RGBA", (29, 19)).save(secret)
    target = folder / "link.png"
    target.symlink_to(secret)
    _first_file("link.png")(folder)


def _fifo_layer(folder: Path) -> None:
    os.mkfifo(folder / "fifo.png")
    _first_file("fifo.png")(folder)


def _fifo_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    os.mkfifo(folder / "manifest.json")


def _deep_json(folder: Path) -> None:
    (folder / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)


def _huge_canvas(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m["canvas"].update(width=10**9, height=10**9))


def _entries(count: int) -> Callable[[Path], None]:
    """``count`` manifest entries, all on the first layer's file (issue 14: 100000, 94 s)."""
    return lambda folder: _edit_manifest(
        folder, lambda m: m.update(layers=[{**m["layers"][0], "parent": None}] * count)
    )


def _long_number_width(folder: Path) -> None:
    _edit_manifest(folder, lambda m: m["canvas"].update(width=int("9" * 400)))


def _parentless(folder: Path) -> None:
    _edit_manifest(folder, lambda m: [entry.pop("parent") for entry in m["layers"]])


MANIFESTS: dict[str, tuple[Callable[[Path], None], int]] = {
    "file ../../etc/passwd": (_first_file("../../etc/passwd"), 1),
    "file /etc/passwd": (_first_file("/etc/passwd"), 1),
    "file with NUL": (_first_file("a\x00b.png"), 1),
    "file is the folder": (_first_file("."), 1),
    "symlink out of the folder": (_symlink_out, 1),
    "FIFO as a layer": (_fifo_layer, 1),
    "FIFO as manifest.json": (_fifo_manifest, 1),
    "JSON nested 100000 deep": (_deep_json, 1),
    "canvas 10^9 squared": (_huge_canvas, 1),
    "entries without parent": (_parentless, 0),
    "100000 entries": (_entries(100_000), 1),
    "2000 entries on one file": (_entries(2000), 0),
    "a 400-digit canvas width": (_long_number_width, 1),
}


@pytest.mark.parametrize("case", MANIFESTS)
def test_hostile_png_stack_through_compose(tmp_path: Path, case: str) -> None:
    damage, expected = MANIFESTS[case]
    folder = _stack_folder(tmp_path)
    damage(folder)
    before = listing(tmp_path)
    result = run_cli("compose", "stack", "-o", "flat.png", cwd=tmp_path)
    assert_clean(result, expected)
    assert listing(tmp_path) == sorted(before + (["flat.png"] if expected == 0 else []))


# --- results for ``compose``: PPTX and SVG ----------------------------------------------
# Zip bombs, entity expansion, references out of the file and huge declared sizes. Only
# files layerctl wrote are read back, so each case starts from one and changes a part.


def _tiny_stack() -> LayerStack:
    pixels = np.zeros((8, 8, 4), np.uint8)
    pixels[2:6, 2:6] = (200, 30, 30, 255)
    return LayerStack([Layer("a", pixels)], {"backend": "classic"})


def _pptx_parts() -> dict[str, bytes]:
    pytest.importorskip("pptx", reason="writing PPTX needs the pptx extra (python-pptx)")
    from layerctl.formats import pptx

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"seed-{os.getpid()}.pptx"
    pptx.write(_tiny_stack(), path)
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    path.unlink()
    return parts


def _pptx(change: Callable[[dict[str, bytes]], None]) -> Callable[[], bytes]:
    """A PPTX layerctl wrote, with ``change`` applied to its parts, zipped again."""

    def build() -> bytes:
        parts = _pptx_parts()
        change(parts)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in parts.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    return build


SLIDE = "ppt/slides/slide1.xml"
SLIDE_RELS = "ppt/slides/_rels/slide1.xml.rels"
CUSTOM = "docProps/custom.xml"
LAUGHS = (
    '<!DOCTYPE x [<!ENTITY a0 "ha">'
    + "".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10))
    + "]>"
)


def _replace(part: str, old: bytes, new: bytes) -> Callable[[dict[str, bytes]], None]:
    def change(parts: dict[str, bytes]) -> None:
        assert old in parts[part], (part, old)
        parts[part] = parts[part].replace(old, new, 1)

    return change


def _pptx_bomb(megabytes: int) -> Callable[[], bytes]:
    """custom.xml inflating to ``megabytes`` MB at deflate's ~1000:1: whitespace after the
    real document (200: over the size limit; 50: under it, caught by its ratio)."""

    def build() -> bytes:
        parts = _pptx_parts()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in parts.items():
                if name != CUSTOM:
                    archive.writestr(name, data)
            with archive.open(CUSTOM, "w", force_zip64=True) as member:
                member.write(parts[CUSTOM])
                for _ in range(megabytes):
                    member.write(b" " * (1 << 20))
        return buffer.getvalue()

    return build


def _record(width: int, height: int) -> Callable[[dict[str, bytes]], None]:
    old = b'"width": 8, "height": 8'
    return _replace(CUSTOM, old, f'"width": {width}, "height": {height}'.encode())


def _media(data: bytes) -> Callable[[dict[str, bytes]], None]:
    def change(parts: dict[str, bytes]) -> None:
        (name,) = [n for n in parts if n.startswith("ppt/media/")]
        parts[name] = data

    return change


def _text_box(parts: dict[str, bytes]) -> None:
    shape = (
        b'<p:sp><p:nvSpPr><p:cNvPr id="9" name="Text"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr>'
        b"<p:spPr/></p:sp></p:spTree>"
    )
    parts[SLIDE] = parts[SLIDE].replace(b"</p:spTree>", shape)


def _foreign_pptx() -> bytes:
    pytest.importorskip("pptx", reason="needs python-pptx")
    from pptx import Presentation

    buffer = io.BytesIO()
    Presentation().save(buffer)
    return buffer.getvalue()


PPTXS: dict[str, tuple[Callable[[], bytes], int]] = {
    "as written": (_pptx(lambda parts: None), 0),
    "zip bomb custom.xml, 200 MB": (_pptx_bomb(200), 1),
    "zip bomb custom.xml, 50 MB": (_pptx_bomb(50), 1),
    "billion laughs in the slide": (
        _pptx(_replace(SLIDE, b"?>", b"?>" + LAUGHS.encode())),
        1,
    ),
    "external entity in custom.xml": (
        _pptx(_replace(CUSTOM, b"?>", b'?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>')),
        1,
    ),
    "picture linked to a URL": (
        _pptx(
            _replace(SLIDE_RELS, b'Target="../media/', b'TargetMode="External" Target="http://x/')
        ),
        1,
    ),
    "picture at ../../../etc/passwd": (
        _pptx(_replace(SLIDE_RELS, b'Target="../media/', b'Target="../../../../etc/passwd#')),
        1,
    ),
    "canvas 10^9 squared": (_pptx(_record(10**9, 10**9)), 1),
    "picture PNG declaring 60000x60000": (_pptx(_media(png_header_only(60_000, 60_000))), 1),
    "a text box on the slide": (_pptx(_text_box), 1),
    "a PPTX layerctl did not write": (_foreign_pptx, 1),
    "not a zip": (lambda: b"PK\x03\x04" + b"\0" * 100, 1),
}


@pytest.mark.parametrize("case", PPTXS)
def test_hostile_pptx_through_compose(tmp_path: Path, case: str) -> None:
    build, expected = PPTXS[case]
    (tmp_path / "x.pptx").write_bytes(build())
    result = run_cli("compose", "x.pptx", "-o", "flat.png", cwd=tmp_path)
    assert_clean(result, expected)
    assert listing(tmp_path) == sorted(["x.pptx"] + (["flat.png"] if expected == 0 else []))


def _svg(change: Callable[[str], str] = lambda text: text) -> Callable[[], bytes]:
    """An SVG layerctl wrote, with ``change`` applied to its text."""

    def build() -> bytes:
        from layerctl.formats import svg

        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"seed-{os.getpid()}.svg"
        svg.write(_tiny_stack(), path)
        text = path.read_text(encoding="utf-8")
        path.unlink()
        return change(text).encode()

    return build


def _href(value: str) -> Callable[[str], str]:
    return lambda text: re.sub(r'xlink:href="[^"]*"', f'xlink:href="{value}"', text)


def _svg_record(width: int, height: int) -> Callable[[str], str]:
    def change(text: str) -> str:
        old = '"width": 8, "height": 8'
        assert old in text
        return text.replace(old, f'"width": {width}, "height": {height}')

    return change


def _nested_svg(depth: int) -> Callable[[str], str]:
    def change(text: str) -> str:
        start = text.index("  <image")
        end = text.index("</svg>")
        inner = text[start:end]
        for level in range(depth):
            inner = f'<g id="g{level}">{inner}</g>'
        return text[:start] + inner + text[end:]

    return change


SVGS: dict[str, tuple[Callable[[], bytes], int]] = {
    "as written": (_svg(), 0),
    "billion laughs": (_svg(lambda t: t.replace("?>", "?>" + LAUGHS, 1)), 1),
    "external entity": (
        _svg(lambda t: t.replace("?>", '?><!DOCTYPE svg [<!ENTITY e SYSTEM "/etc/passwd">]>', 1)),
        1,
    ),
    "xlink:href to a local file": (_svg(_href("file:///etc/passwd")), 1),
    "xlink:href to a relative path": (_svg(_href("../../secret.png")), 1),
    "xlink:href to a URL": (_svg(_href("http://example.com/a.png")), 1),
    "href (SVG 2) to a URL": (
        _svg(lambda t: _href("http://example.com/a.png")(t).replace("xlink:href", "href")),
        1,
    ),
    "a JPEG data URI": (_svg(_href("data:image/jpeg;base64,AAAA")), 1),
    "canvas 10^9 squared": (_svg(_svg_record(10**9, 10**9)), 1),
    "picture PNG declaring 60000x60000": (
        _svg(
            _href(
                "data:image/png;base64,"
                + base64.b64encode(png_header_only(60_000, 60_000)).decode()
            )
        ),
        1,
    ),
    "a path beside the pictures": (
        _svg(lambda t: t.replace("</svg>", '<path d="M0 0L8 8"/></svg>')),
        1,
    ),
    "an SVG layerctl did not write": (
        lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
        1,
    ),
    "200 nested groups": (_svg(_nested_svg(200)), 0),
    "5000 nested groups": (_svg(_nested_svg(5000)), 1),
    "not XML": (lambda: b"<svg", 1),
}


@pytest.mark.parametrize("case", SVGS)
def test_hostile_svg_through_compose(tmp_path: Path, case: str) -> None:
    build, expected = SVGS[case]
    (tmp_path / "x.svg").write_bytes(build())
    result = run_cli("compose", "x.svg", "-o", "flat.png", cwd=tmp_path)
    assert_clean(result, expected)
    assert listing(tmp_path) == sorted(["x.svg"] + (["flat.png"] if expected == 0 else []))
