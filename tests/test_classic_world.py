"""bench/classic_world.py and bench/real_files.py: the trivial floor and real-file truth."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import bench_scripts
import numpy as np
import pytest

pytest.importorskip("psd_tools")


def _square_design(size: int = 8) -> list[np.ndarray]:
    """A black opaque background and a white square over a quarter of it."""
    background = np.zeros((size, size, 4), np.uint8)
    background[..., 3] = 255
    square = np.zeros_like(background)
    square[: size // 2, : size // 2] = 255
    return [background, square]


def test_trivial_answer_is_scored_as_the_input_plus_empty_layers() -> None:
    world = bench_scripts.load("classic_world")
    from layerctl.stack import composite

    truth = _square_design()
    image = composite(truth)
    floor = world.trivial(image, len(truth))
    assert len(floor) == 2 and np.array_equal(floor[0], image) and not floor[1].any()
    # One predicted group (the input) is matched to both truth layers: against the
    # background IoU 1 and L1 = the white quarter; against the square IoU 1/4, L1 0.
    scores = world.scores(floor, truth)
    assert scores["iou0"] == pytest.approx((1 + 0.25) / 2)
    assert scores["l1_0"] == pytest.approx((0.25 + 0) / 2)
    # Sampled 2× for scoring (a 64-px canvas down to 32), the same design scores the same.
    big = _square_design(64)
    full = (world.trivial(composite(big), 2), big)
    small = [world.shrink(x, 0.0011) for x in full]
    assert small[1][0].shape == (32, 32, 4)
    assert world.scores(*small) == pytest.approx(world.scores(*full))


def test_runner_scores_a_stand_in_family_against_its_floor(monkeypatch) -> None:
    world = bench_scripts.load("classic_world")
    real_files = bench_scripts.load("real_files")
    from layerctl.stack import composite

    def sample(family: str, seed: int):
        truth = _square_design(64)
        truth[1][:, :, :3] = (200, 30, 30)
        return real_files.Sample(composite(truth), truth, ["bg", "square"], f"{family} {seed}")

    monkeypatch.setitem(sys.modules, "designs", SimpleNamespace(FAMILIES=("flat",), sample=sample))
    args = world.argparse.Namespace(
        families="designs", heldout=False, per_family=2, seed=0, real_limit=None
    )
    assert world.plan(args) == [("designs", "flat", 0), ("designs", "flat", 1)]
    record = world.run_one(("designs", "flat", 0), world.Settings("classic"))
    assert record["family"] == "designs/flat" and record["truth_layers"] == 2
    assert record["iou0"] > record["trivial_iou0"] and record["l1_0"] <= record["trivial_l1_0"]
    (label, _, why), *_ = world.rows([record])
    assert label == "designs/flat" and "trivial" not in why


def _tiny_psd(path: Path, blend: str = "normal") -> list[np.ndarray]:
    """A 64×48 PSD: background, a red square (``blend``), a hidden and an empty layer."""
    from PIL import Image
    from psd_tools import PSDImage
    from psd_tools.constants import BlendMode

    psd = PSDImage.new("RGBA", (64, 48), color=(0, 0, 0, 0))
    psd._merged_alpha = True  # a merged image with real alpha (psd-tools 1.26)
    background = np.zeros((48, 64, 4), np.uint8)
    background[...] = (40, 120, 220, 255)
    square = np.zeros((16, 16, 4), np.uint8)
    square[...] = (230, 30, 30, 255)
    psd.create_pixel_layer(Image.fromarray(background, "RGBA"), name="bg", left=0, top=0)
    red = psd.create_pixel_layer(Image.fromarray(square, "RGBA"), name="red", left=8, top=4)
    red.blend_mode = BlendMode.MULTIPLY if blend == "multiply" else BlendMode.NORMAL
    hidden = psd.create_pixel_layer(Image.fromarray(square, "RGBA"), name="off", left=30, top=20)
    hidden.visible = False
    psd.create_pixel_layer(Image.new("RGBA", (8, 8)), name="empty", left=40, top=30)
    psd.save(path)  # psd-tools renders the merged image from the layers
    full = np.zeros_like(background)
    full[4:20, 8:24] = square
    return [background, full]


def test_real_files_truth_is_the_visible_non_empty_leaves(tmp_path) -> None:
    real_files = bench_scripts.load("real_files")
    from layerctl.stack import composite

    expected = _tiny_psd(tmp_path / "a.psd")
    image, layers, names = real_files.extract((tmp_path / "a.psd").read_bytes(), ".psd")
    assert names == ["bg", "red"]
    assert all(np.array_equal(a, b) for a, b in zip(layers, expected, strict=True))
    assert real_files.psnr(composite(layers), image) >= real_files.MIN_PSNR


def test_real_files_reject_a_look_made_by_a_blend_mode(tmp_path) -> None:
    real_files = bench_scripts.load("real_files")
    _tiny_psd(tmp_path / "m.psd", blend="multiply")
    with pytest.raises(real_files.Rejected, match=r"do not reproduce.*uses blend mode multiply"):
        real_files.extract((tmp_path / "m.psd").read_bytes(), ".psd")


def test_real_files_sample_builds_from_a_mirror_and_names_a_missing_one(
    tmp_path, monkeypatch
) -> None:
    real_files = bench_scripts.load("real_files")
    work = tmp_path / "work"
    work.mkdir()
    _tiny_psd(work / "a.psd")
    git = tmp_path / "mirror" / "someone+psdlib" / "repo"
    git.mkdir(parents=True)
    env = {**os.environ, "GIT_DIR": str(git), "GIT_WORK_TREE": str(work), "HOME": str(tmp_path)}
    for args in (["init", "-q"], ["add", "a.psd"], ["commit", "-qm", "x"]):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       env=env, check=True)  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "HEAD"], env=env, capture_output=True, text=True)
    record = {
        "repo": "someone/psdlib", "commit": commit.stdout.strip(), "path": "a.psd",
        "sha256": hashlib.sha256((work / "a.psd").read_bytes()).hexdigest(),
        "family": "real", "kept": True, "size": [64, 48], "layers": 2,
    }  # fmt: skip
    manifest = tmp_path / "list.json"
    manifest.write_text(json.dumps({"files": [record]}))
    monkeypatch.setattr(real_files, "MANIFEST", manifest)
    monkeypatch.setenv("LAYERCTL_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERCTL_BENCH_MIRRORS", str(tmp_path / "nowhere"))
    with pytest.raises(real_files.MissingMirror, match="fetch github:someone/psdlib"):
        real_files.sample("real", 0)
    monkeypatch.setenv("LAYERCTL_BENCH_MIRRORS", str(tmp_path / "mirror"))
    sample = real_files.sample("real", 0)
    assert sample.names == ["bg", "red"] and len(sample.layers) == 2
    assert sample.source.startswith("someone/psdlib:a.psd@")
    assert list((tmp_path / "cache").glob("*.npz"))  # cached for the next run
