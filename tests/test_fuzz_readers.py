"""Fuzzing the result readers: mutated PSD, OpenRaster, PNG-stack, PPTX and SVG files.

Every mutation of a valid file must read back as a LayerStack or fail with one line of
BadResult — any other exception, a hang or an allocation the declared sizes did not
bound is a bug. CI runs ``LAYERCTL_FUZZ_EXAMPLES`` (default 200) examples per reader;
set it higher for a longer local session.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import resource
import signal
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from optional import needs_pptx, writable
from PIL import Image
from sample_stack import make_stack

from layerctl import formats
from layerctl.errors import BadInput, BadResult, OutputError
from layerctl.formats import canvas, psd
from layerctl.imageio import read_image

EXAMPLES = int(os.environ.get("LAYERCTL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 200,  # CI: the same examples every run; long sessions explore
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Edge values for 1-, 2- and 4-byte fields: sizes, counts, lengths and offsets.
INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]
SECONDS_PER_READ = 20
MEMORY_HEADROOM = 3 << 30  # bytes of address space a read may add to the test process
LIMIT_PIXELS = 1 << 20  # the readers' pixel budgets during the fuzz, to keep reads cheap
BACK = {  # what each read is written back as
    "psd": "back.psd",
    "ora": "back.ora",
    "png": "back",
    "pptx": "back.pptx",
    "svg": "back.svg",
}


class Hang(BaseException):
    """Raised by the alarm; a BaseException so the readers' ``except Exception`` passes it."""


@contextlib.contextmanager
def bounded() -> Iterator[None]:
    """Turn a hang into Hang and an unbounded allocation into MemoryError, for one read."""

    def alarm(signum: int, frame: object) -> None:
        raise Hang(f"a read took over {SECONDS_PER_READ} s")

    old_handler = signal.signal(signal.SIGALRM, alarm)
    old_limit = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + MEMORY_HEADROOM, old_limit[1]))
    signal.alarm(SECONDS_PER_READ)
    try:
        yield
    finally:
        signal.alarm(0)
        resource.setrlimit(resource.RLIMIT_AS, old_limit)
        signal.signal(signal.SIGALRM, old_handler)


def _address_space() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@pytest.fixture(autouse=True)
def _small_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(canvas, "MAX_CANVAS_PIXELS", LIMIT_PIXELS)
    monkeypatch.setattr(canvas, "MAX_STACK_PIXELS", 16 * LIMIT_PIXELS)


READS = {"count": 0}  # examples run in this session, printed at the end with -s


@pytest.fixture(scope="module", autouse=True)
def _report_count() -> Iterator[None]:
    yield
    print(f"\nfuzz: {READS['count']} reads of mutated files")


def check_read(path: Path, out: Path) -> None:
    """The property: one line of BadResult that is not an allocation failure, or a
    LayerStack that every writer can write back (as ``split`` does) into ``out``.
    """
    READS["count"] += 1
    try:
        with bounded():
            stack = formats.read(path)
    except BadResult as exc:
        message = str(exc)
        assert "\n" not in message and "MemoryError" not in message, message
        return
    width, height = stack.size
    assert stack.layers and width * height <= LIMIT_PIXELS
    for name in writable(BACK).values():
        try:
            formats.write(stack, out / name, force=True)
        except OutputError as exc:  # only the documented refusals: PSD's 30000 px a side,
            # and a slide's 1 to 56 inches a side (no scale fits over 56:1)
            psd_side = name.endswith(".psd") and max(width, height) > psd.MAX_SIDE
            slide = name.endswith(".pptx") and max(width, height) > 55 * min(width, height)
            assert psd_side or slide, str(exc)


def _reads_survive(files: st.SearchStrategy[bytes], target: Path, scratch: Path) -> None:
    """Each file ``files`` draws, written to ``target``, reads as check_read wants."""

    @FUZZ
    @given(files)
    def run(data: bytes) -> None:
        target.write_bytes(data)
        check_read(target, scratch)

    run()


