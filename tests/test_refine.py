import numpy as np

from layerctl import refine
from layerctl.refine import make_lossless, to_size
from layerctl.stack import composite


def _layers(rng, n, h, w):
    return [rng.integers(0, 256, (h, w, 4), dtype=np.uint8) for _ in range(n)]


def test_lossless_on_opaque_input_is_exact_within_one():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 4), dtype=np.uint8)
    image[..., 3] = 255
    out = make_lossless(_layers(rng, 4, 40, 60), image)
    assert len(out) == 4 and all(o.shape == image.shape for o in out)
    assert np.abs(composite(out).astype(int) - image.astype(int)).max() <= 1


def test_lossless_keeps_the_input_alpha():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 30, 4), dtype=np.uint8)
    out = make_lossless(_layers(rng, 3, 30, 30), image)
    diff = np.abs(composite(out).astype(int) - image.astype(int))
    assert diff[..., 3].max() <= 1
    assert diff[..., :3][image[..., 3] >= 32].max() <= 1


def test_lossless_changes_little_when_layers_are_nearly_right():
    rng = np.random.default_rng(2)
    bg = rng.integers(0, 256, (20, 20, 4), dtype=np.uint8)
    bg[..., 3] = 255
    fg = np.zeros_like(bg)
    fg[5:15, 5:15] = (200, 10, 10, 255)
    image = composite([bg, fg])
    noisy_fg = fg.copy()
    noisy_fg[5:15, 5:15, 0] = 198
    out = make_lossless([bg, noisy_fg], image)
    assert np.array_equal(out[0][..., 3], bg[..., 3])
    assert np.abs(out[1].astype(int) - fg.astype(int)).max() <= 1


def test_to_size_resizes_in_premultiplied_space():
    layer = np.zeros((8, 8, 4), np.uint8)
    layer[:, 4:] = (255, 0, 0, 255)  # red on the right, transparent black on the left
    (big,) = to_size([layer], (16, 16))
    assert big.shape == (16, 16, 4)
    visible = big[..., 3] > 0
    assert (big[..., 0][visible] >= 250).all() and (big[..., 1:3][visible] <= 5).all()


def test_lossless_does_not_hole_the_background_under_opaque_elements():
    bg = np.full((10, 10, 4), (240, 230, 200, 255), np.uint8)
    fg = np.zeros_like(bg)
    fg[2:8, 2:8] = (20, 40, 200, 255)
    image = composite([bg, fg])
    out = make_lossless([bg, fg], image)
    assert (out[0][..., 3] == 255).all()
    assert np.array_equal(composite(out), image)


def test_lossless_leaves_layers_that_already_composite_to_the_input_as_they_are():
    rng = np.random.default_rng(3)
    bg = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    bg[..., 3] = 255
    veil = np.zeros_like(bg)
    veil[4:20, 6:28] = (250, 250, 250, 100)  # a translucent card over a noisy ground
    text = np.zeros_like(bg)
    text[8:12, 10:20] = (10, 20, 30, 255)
    layers = [bg, veil, text]
    out = make_lossless(layers, composite(layers))
    assert all(np.array_equal(o, layer) for o, layer in zip(out, layers, strict=True))


def test_lossless_gives_the_same_layers_whatever_the_band_height(monkeypatch):
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (37, 23, 4), dtype=np.uint8)
    layers = _layers(rng, 4, 37, 23)
    whole = make_lossless(layers, image)
    monkeypatch.setattr(refine, "CHUNK_PIXELS", 50)  # bands of 2 rows
    banded = make_lossless(layers, image)
    assert all(np.array_equal(a, b) for a, b in zip(whole, banded, strict=True))
