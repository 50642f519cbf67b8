"""Recursive splitting: which layers qualify, alpha respected, trees in every format, split."""

from __future__ import annotations

import numpy as np
import pytest
from optional import writable
from PIL import Image
from stripes_backend import StripesBackend, register

from layerctl import formats, recursion
from layerctl.stack import Layer, LayerStack

FORMATS = writable({"psd": "r.psd", "ora": "r.ora", "png": "r", "pptx": "r.pptx", "svg": "r.svg"})


@pytest.fixture
def stripes(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch)


@pytest.fixture
def image(tmp_path, flat_design) -> tuple:
    path = tmp_path / "in.png"
    Image.fromarray(flat_design, "RGBA").save(path)
    return path, flat_design


def _names(layers: list[Layer]) -> list:
    return [(la.name, _names(la.children)) if la.is_group else la.name for la in layers]


def _disc(size: int = 32) -> Layer:
    yy, xx = np.mgrid[:size, :size]
    pixels = np.zeros((size, size, 4), np.uint8)
    pixels[..., :3] = (200, 40, 40)
    pixels[..., 3] = np.where((yy - 16) ** 2 + (xx - 20) ** 2 < 64, 255, 0)
    pixels[14, 12, 3] = 90  # a soft edge pixel
    return Layer("Disc", pixels)


def test_qualifies_follows_the_documented_rules() -> None:
    small = np.zeros((10, 10, 4), np.uint8)
    small[0, 0, 3] = 255  # 1 % of the canvas
    big = np.full((10, 10, 4), 255, np.uint8)
    plan = recursion.Plan(depth=1, min_coverage=0.05)
    assert not plan.qualifies(0, Layer("Background", big), 0)  # background excluded
    assert plan.qualifies(1, Layer("a", big), 0)
    assert not plan.qualifies(1, Layer("a", small), 0)  # under --min-coverage
    assert not plan.qualifies(1, Layer("e", np.zeros_like(big)), 0)
    assert not plan.qualifies(1, Layer.group("g", [Layer("a", big)]), 0)
    chosen = recursion.Plan(depth=2, split_layers=frozenset({2}), split_background=True)
    assert chosen.qualifies(0, Layer("Background", big), 1)  # split_layers: first level only
    assert not chosen.qualifies(1, Layer("a", big), 0)
    assert chosen.qualifies(2, Layer("a", big), 0)
    assert recursion.parse_indices("1, 3") == {1, 3}
    assert recursion.parse_indices(None) is None


def test_children_stay_inside_the_layer_alpha() -> None:
    layer = _disc()
    seen = []

    def opaque_everywhere(crop: np.ndarray) -> list[np.ndarray]:
        seen.append(crop.shape)
        full = crop.copy()
        full[..., 3] = 255  # a careless backend: opaque across the whole crop
        return [full, full.copy()]

    group = recursion.split_layer(layer, opaque_everywhere)
    box = layer.bbox()
    assert seen == [(box[3] - box[1], box[2] - box[0], 4)]  # the backend saw the crop only
    assert _names(group.children) == ["Disc.0", "Disc.1"] and group.name == "Disc"
    for child in group.children:
        assert (child.pixels[..., 3] <= layer.pixels[..., 3]).all()
    assert np.array_equal(group.pixels[..., 3] > 0, layer.pixels[..., 3] > 0)