@st.composite
def mutations(draw: st.DrawFn, seed: bytes, head: int = 1024) -> bytes:
    """``seed`` with 1–6 edits: bit flips, edge-value integers, cuts, inserts, deletes.

    Half of the edits land in the first ``head`` bytes, where headers, section lengths
    and layer records live; the rest anywhere.
    """
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        end = max(len(data) - 1, 0)
        pos = draw(st.integers(0, min(end, head)) | st.integers(0, end))
        op = draw(st.sampled_from(["flip", "int", "cut", "insert", "delete"]))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "int":
            width = draw(st.sampled_from([1, 2, 4]))
            value = draw(st.sampled_from(INTERESTING)) & ((1 << (8 * width)) - 1)
            data[pos : pos + width] = value.to_bytes(width, "big")
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
    return bytes(data)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One valid result per format, written by our own writers."""
    root = tmp_path_factory.mktemp("seeds")
    return {fmt: formats.write(make_stack(), root / name) for fmt, name in NAMES.items()}


NAMES = writable(
    {
        "psd": "seed.psd",
        "ora": "seed.ora",
        "png": "seed",
        "pptx": "seed.pptx",
        "svg": "seed.svg",
    }
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.slow
def test_psd_reader_survives_mutations(seeds: dict[str, Path], scratch: Path) -> None:
    seed = seeds["psd"].read_bytes()
    target = scratch / "m.psd"

    _reads_survive(mutations(seed), target, scratch)


def _rezip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _zip_survives_mutations(seed: Path, target: Path, scratch: Path, parts=None) -> None:
    """Fuzz a zip-based reader: one of ``parts`` (the members it opens; default all)
    mutated and re-zipped with valid CRCs (to reach the XML and PNG code), or the zip
    itself damaged."""
    raw = seed.read_bytes()
    with zipfile.ZipFile(seed) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    chosen = list(members) if parts is None else parts(members)

    @st.composite
    def damaged(draw: st.DrawFn) -> bytes:
        name = draw(st.sampled_from([None, *chosen]))
        if name is None:
            return draw(mutations(raw))
        changed = dict(members)
        changed[name] = draw(mutations(members[name], head=4096))
        return _rezip(changed)

    _reads_survive(damaged(), target, scratch)


@pytest.mark.slow
def test_ora_reader_survives_mutations(seeds: dict[str, Path], scratch: Path) -> None:
    _zip_survives_mutations(seeds["ora"], scratch / "m.ora", scratch)


def _pptx_parts_read(members: dict[str, bytes]) -> list[str]:
    """The parts the PPTX reader opens: the rest (layouts, theme) it never reads."""
    read = [n for n in members if n.startswith(("docProps/custom", "ppt/slides/", "ppt/media/"))]
    return [*read, "ppt/presentation.xml"]


@pytest.mark.slow
@needs_pptx
def test_pptx_reader_survives_mutations(seeds: dict[str, Path], scratch: Path) -> None:
    _zip_survives_mutations(seeds["pptx"], scratch / "m.pptx", scratch, _pptx_parts_read)


@pytest.mark.slow
def test_svg_reader_survives_mutations(seeds: dict[str, Path], scratch: Path) -> None:
    seed = seeds["svg"].read_bytes()
    target = scratch / "m.svg"

    _reads_survive(mutations(seed, head=2048), target, scratch)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _replace_somewhere(draw: st.DrawFn, value: object) -> object:
    """``value`` with one node (chosen by walking down at random) replaced by any JSON value."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        return {**value, key: _replace_somewhere(draw, value[key])}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], _replace_somewhere(draw, value[index]), *value[index + 1 :]]
    return draw(json_values | st.sampled_from(["../../x.png", "/etc/passwd", "00-x.png", ""]))


@pytest.mark.slow
def test_png_stack_reader_survives_mutations(seeds: dict[str, Path], scratch: Path) -> None:
    import shutil

    folder = scratch / "stack"
    shutil.copytree(seeds["png"], folder)
    manifest_path = folder / "manifest.json"
    manifest_bytes = manifest_path.read_bytes()
    manifest = json.loads(manifest_bytes)
    layer_file = folder / manifest["layers"][-1]["file"]
    layer_bytes = layer_file.read_bytes()

    @st.composite
    def damaged(draw: st.DrawFn) -> tuple[bytes, bytes]:
        """(manifest, one layer PNG): a structural or byte-level change to one of them."""
        kind = draw(st.sampled_from(["json", "manifest bytes", "png bytes"]))
        if kind == "json":
            text = json.dumps(_replace_somewhere(draw, manifest), allow_nan=True)
            return text.encode(), layer_bytes
        if kind == "manifest bytes":
            return draw(mutations(manifest_bytes)), layer_bytes
        return manifest_bytes, draw(mutations(layer_bytes, head=256))

    @FUZZ
    @given(damaged())
    def run(files: tuple[bytes, bytes]) -> None:
        manifest_path.write_bytes(files[0])
        layer_file.write_bytes(files[1])
        check_read(folder, scratch)

    run()


