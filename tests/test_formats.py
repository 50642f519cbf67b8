"""Round trips and damage handling of the PSD, OpenRaster, PNG-stack, PPTX and SVG
writers/readers."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optional import needs_pptx, pptx_marked, writable
from PIL import Image
from sample_stack import UNICODE, H, W, make_stack, tree

from layerctl import formats
from layerctl.errors import BadResult
from layerctl.formats import pngstack
from layerctl.stack import Layer, LayerStack

SUFFIX = writable(
    {"psd": "out.psd", "ora": "out.ora", "png": "out", "pptx": "out.pptx", "svg": "out.svg"}
)
ALL = list(SUFFIX)


@pytest.mark.parametrize("fmt", ALL)
def test_round_trip_keeps_names_order_pixels_groups_metadata(tmp_path: Path, fmt: str) -> None:
    stack = make_stack()
    out = tmp_path / SUFFIX[fmt]
    formats.write(stack, out)
    back = formats.read(out)
    assert tree(back) == tree(stack)
    assert [layer.name for layer in back.walk()][:2] == [UNICODE, "Ébène group"]
    assert back.metadata == stack.metadata
    assert back.icc_profile == stack.icc_profile
    np.testing.assert_array_equal(back.composite(), stack.composite())


AWKWARD = ["a\tb", "line\nbreak", "nul\x00x", "esc\x1b[31m", "  spaces  ", "", "x" * 300]


@pytest.mark.parametrize("fmt", ALL)
def test_awkward_names_survive(tmp_path: Path, fmt: str) -> None:
    """Names come back exactly, except: XML (ORA, PPTX, SVG) cannot hold NUL or ESC; PSD
    caps at 255."""
    pixels = np.zeros((4, 4, 4), np.uint8)
    stack = LayerStack([Layer(name, pixels) for name in AWKWARD])
    formats.write(stack, tmp_path / SUFFIX[fmt])
    names = [layer.name for layer in formats.read(tmp_path / SUFFIX[fmt])]
    if fmt in {"ora", "pptx", "svg"}:
        expected = [n.replace("\x00", "\ufffd").replace("\x1b", "\ufffd") for n in AWKWARD]
    elif fmt == "psd":
        expected = [n[:255] for n in AWKWARD]  # Photoshop's limit
    else:
        expected = AWKWARD
    assert names == expected


@pytest.mark.parametrize("opaque", [True, False])
def test_psd_merged_image_as_pillow_reads_it_is_our_composite(tmp_path: Path, opaque: bool) -> None:
    """Pillow reads the merged image raw; Photoshop stores its colour matted over white."""
    stack = make_stack(opaque_background=opaque)
    formats.write(stack, tmp_path / "out.psd")
    with Image.open(tmp_path / "out.psd") as image:
        merged = np.asarray(image.convert("RGBA"), dtype=np.float64)
    ours = stack.composite().astype(np.float64)
    alpha = ours[..., 3:] / 255.0
    on_white = ours[..., :3] * alpha + 255.0 * (1.0 - alpha)
    assert np.abs(merged[..., 3] - ours[..., 3]).max() <= 1
    seen = ours[..., 3] > 0  # fully transparent colour is invisible
    assert np.abs(merged[seen][:, :3] - on_white[seen]).max() <= 1.5  # 1 step + matte rounding
    if opaque:
        assert np.abs(merged - ours).max() <= 1


def test_psd_layers_are_cropped_to_their_bbox_and_empty_ones_kept(tmp_path: Path) -> None:
    from psd_tools import PSDImage

    stack = make_stack()
    formats.write(stack, tmp_path / "out.psd")
    psd = PSDImage.open(tmp_path / "out.psd")
    boxes = {layer.name: layer.bbox for layer in psd.descendants() if not layer.is_group()}
    assert boxes["../escape"] == (3, 2, 12, 9)
    assert boxes["top"] == (20, 0, 29, 4)
    assert boxes["empty"] == (0, 0, 0, 0)


def test_ora_layout_follows_the_spec(tmp_path: Path) -> None:
    stack = make_stack()
    formats.write(stack, tmp_path / "out.ora")
    raw = (tmp_path / "out.ora").read_bytes()
    # mimetype first, stored, no extra field: the magic sits at a fixed offset.
    assert raw[30:38] == b"mimetype" and raw[38:54] == b"image/openraster"
    with zipfile.ZipFile(tmp_path / "out.ora") as archive:
        first = archive.infolist()[0]
        assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
        names = set(archive.namelist())
        assert {"stack.xml", "mergedimage.png", "Thumbnails/thumbnail.png"} <= names
        xml = archive.read("stack.xml").decode()
    # ORA lists the top first: "top" before the background.
    assert xml.index('name="top"') < xml.index(f'name="{UNICODE}"')
    assert 'x="20" y="0"' in xml


def test_ora_thumbnail_is_at_most_256_px(tmp_path: Path) -> None:
    pixels = np.full((40, 600, 4), 200, np.uint8)
    formats.write(LayerStack([Layer("wide", pixels)]), tmp_path / "wide.ora")
    with (
        zipfile.ZipFile(tmp_path / "wide.ora") as archive,
        archive.open("Thumbnails/thumbnail.png") as f,
    ):
        assert max(Image.open(f).size) == 256


def test_png_stack_layout_and_manifest(tmp_path: Path) -> None:
    stack = make_stack()
    out = tmp_path / "out"
    formats.write(stack, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files = [entry["file"] for entry in manifest["layers"]]
    assert files == [
        f"00-{UNICODE}.png",
        "01-Ébène group.png",
        "01-Ébène group/00-_CON.png",
        "01-Ébène group/01-inner _ group.png",
        "01-Ébène group/01-inner _ group/00-_escape.png",
        "01-Ébène group/01-inner _ group/01-empty.png",
        "02-hidden.png",
        "03-top.png",
    ]
    assert [entry["parent"] for entry in manifest["layers"]] == [None, None, 1, 1, 3, 3, None, None]
    assert manifest["layers"][4]["name"] == "../escape"
    assert manifest["layers"][4]["bbox"] == [3, 2, 12, 9]
    assert manifest["canvas"] == {"width": W, "height": H}
    assert manifest["metadata"]["source"]["sha256"] == "ab" * 32
    with Image.open(out / "composite.png") as image:
        np.testing.assert_array_equal(np.asarray(image), stack.composite())


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a\\b:c*d?", "a_b_c_d_"),
        ("nul.txt", "_nul.txt"),
        ("COM1", "_COM1"),
        ("..", "layer"),
        ("", "layer"),
        ("tab\there\x00", "tab_here_"),
        ("x" * 100, "x" * 64),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert pngstack.safe_name(name) == expected


@given(st.text())
def test_safe_name_is_always_one_harmless_component(name: str) -> None:
    safe = pngstack.safe_name(name)
    assert safe and safe not in {".", ".."} and len(safe) <= pngstack.MAX_NAME_CHARS
    assert not any(c in safe for c in '/\\<>:"|?*') and all(ord(c) >= 32 for c in safe)
    assert not safe.endswith((" ", "."))


def _damage_manifest(out: Path, change) -> None:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda out: (out / "manifest.json").unlink(), "no manifest.json"),
        (lambda out: (out / "manifest.json").write_text("{oops"), "unreadable"),
        (lambda out: (out / "03-top.png").unlink(), "is missing"),
        (lambda out: (out / "03-top.png").write_bytes(b"not a png"), "not a readable PNG"),
        (
            lambda out: Image.new("RGBA", (3, 3)).save(out / "03-top.png"),
            "but the canvas is 29x19",
        ),
        (
            lambda out: _damage_manifest(out, lambda m: m["layers"][0].update(file="../x.png")),
            "outside the folder",
        ),
        (
            lambda out: _damage_manifest(out, lambda m: m["layers"][0].update(parent=5)),
            "entry 0 is malformed",
        ),
        (lambda out: _damage_manifest(out, lambda m: m.update(format_version=99)), "newer"),
        (lambda out: _damage_manifest(out, lambda m: m.update(format="x")), "not a layerctl"),
        (lambda out: _damage_manifest(out, lambda m: m.pop("canvas")), "canvas size"),
    ],
)
def test_png_stack_reader_names_the_damage(tmp_path: Path, damage, message: str) -> None:
    out = tmp_path / "out"
    formats.write(make_stack(), out)
    damage(out)
    with pytest.raises(BadResult, match=message) as info:
        formats.read(out)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", pptx_marked([".psd", ".ora", ".pptx", ".svg"]))
@pytest.mark.parametrize("content", ["text", "truncated", "png"])
def test_damaged_or_foreign_files_raise_one_line_bad_result(
    tmp_path: Path, suffix: str, content: str
) -> None:
    path = tmp_path / f"x{suffix}"
    if content == "text":
        path.write_text("hello")
    elif content == "png":
        Image.new("RGBA", (4, 4)).save(path, format="PNG")
    else:
        formats.write(make_stack(), tmp_path / f"good{suffix}")
        path.write_bytes((tmp_path / f"good{suffix}").read_bytes()[:300])
    with pytest.raises(BadResult) as info:
        formats.read(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_ora_without_mimetype_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.ora", "w") as archive:
        archive.writestr("mimetype", "application/zip")
    with pytest.raises(BadResult, match="wrong mimetype"):
        formats.read(tmp_path / "x.ora")


def test_flat_psd_without_layers_is_not_a_result(tmp_path: Path) -> None:
    from psd_tools import PSDImage

    PSDImage.frompil(Image.new("RGB", (4, 4), "red")).save(tmp_path / "flat.psd")
    with pytest.raises(BadResult, match="no layers"):
        formats.read(tmp_path / "flat.psd")


def test_format_and_suffix_must_agree():
    """-o x.psd --format ora would write a ZIP named .psd, -o res --format psd a file no
    reader takes for a PSD: both are usage errors; a batch's bare folder is not."""
    from layerctl.errors import UsageError
    from layerctl.formats import format_for

    for path, fmt in [("x.psd", "ora"), ("res", "psd"), ("x.ora", "png")]:
        with pytest.raises(UsageError, match="does not match"):
            format_for(Path(path), fmt)
    assert format_for(Path("x.ora"), "ora") == "ora" and format_for(Path("res"), "png") == "png"
    assert format_for(Path(), "psd") == "psd"


