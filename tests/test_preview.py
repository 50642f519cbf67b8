"""Contact sheets: size, where each tile is, groups, the difference map, the command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerctl import formats, preview
from layerctl.errors import BadResult, OutputExists
from layerctl.stack import Layer, LayerStack


def _solid(size: tuple[int, int], color: tuple[int, int, int], alpha: int = 255) -> np.ndarray:
    width, height = size
    pixels = np.empty((height, width, 4), np.uint8)
    pixels[...] = (*color, alpha)
    return pixels


def _palette(n: int) -> list[tuple[int, int, int]]:
    """``n`` colours far apart from each other and from the sheet's greys."""
    rng = np.random.default_rng(n)
    colors: list[tuple[int, int, int]] = []
    while len(colors) < n:
        c = tuple(int(v) for v in rng.integers(0, 256, 3))
        if max(c) - min(c) > 60 and all(np.abs(np.subtract(c, o)).max() > 40 for o in colors):
            colors.append(c)
    return colors


def _opaque_stack(size: tuple[int, int], n: int) -> LayerStack:
    names = ["Background"] + [f"Layer {i}" for i in range(1, n)]
    return LayerStack(
        [Layer(nm, _solid(size, c)) for nm, c in zip(names, _palette(n), strict=True)]
    )


@pytest.mark.parametrize("size", [(64, 48), (30, 600), (900, 24)], ids=["square", "tall", "wide"])
@pytest.mark.parametrize("n", [2, 7, 20])
def test_each_layer_tile_is_where_the_layout_says(tmp_path: Path, size, n) -> None:
    stack = _opaque_stack(size, n)
    target = tmp_path / "sheet.png"
    plan = preview.write_preview(stack, target)

    sheet = np.asarray(Image.open(target).convert("RGB"))
    assert sheet.shape[1::-1] == plan.size
    tiles = plan.layer_tiles()
    assert [t.index for t in tiles] == [str(i) for i in range(n)]
    for tile, layer in zip(tiles, stack.layers, strict=True):
        left, top, right, bottom = tile.box
        assert (right - left, bottom - top) == plan.thumb
        assert right <= plan.size[0] and bottom <= plan.size[1]
        # the whole image area shows this layer's colour, corners included
        area = sheet[top:bottom, left:right].reshape(-1, 3)
        assert (area == layer.pixels[0, 0, :3]).all(), tile.title
    # readable: thumbnails keep the aspect at a useful size, the sheet is not a ribbon
    assert plan.thumb[0] / plan.thumb[1] == pytest.approx(size[0] / size[1], rel=0.1)
    assert 150 <= max(plan.thumb) <= preview.THUMB_MAX_SIDE
    assert max(plan.size) / min(plan.size) < 4


def test_tiles_do_not_overlap() -> None:
    plan = preview.layout(_opaque_stack((50, 50), 12), with_original=True)
    boxes = [t.box for t in plan.tiles]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_transparent_pixels_show_the_checkerboard() -> None:
    size = (64, 64)
    stack = LayerStack(
        [Layer("bg", _solid(size, (200, 30, 30))), Layer("hole", _solid(size, (0, 0, 255), 0))]
    )
    sheet, plan = preview.contact_sheet(stack)
    left, top, right, bottom = plan.layer_tiles()[1].box
    area = np.asarray(sheet)[top:bottom, left:right]
    assert np.unique(area.reshape(-1, 3), axis=0).tolist() == [[214] * 3, [255] * 3]


def test_nested_groups_are_indented_rows_after_their_group() -> None:
    size = (40, 30)
    colors = _palette(5)
    leaf = [Layer(f"leaf {i}", _solid(size, c, 128)) for i, c in enumerate(colors)]
    inner = Layer.group("inner", leaf[3:5])
    outer = Layer.group("outer", [leaf[1], leaf[2], inner])
    stack = LayerStack([leaf[0], outer])
    plan = preview.layout(stack, with_original=False)

    tiles = {t.index: t for t in plan.layer_tiles()}
    assert list(tiles) == ["0", "1", "1.0", "1.1", "1.2", "1.2.0", "1.2.1"]
    assert [tiles[i].depth for i in tiles] == [0, 0, 1, 1, 1, 2, 2]
    top_left = tiles["0"].box[0]
    assert tiles["1.0"].box[0] == top_left + preview.INDENT
    assert tiles["1.2.0"].box[0] == top_left + 2 * preview.INDENT
    # each level starts on a row below its group
    assert tiles["1.0"].box[1] > tiles["1"].box[1]
    assert tiles["1.2.0"].box[1] > tiles["1.2"].box[1]
    assert "group of 3" in tiles["1"].detail


def test_difference_map_is_black_for_an_exact_result_and_keeps_a_one_pixel_error() -> None:
    size = (400, 300)  # far larger than a thumbnail: the error must survive shrinking
    stack = _opaque_stack(size, 3)
    original = stack.composite()
    sheet, plan = preview.contact_sheet(stack, original)
    diff = plan.tile("difference")
    assert diff is not None and plan.tile("original") is not None
    left, top, right, bottom = diff.box
    assert not np.asarray(sheet)[top:bottom, left:right].any()

    original = original.copy()
    original[123, 321, :3] = 255 - original[123, 321, :3]
    sheet, _ = preview.contact_sheet(stack, original)
    area = np.asarray(sheet)[top:bottom, left:right]
    assert (area.max(axis=-1) > 200).sum() >= 1