def test_seeds_are_results_the_readers_accept(seeds: dict[str, Path]) -> None:
    """The fuzz starts from valid files: every seed reads back with all its layers."""
    for path in seeds.values():
        assert len(formats.read(path).leaves()) == len(make_stack().leaves())


def _image_seeds() -> dict[str, bytes]:
    """Small valid inputs in the formats read_image meets most, with palette, alpha, EXIF."""
    rgba = Image.new("RGBA", (12, 9), (200, 30, 30, 128))
    exif = Image.Exif()
    exif[0x0112] = 6
    seeds = {}
    for suffix, image, options in [
        (".png", rgba.convert("P"), {"transparency": 0}),
        (".jpg", rgba.convert("RGB"), {"exif": exif.tobytes()}),
        (".gif", rgba.convert("RGB"), {"save_all": True, "append_images": [rgba.convert("RGB")]}),
        (".tif", rgba.convert("CMYK"), {}),
        (".webp", rgba, {}),
        (".bmp", rgba.convert("RGB"), {}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, Image.registered_extensions()[suffix], **options)
        seeds[suffix] = buffer.getvalue()
    return seeds


@pytest.mark.slow
def test_input_reader_survives_mutations(scratch: Path) -> None:
    """read_image: an RGBA array, or one line of BadInput — for any damage to any format."""
    seeds = _image_seeds()

    @FUZZ
    @given(
        st.sampled_from(sorted(seeds)).flatmap(lambda s: st.tuples(st.just(s), mutations(seeds[s])))
    )
    def run(case: tuple[str, bytes]) -> None:
        suffix, data = case
        target = scratch / f"m{suffix}"
        target.write_bytes(data)
        READS["count"] += 1
        try:
            with bounded(), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                image = read_image(target, max_pixels=LIMIT_PIXELS)
        except BadInput as exc:
            assert "\n" not in str(exc) and "MemoryError" not in str(exc), str(exc)
            return
        finally:  # a warning would reach the user's terminal as two lines of noise
            assert [str(w.message) for w in caught] == []
        assert image.pixels.dtype == np.uint8 and image.pixels.shape[2] == 4

    run()


# --- crafted results: built from scratch, not mutated ------------------------------------
# Small files that declare big work (issue 14): huge canvases, thousands of layers, one
# member behind many layers, members whose headers lie. The property is the same, with
# a time and memory bound on each read.

SIDES = st.sampled_from([0, 1, 8, 1000, 1025, 10_000, 2**31 - 1, 10**12, 10**40]) | st.integers(
    -3, 3000
)
COUNTS = st.sampled_from([0, 1, 16, 100, 2000, 8001, 100_000]) | st.integers(0, 40)
OFFSETS = st.sampled_from(["0", "-1", "7", "2147483647", "-99999999999", "1e3", "", "9" * 50])
OPACITIES = st.sampled_from(["1", "0.5", "0", "-1", "nan", "inf", "1e308", "x"])


def _png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 30, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def _lying_png(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose IHDR then says ``width`` x ``height`` (CRC left wrong)."""
    data = bytearray(_png_bytes(1, 1))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return bytes(data)


MEMBERS = {
    "data/a.png": _png_bytes(1, 1),
    "data/b.png": _png_bytes(40, 30),
    "data/lie.png": _lying_png(60_000, 60_000),
    "data/text.png": b"not a png",
}
SOURCES = st.sampled_from([*MEMBERS, "missing.png", "../a.png", "", "data/"])


@st.composite
def crafted_oras(draw: st.DrawFn) -> bytes:
    """stack.xml over MEMBERS: any canvas, a few distinct layer nodes repeated any number
    of times (so 100 000 layers cost the generator nothing), groups one level deep."""
    width, height = draw(SIDES), draw(SIDES)
    nodes = [
        f'<layer name="l{i}" src="{draw(SOURCES)}" x="{draw(OFFSETS)}" y="{draw(OFFSETS)}" '
        f'opacity="{draw(OPACITIES)}"/>'
        for i in range(draw(st.integers(1, 3)))
    ]
    body = "".join(nodes) * draw(COUNTS)
    if draw(st.booleans()):
        body = f'<stack name="g">{body}</stack>' + nodes[0]
    xml = f'<?xml version="1.0"?><image w="{width}" h="{height}"><stack>{body}</stack></image>'
    return _rezip({"mimetype": b"image/openraster", "stack.xml": xml.encode(), **MEMBERS})


@pytest.mark.slow
def test_ora_reader_survives_crafted_files(scratch: Path) -> None:
    target = scratch / "crafted.ora"

    _reads_survive(crafted_oras(), target, scratch)


@st.composite
def crafted_manifests(draw: st.DrawFn) -> dict:
    """A PNG-stack manifest over the files in MEMBERS: any canvas, entries repeated any
    number of times, parents pointing anywhere."""
    entries = [
        {
            "name": f"l{i}",
            "file": draw(SOURCES),
            "parent": draw(st.none() | st.integers(-1, 3)),
            "visible": draw(st.booleans()),
        }
        for i in range(draw(st.integers(1, 3)))
    ]
    return {
        "format": "layerctl-pngstack",
        "format_version": 1,
        "canvas": {"width": draw(SIDES), "height": draw(SIDES)},
        "layers": entries * draw(COUNTS),
    }


@pytest.mark.slow
def test_png_stack_reader_survives_crafted_manifests(scratch: Path) -> None:
    folder = scratch / "crafted"
    (folder / "data").mkdir(parents=True)
    for name, data in MEMBERS.items():
        (folder / name).write_bytes(data)

    @FUZZ
    @given(crafted_manifests())
    def run(manifest: dict) -> None:
        (folder / "manifest.json").write_text(json.dumps(manifest))
        check_read(folder, scratch)

    run()


def _data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


HREFS = st.sampled_from(
    [
        _data_uri(_png_bytes(1, 1)),
        _data_uri(_png_bytes(40, 30)),
        _data_uri(_lying_png(60_000, 60_000)),
        _data_uri(b"not a png"),
        "data:image/png;base64,%%%",
        "file:///etc/passwd",
        "../a.png",
        "",
    ]
)
NUMBERS = st.sampled_from(["0", "1", "30", "40", "-5", "1e9", "nan", "", "x", "7.5"])


@st.composite
def crafted_svgs(draw: st.DrawFn) -> bytes:
    """Our SVG's shape over any canvas: a few distinct images repeated any number of
    times, sizes and offsets that may lie, groups one level deep."""
    width, height = draw(SIDES), draw(SIDES)
    nodes = [
        f'<image inkscape:label="l{i}" x="{draw(OFFSETS)}" y="{draw(OFFSETS)}" '
        f'width="{draw(NUMBERS)}" height="{draw(NUMBERS)}" opacity="{draw(OPACITIES)}" '
        f'xlink:href="{draw(HREFS)}"/>'
        for i in range(draw(st.integers(1, 3)))
    ]
    body = "".join(nodes) * draw(COUNTS)
    if draw(st.booleans()):
        body = f'<g inkscape:label="g" style="opacity:{draw(OPACITIES)}">{body}</g>' + nodes[0]
    head = json.dumps(
        {
            "format": "layerctl-svg",
            "format_version": 1,
            "canvas": {"width": width, "height": height},
        }
    )
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape" '
        f'xmlns:layerctl="urn:layerctl:svg:1"><metadata layerctl:format="layerctl-svg">{head}'
        f"</metadata>{body}</svg>"
    ).encode()


@pytest.mark.slow
def test_svg_reader_survives_crafted_files(scratch: Path) -> None:
    target = scratch / "crafted.svg"

    _reads_survive(crafted_svgs(), target, scratch)
