"""bench/designs.py: the independent design generator keeps its own contract."""

from __future__ import annotations

import bench_scripts
import numpy as np
import pytest

from layerctl.stack import composite

designs = bench_scripts.load("designs")
SMALL = 0.35  # megapixels: keeps the test quick while still crossing the 0.3 MP floor


@pytest.mark.parametrize("family", designs.FAMILIES)
def test_layers_rebuild_the_image_and_carry_valid_roles(family: str) -> None:
    for seed in range(3):
        s = designs.sample(family, seed, SMALL)
        h, w = s.image.shape[:2]
        assert 0.3e6 * 0.99 <= w * h <= SMALL * 1e6 * 1.01
        assert s.image.dtype == np.uint8 and s.image.shape == (h, w, 4)
        assert len(s.layers) == len(s.names) >= 2
        assert s.names[0] == "Background" and set(s.names) <= set(designs.ROLES)
        assert (s.layers[0][..., 3] == 255).all()  # the ground is opaque
        for layer in s.layers:
            assert layer.shape == (h, w, 4) and layer.dtype == np.uint8
            assert layer[..., 3].any()
        flat = composite(s.layers)
        diff = np.abs(flat.astype(int) - s.image.astype(int)).max()
        if family == "jpeg":
            assert diff > 0 and (s.image[..., 3] == 255).all()
        else:
            assert diff <= 1, f"{family} #{seed}: composite differs by {diff}"


def test_same_seed_same_design_and_seeds_differ() -> None:
    for family in designs.FAMILIES:
        a, b = designs.sample(family, 7, SMALL), designs.sample(family, 7, SMALL)
        assert a.source == b.source and a.names == b.names
        assert np.array_equal(a.image, b.image)
        assert all(np.array_equal(x, y) for x, y in zip(a.layers, b.layers, strict=True))
    shapes = {designs.sample("shape_overlaps", k, SMALL).image.shape for k in range(4)}
    assert len(shapes) > 1


def test_sizes_span_the_range_and_respect_the_cap() -> None:
    rng = np.random.default_rng(0)
    areas = [np.prod(designs.canvas_size(rng)) / 1e6 for _ in range(400)]
    assert 0.3 * 0.99 <= min(areas) < 0.5 and 3.0 < max(areas) <= 4.0 * 1.01
    sizes = [designs.canvas_size(rng) for _ in range(200)]
    assert any(w > h for w, h in sizes) and any(w < h for w, h in sizes)
    assert any(w == h for w, h in sizes)
    capped = [np.prod(designs.canvas_size(rng, 1.0)) / 1e6 for _ in range(200)]
    assert max(capped) <= 1.01


def test_edges_are_antialiased() -> None:
    """Rims carry partial alpha, as renders do, instead of hard 0/255 steps."""
    s = designs.sample("shape_overlaps", 0, SMALL)
    alpha = s.layers[s.names.index("Shape")][..., 3]
    assert ((alpha > 0) & (alpha < 255)).sum() > 0.01 * (alpha == 255).sum()


def test_contact_sheet_shows_every_design(tmp_path, monkeypatch) -> None:
    from PIL import Image

    monkeypatch.setattr(designs, "FAMILIES", ("strokes", "jpeg"))
    out = tmp_path / "sheet.png"
    designs.write_sheet(out, per_family=2, seed=0, max_megapixels=0.3)
    with Image.open(out) as sheet:
        assert sheet.height > 4 * 180  # four designs, each a block of thumbnails


def test_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown family"):
        designs.sample("nope", 0)