def test_psd_merged_image_is_rle_compressed(tmp_path: Path) -> None:
    """psd-tools stores a new document's merged image raw: 4 bytes a pixel of any poster."""
    from psd_tools import PSDImage
    from psd_tools.constants import Compression

    pixels = np.zeros((400, 600, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[100:200, 100:300] = (200, 30, 30, 255)
    formats.write(LayerStack([Layer("flat", pixels)]), tmp_path / "out.psd")
    assert PSDImage.open(tmp_path / "out.psd")._record.image_data.compression == Compression.RLE
    assert (tmp_path / "out.psd").stat().st_size < 400 * 600  # raw would be 4x that


def test_psb_is_version_2_and_reads_back(tmp_path: Path) -> None:
    stack = make_stack()
    formats.write(stack, tmp_path / "out.psb")
    assert (tmp_path / "out.psb").read_bytes()[:6] == b"8BPS\0\2"
    assert (tmp_path / "out.psd").exists() is False
    back = formats.read(tmp_path / "out.psb")
    assert tree(back) == tree(stack) and back.metadata == stack.metadata
    formats.write(stack, tmp_path / "out.psd")
    assert (tmp_path / "out.psd").read_bytes()[:6] == b"8BPS\0\1"


def test_over_30000_px_a_side_needs_a_psb(tmp_path: Path) -> None:
    """The check runs on a size alone, so a run fails before it decomposes anything."""
    from layerctl.errors import OutputError

    with pytest.raises(OutputError, match="PSD holds at most 30000 px"):
        formats.check_canvas(tmp_path / "big.psd", None, (30_001, 10))
    formats.check_canvas(tmp_path / "big.ora", None, (30_001, 10))
    formats.check_canvas(tmp_path / "big.psb", None, (30_001, 10))
    with pytest.raises(OutputError, match="PSB holds at most 300000 px"):
        formats.check_canvas(tmp_path / "big.psb", None, (300_001, 10))
    wide = np.zeros((4, 30_001, 4), np.uint8)
    wide[:, :9] = 255
    formats.write(LayerStack([Layer("wide", wide)]), tmp_path / "wide.psb")
    assert formats.read(tmp_path / "wide.psb").size == (30_001, 4)


@pytest.mark.parametrize("fmt", ALL)
def test_files_record_no_absolute_source_path_and_no_foreign_profile(
    tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the working folder the path is kept relative to it; elsewhere the file name
    alone. A CMYK profile would misdescribe RGB layers: GIMP and ImageMagick reject it."""
    from PIL import ImageCms

    monkeypatch.chdir(tmp_path)
    stack = make_stack()
    grey = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    for number, (given_path, recorded) in enumerate(
        [
            (str(tmp_path / "in" / "a.png"), "in/a.png"),
            ("/elsewhere/secret/b.png", "b.png"),
            ("../up/c.png", "c.png"),
        ]
    ):
        stack.metadata["source"]["path"] = given_path
        foreign = LayerStack(stack.layers, stack.metadata, grey)
        out = tmp_path / f"{number}{SUFFIX[fmt]}"
        formats.write(foreign, out)
        back = formats.read(out)
        assert back.metadata["source"]["path"] == recorded
        assert back.icc_profile is None
    assert stack.metadata["source"]["path"] == "../up/c.png"  # the caller's stack untouched


def test_psd_provenance_is_no_custom_xmp_and_old_results_still_read(tmp_path: Path) -> None:
    """exiv2 (GIMP) warns on an XMP namespace it does not ship: provenance has its own
    resource; results written with it in XMP keep being recognised."""
    from psd_tools import PSDImage
    from psd_tools.constants import Resource
    from psd_tools.psd.image_resources import ImageResource

    from layerctl.formats import psd

    stack = make_stack()
    formats.write(stack, tmp_path / "new.psd")
    xmp = PSDImage.open(tmp_path / "new.psd").image_resources.get_data(Resource.XMP_METADATA)
    assert b"layerctl:" not in xmp and b"CreatorTool" in xmp
    old = PSDImage.open(tmp_path / "new.psd")
    del old.image_resources[psd.PROVENANCE_RESOURCE]
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/" xmlns:layerctl="urn:layerctl:xmp:1.0/" '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:RDF>'
        '<rdf:Description rdf:about=""><layerctl:provenance>{"seed": 5}</layerctl:provenance>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    key = Resource.XMP_METADATA
    old.image_resources[key] = ImageResource(key=key, data=packet.encode())
    old.save(tmp_path / "old.psd")
    assert formats.read_metadata(tmp_path / "old.psd") == {"seed": 5}
    assert formats.read(tmp_path / "old.psd").metadata == {"seed": 5}
    assert formats.read_metadata(tmp_path / "new.psd") == stack.metadata


def test_ora_bytes_do_not_depend_on_the_day(tmp_path: Path, monkeypatch) -> None:
    import time

    stack = make_stack()
    formats.write(stack, tmp_path / "a.ora")
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # 2033
    formats.write(stack, tmp_path / "b.ora")
    assert (tmp_path / "a.ora").read_bytes() == (tmp_path / "b.ora").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.ora") as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


@needs_pptx
def test_pptx_layout(tmp_path: Path) -> None:
    """One slide of the canvas's size (at least an inch a side), a picture per layer named
    after it at its bbox, groups as group shapes, hidden="1"."""
    from pptx import Presentation

    stack = make_stack()
    formats.write(stack, tmp_path / "out.pptx")
    deck = Presentation(str(tmp_path / "out.pptx"))
    emu = -(-914_400 // min(W, H))  # the sample is under an inch: scaled up to one
    assert (deck.slide_width, deck.slide_height) == (W * emu, H * emu)
    (slide,) = deck.slides

    def shapes(container) -> list[tuple]:
        found = []
        for shape in container:
            hidden = shape._element._nvXxPr.cNvPr.get("hidden") == "1"
            if shape.shape_type == 6:  # MSO_SHAPE_TYPE.GROUP
                found.append((shape.name, hidden, shapes(shape.shapes)))
            else:
                found.append((shape.name, hidden, (shape.left // emu, shape.top // emu)))
        return found

    top = shapes(slide.shapes)
    assert [name for name, _, _ in top] == [layer.name for layer in stack.layers]
    assert [hidden for _, hidden, _ in top] == [not layer.visible for layer in stack.layers]
    assert isinstance(top[1][2], list) and top[1][2][0][0] == "CON"  # the group's children
    assert top[-1][2] == stack.layers[-1].bbox()[:2]


@needs_pptx
def test_pptx_thumbnail_is_the_composite(tmp_path: Path, flat_design: np.ndarray) -> None:
    formats.write(LayerStack([Layer("design", flat_design)]), tmp_path / "out.pptx")
    with zipfile.ZipFile(tmp_path / "out.pptx") as archive:
        thumbnail = Image.open(io.BytesIO(archive.read("docProps/thumbnail.jpeg")))
    assert thumbnail.size == (96, 64)  # under 256 px: the composite at its size
    diff = np.abs(np.asarray(thumbnail, np.int16) - flat_design[..., :3].astype(np.int16))
    assert diff.mean() < 6  # JPEG; python-pptx's own thumbnail is far off


def test_svg_layout(tmp_path: Path) -> None:
    """Canvas size and viewBox, an <image> per layer with an embedded PNG at its bbox,
    <g> groups, safe unique ids, exact names in inkscape:label, display="none"."""
    import xml.etree.ElementTree as ET

    svg, xlink = "{http://www.w3.org/2000/svg}", "{http://www.w3.org/1999/xlink}"
    label = "{http://www.inkscape.org/namespaces/inkscape}label"
    stack = make_stack()
    names = [*stack.layers, Layer("top", stack.layers[-1].pixels)]  # a repeated name
    formats.write(LayerStack(names, stack.metadata), tmp_path / "out.svg")
    root = ET.parse(tmp_path / "out.svg").getroot()
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        str(W),
        str(H),
        f"0 0 {W} {H}",
    )
    nodes = [n for n in root.iter() if n.tag in {f"{svg}image", f"{svg}g"}]
    assert [n.get(label) for n in nodes] == [layer.name for layer in LayerStack(names).walk()]
    ids = [n.get("id") for n in nodes]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"[A-Za-z][\w-]*", i) for i in ids)
    assert [n.get("display") for n in nodes].count("none") == 1
    hrefs = [n.get(f"{xlink}href") for n in root.iter(f"{svg}image")]
    assert all(h.startswith("data:image/png;base64,") for h in hrefs)
    top = next(n for n in nodes if n.get(label) == "top")
    assert tuple(int(top.get(k)) for k in ("x", "y")) == stack.layers[-1].bbox()[:2]


@pytest.mark.parametrize("suffix", pptx_marked([".svg", ".pptx"]))
def test_opacity_set_in_an_editor_is_folded_into_alpha(tmp_path: Path, suffix: str) -> None:
    """Inkscape's opacity attribute, PowerPoint's picture transparency (alphaModFix)."""
    pixels = np.zeros((H, W, 4), np.uint8)
    pixels[2:8, 3:9] = (10, 200, 30, 200)
    path = tmp_path / f"out{suffix}"
    formats.write(LayerStack([Layer("a", pixels)]), path)
    if suffix == ".svg":
        path.write_text(path.read_text().replace("<image ", '<image opacity="0.5" '))
    else:
        with zipfile.ZipFile(path) as archive:
            parts = {name: archive.read(name) for name in archive.namelist()}
        slide = "ppt/slides/slide1.xml"
        parts[slide] = re.sub(
            rb"(<a:blip [^>]*?)/>", rb'\1><a:alphaModFix amt="50000"/></a:blip>', parts[slide]
        )
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in parts.items():
                archive.writestr(name, data)
    back = formats.read(path).layers[0].pixels
    assert back[4, 4, 3] == 100 and tuple(back[4, 4, :3]) == (10, 200, 30)