def test_split_layer_refuses_empty_layers_and_groups() -> None:
    from layerctl.errors import UsageError

    empty = Layer("e", np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(UsageError, match="empty"):
        recursion.split_layer(empty, lambda crop: [crop, crop])
    with pytest.raises(UsageError, match="group"):
        recursion.split_layer(Layer.group("g", [_disc()]), lambda crop: [crop, crop])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_depth_two_gives_the_expected_tree_and_round_trips(cli, stripes, image, tmp_path, fmt):
    path, pixels = image
    out = tmp_path / FORMATS[fmt]
    result = cli("decompose", path, "-o", out, "-b", "stripes", "-n", "3", "--recursive", "2")
    assert result.code == 0, result.stderr
    stack = formats.read(out)
    leaf = ["Layer {0}.{1}.0", "Layer {0}.{1}.1", "Layer {0}.{1}.2"]
    expected = ["Background"] + [
        (
            f"Layer {i}",
            [f"Layer {i}.0"] + [(f"Layer {i}.{j}", [n.format(i, j) for n in leaf]) for j in (1, 2)],
        )
        for i in (1, 2)
    ]
    assert _names(stack.layers) == expected
    assert np.abs(stack.composite().astype(int) - pixels).max() <= 2
    for group in (layer for layer in stack.walk() if layer.is_group):
        for child in group.children:  # nothing outside the parent's alpha
            assert not (child.pixels[..., 3] > group.pixels[..., 3].astype(int) + 2).any()
    again = tmp_path / ("again" + out.suffix)
    formats.write(stack, again, fmt)
    assert _names(formats.read(again).layers) == expected


def test_the_backend_loads_once_for_the_whole_tree(cli, monkeypatch, image, tmp_path):
    loads = []

    class Counting(StripesBackend):
        def __init__(self, settings) -> None:
            loads.append(settings)
            super().__init__(settings)

    register(monkeypatch, Counting)
    path, _ = image
    args = ["-b", "stripes", "-n", "3", "--recursive", "2"]
    assert cli("decompose", path, "-o", tmp_path / "o.psd", *args).code == 0
    assert len(loads) == 1


def test_split_layers_and_background_options(cli, stripes, image, tmp_path):
    path, _ = image
    out = tmp_path / "o.ora"
    args = ["-b", "stripes", "-n", "3", "--recursive", "1", "--split-layers", "0,2"]
    assert cli("decompose", path, "-o", out, *args).code == 0
    assert [la.is_group for la in formats.read(out).layers] == [False, False, True]
    result = cli("decompose", path, "-o", out, *args, "--split-background", "--force")
    assert result.code == 0
    assert [la.is_group for la in formats.read(out).layers] == [True, False, True]
    assert cli("decompose", path, "-o", out, *args[:-1], "x,1", "--force").code == 2


def test_split_changes_only_that_layer(cli, stripes, image, tmp_path):
    path, pixels = image
    before = tmp_path / "r.psd"
    assert cli("decompose", path, "-o", before, "-b", "stripes", "-n", "3").code == 0
    after = tmp_path / "split.psd"
    result = cli("split", before, "--layer", "Layer 2", "-n", "2", "-b", "stripes", "-o", after)
    assert result.code == 0, result.stderr
    old, new = formats.read(before), formats.read(after)
    assert _names(new.layers) == ["Background", "Layer 1", ("Layer 2", ["Layer 2.0", "Layer 2.1"])]
    for a, b in zip(old.layers[:2], new.layers[:2], strict=True):
        assert np.array_equal(a.pixels, b.pixels)
    assert np.abs(new.layers[2].pixels.astype(int) - old.layers[2].pixels).max() <= 2
    assert np.abs(new.composite().astype(int) - pixels).max() <= 2
    # In place, by index; an unknown layer is a usage error and leaves the file alone.
    assert cli("split", before, "--layer", "1", "-n", "2", "-b", "stripes").code == 0
    assert [la.is_group for la in formats.read(before).layers] == [False, True, False]
    data = before.read_bytes()
    assert cli("split", before, "--layer", "Nope", "-b", "stripes").code == 2
    assert cli("split", before, "--layer", "7", "-b", "stripes").code == 2
    assert before.read_bytes() == data


def test_replace_recomposites_the_parents() -> None:
    disc = _disc()
    top = Layer.group("top", [Layer.group("mid", [disc])])
    stack = LayerStack([top])
    half = disc.pixels.copy()
    half[..., 3] //= 2
    new = recursion.replace(stack, disc, Layer("half", half))
    assert np.array_equal(new.layers[0].pixels, Layer.group("x", [Layer("h", half)]).pixels)
    assert stack.layers[0].children[0].children[0] is disc  # the original is untouched


def test_real_backend_tree_composites_to_the_input(cli, image, tmp_path):
    pytest.importorskip("cv2")
    path, pixels = image
    out = tmp_path / "tree"
    # Two layers for three elements: the disc and the bar share one, which splits again.
    args = ["-b", "classic", "-n", "2", "--recursive", "2", "--split-background"]
    assert cli("decompose", path, "-o", out, *args).code == 0
    stack = formats.read(out)
    assert any(layer.is_group for layer in stack.layers)
    assert np.abs(stack.composite().astype(int) - pixels).max() <= 2
    for group in (layer for layer in stack.walk() if layer.is_group):
        for child in group.children:  # nothing outside the parent's alpha
            assert not (child.pixels[..., 3] > group.pixels[..., 3].astype(int) + 2).any()
