import numpy as np
import pytest
from PIL import Image

from layerctl.stack import Layer, LayerStack, alpha_bbox, composite


def _random_layers(n: int, seed: int = 0, size=(48, 32)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8) for _ in range(n)]


def test_composite_matches_pillow_alpha_composite():
    layers = _random_layers(4)
    ref = Image.fromarray(layers[0])
    for layer in layers[1:]:
        ref = Image.alpha_composite(ref, Image.fromarray(layer))
    ours = composite(layers).astype(int)
    ref_arr = np.asarray(ref).astype(int)
    assert np.abs(ours[..., 3] - ref_arr[..., 3]).max() <= 1
    visible = ref_arr[..., 3] > 0
    assert np.abs(ours[..., :3] - ref_arr[..., :3])[visible].max() <= 1


def test_composite_of_opaque_top_is_top():
    bottom, top = _random_layers(2, seed=3)
    top[..., 3] = 255
    assert np.array_equal(composite([bottom, top]), top)


def test_bbox_coverage_and_empty():
    pixels = np.zeros((10, 20, 4), np.uint8)
    layer = Layer("x", pixels)
    assert layer.bbox() is None and layer.is_empty() and layer.coverage() == 0
    pixels[2:5, 3:9, 3] = 255
    assert Layer("x", pixels).bbox() == (3, 2, 9, 5)
    assert alpha_bbox(pixels[..., 3]) == (3, 2, 9, 5)
    assert Layer("x", pixels).coverage() == pytest.approx(18 / 200)


def test_groups_walk_prune_and_composite():
    a, b, c = _random_layers(3, seed=5)
    empty = np.zeros_like(a)
    group = Layer.group("G", [Layer("b", b), Layer("e", empty), Layer("c", c)])
    stack = LayerStack([Layer("a", a), group])
    assert [layer.name for layer in stack.walk()] == ["a", "G", "b", "e", "c"]
    assert [layer.name for layer in stack.leaves()] == ["a", "b", "e", "c"]
    flat = composite([a, b, empty, c]).astype(int)
    assert np.abs(stack.composite().astype(int) - flat).max() <= 1  # groups round once more
    pruned = stack.prune_empty()
    assert [layer.name for layer in pruned.walk()] == ["a", "G", "b", "c"]


def test_rejects_bad_pixels_and_mixed_sizes():
    with pytest.raises(ValueError):
        Layer("bad", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        LayerStack(
            [Layer("a", np.zeros((4, 4, 4), np.uint8)), Layer("b", np.zeros((5, 4, 4), np.uint8))]
        )


def test_a_stack_with_every_layer_hidden_composites_to_a_clear_canvas() -> None:
    """Found by the crafted-manifest fuzz: writing or composing such a result crashed."""
    layer = Layer("a", np.full((3, 5, 4), 200, np.uint8), visible=False)
    assert not LayerStack([layer]).composite().any()
    assert LayerStack([layer]).composite().shape == (3, 5, 4)