def test_an_empty_stack_is_a_bad_result() -> None:
    with pytest.raises(BadResult):
        preview.layout(LayerStack([]), with_original=False)


def test_without_an_original_there_is_no_difference_tile() -> None:
    plan = preview.layout(_opaque_stack((20, 20), 2), with_original=False)
    assert [t.kind for t in plan.tiles[:2]] == ["composite", "layer"]
    assert plan.tile("difference") is None


def test_original_from_metadata_needs_the_same_file(tmp_path: Path, flat_design) -> None:
    from layerctl.digests import file_sha256 as sha256_file

    source = tmp_path / "in.png"
    Image.fromarray(flat_design).save(source)
    stack = LayerStack(
        [Layer("bg", flat_design.copy())],
        metadata={"source": {"path": "in.png", "sha256": sha256_file(source)}},
    )
    near = tmp_path / "out.psd"
    assert np.array_equal(preview.original_from_metadata(stack, near), flat_design)
    assert preview.original_from_metadata(stack) is None  # relative to the cwd: not there
    Image.fromarray(flat_design[::-1].copy()).save(source)  # changed since: not the original
    assert preview.original_from_metadata(stack, near) is None


@pytest.mark.parametrize("sha256", [None, "", "0" * 64, 7])
def test_a_recorded_source_without_its_sha256_is_not_used(tmp_path: Path, sha256) -> None:
    """A crafted result naming an outside image must not pull it into the sheet (issue 14)."""
    outside = tmp_path / "private.png"
    Image.new("RGBA", (8, 8), (1, 2, 3, 255)).save(outside)
    source = {"path": str(outside)} | ({} if sha256 is None else {"sha256": sha256})
    stack = LayerStack([Layer("bg", np.zeros((8, 8, 4), np.uint8))], metadata={"source": source})
    assert preview.original_from_metadata(stack, tmp_path / "x.psd") is None


def test_write_preview_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "sheet.png"
    target.write_bytes(b"keep")
    with pytest.raises(OutputExists):
        preview.write_preview(_opaque_stack((8, 8), 2), target)
    assert target.read_bytes() == b"keep"
    preview.write_preview(_opaque_stack((8, 8), 2), target, force=True)
    assert Image.open(target).format == "PNG"


def test_preview_path_sits_beside_the_result() -> None:
    assert preview.preview_path(Path("out/a.psd")) == Path("out/a.psd.preview.png")
    assert preview.preview_path(Path("out/stack")) == Path("out/stack.preview.png")


@pytest.mark.parametrize("name", ["result.psd", "result.ora", "result"])
def test_preview_command_reads_each_format(tmp_path: Path, cli, flat_design, name) -> None:
    from layerctl.digests import file_sha256 as sha256_file

    source = tmp_path / "in.png"
    Image.fromarray(flat_design).save(source)
    stack = _opaque_stack(flat_design.shape[1::-1], 3)
    stack.metadata["source"] = {"path": "in.png", "sha256": sha256_file(source)}
    result = formats.write(stack, tmp_path / name)

    res = cli("preview", result)  # the original found through the recorded source
    assert res.code == 0, res.stderr
    assert "with the original" in res.stderr
    sheet = preview.preview_path(result)
    assert Image.open(sheet).size == preview.layout(stack, with_original=True).size

    assert cli("preview", result).code == 1  # exists, no --force
    source.unlink()
    res = cli("preview", result, "-o", tmp_path / "other.png")
    assert res.code == 0 and "without the original" in res.stderr
    res = cli("preview", result, "-o", tmp_path / "sheet.jpg")
    assert res.code == 2 and "PNG" in res.stderr


@pytest.fixture
def stripes(monkeypatch: pytest.MonkeyPatch) -> None:
    from stripes_backend import register

    register(monkeypatch)


def test_decompose_preview_single_and_batch(tmp_path: Path, cli, stripes, flat_design) -> None:
    source = tmp_path / "in" / "poster.png"
    source.parent.mkdir()
    Image.fromarray(flat_design).save(source)
    Image.fromarray(flat_design[::-1].copy()).save(source.with_name("other.png"))
    args = ("-b", "stripes", "-n", "3", "--preview")

    single = tmp_path / "single.psd"
    res = cli("decompose", source, "-o", single, *args)
    assert res.code == 0, res.stderr
    sheet = preview.preview_path(single)
    plan = preview.layout(formats.read(single), with_original=True)
    assert Image.open(sheet).size == plan.size
    diff = plan.tile("difference")
    assert diff is not None  # lossless: the difference map is black
    assert not np.asarray(Image.open(sheet).convert("RGB").crop(diff.box)).any()

    single.unlink()  # the sheet is still there: refused before any work, without --force
    res = cli("decompose", source, "-o", single, *args)
    assert res.code == 1 and "preview.png already exists" in res.stderr
    assert not single.exists()

    res = cli("decompose", source.parent, "-o", tmp_path / "out", *args)
    assert res.code == 0, res.stderr
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == ["other.psd", "other.psd.preview.png", "poster.psd", "poster.psd.preview.png"]
