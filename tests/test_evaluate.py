"""The LayerD protocol on cases small enough to compute by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from layerctl import formats
from layerctl.evaluate import (
    alpha_iou,
    dtw_path,
    evaluate_layers,
    mean_levels,
    occlusion_groups,
    rgb_l1,
)
from layerctl.stack import Layer, LayerStack

BLACK, RED, BLUE = (0, 0, 0), (255, 0, 0), (0, 0, 255)


def strip(*pixels: tuple[tuple[int, int, int], int]) -> np.ndarray:
    """A 1×N RGBA layer from (rgb, alpha) per pixel."""
    return np.array([[(*rgb, a) for rgb, a in pixels]], np.uint8)


def test_rgb_l1_counts_only_ground_truth_visible_pixels() -> None:
    gt = strip((BLACK, 255), ((100, 100, 100), 255), (BLACK, 0), (BLACK, 0))
    pred = strip(((51, 51, 51), 255), ((100, 100, 100), 255), (RED, 255), (RED, 9))
    assert rgb_l1(pred, gt) == pytest.approx((51 / 255 + 0) / 2)


def test_alpha_soft_iou() -> None:
    pred = strip((BLACK, 255), (BLACK, 0), (BLACK, 51))
    gt = strip((BLACK, 255), (BLACK, 255), (BLACK, 0))
    assert alpha_iou(pred, gt) == pytest.approx(255 / (255 + 255 + 51))
    empty = strip((BLACK, 0))
    assert alpha_iou(empty, empty) == 0.0


def test_occlusion_groups_bottom_first() -> None:
    a = np.array([[1, 1, 0, 0]])
    b = np.array([[0, 0, 1, 1]])
    c = np.array([[1, 0, 0, 0]])  # overlaps a only
    assert occlusion_groups([a, b, c]) == [[0], [1, 2]]
    assert occlusion_groups([a, a, a]) == [[0], [1], [2]]
    assert occlusion_groups([a, b]) == [[0, 1]]


def test_dtw_path_by_hand() -> None:
    cost = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0]])
    assert dtw_path(cost) == [(0, 0), (1, 1), (1, 2)]
    assert dtw_path(np.array([[0.5]])) == [(0, 0)]


def test_identical_stacks_score_perfectly_and_need_no_merge() -> None:
    layers = [strip((BLACK, 255), (BLACK, 255)), strip((RED, 255), (BLACK, 0))]
    levels = evaluate_layers(layers, layers)
    assert levels == [{"merges": 0, "rgb_l1": 0.0, "alpha_iou": 1.0, "cost": 0.0}]


def test_a_split_layer_is_forgiven_after_one_merge() -> None:
    # Ground truth: black background, one layer "red then blue" over pixels 1..3.
    # Prediction: the same as two overlapping layers, A (red, 1..2) under B (blue, 2..3).
    bg = strip((BLACK, 255), (BLACK, 255), (BLACK, 255), (BLACK, 255))
    a = strip((BLACK, 0), (RED, 255), (RED, 255), (BLACK, 0))
    b = strip((BLACK, 0), (BLACK, 0), (BLUE, 255), (BLUE, 255))
    ab = strip((BLACK, 0), (RED, 255), (BLUE, 255), (BLUE, 255))
    levels = evaluate_layers([bg, a, b], [bg, ab])
    # By hand: the path pairs (bg, bg), (A, bg), (B, AB) with costs 0, 1/3, 2/9.
    assert levels[0]["cost"] == pytest.approx(5 / 27)
    assert levels[0]["rgb_l1"] == pytest.approx(5 / 54)
    assert levels[0]["alpha_iou"] == pytest.approx(13 / 18)
    assert levels[1] == {"merges": 1, "rgb_l1": 0.0, "alpha_iou": 1.0, "cost": 0.0}
    assert len(levels) == 2  # two layers a side: nothing left to merge


def test_mean_levels_carries_a_finished_sample_forward() -> None:
    done = [{"merges": 0, "rgb_l1": 0.0, "alpha_iou": 1.0, "cost": 0.0}]
    merged = [
        {"merges": 0, "rgb_l1": 0.2, "alpha_iou": 0.6, "cost": 0.3},
        {"merges": 1, "rgb_l1": 0.1, "alpha_iou": 0.8, "cost": 0.15},
    ]
    mean = mean_levels([done, merged], max_merges=2)
    assert [row["merges"] for row in mean] == [0, 1, 2]
    assert mean[0]["rgb_l1"] == pytest.approx(0.1)
    assert mean[2]["alpha_iou"] == pytest.approx(0.9)


def _stack(*layers: np.ndarray) -> LayerStack:
    return LayerStack([Layer(f"L{i}", pixels) for i, pixels in enumerate(layers)])


def test_eval_command_on_files_and_folders(cli, tmp_path: Path) -> None:
    bg = np.full((8, 8, 4), 255, np.uint8)
    fg = np.zeros((8, 8, 4), np.uint8)
    fg[2:6, 2:6] = (200, 30, 30, 255)
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir()
    pred.mkdir()
    formats.write(_stack(bg, fg), truth / "one")  # PNG stack folder
    formats.write(_stack(bg, fg), truth / "two.psd")
    formats.write(_stack(bg, fg), pred / "one.ora")

    single = cli("eval", pred / "one.ora", truth / "one", "--json")
    assert single.code == 0, single.stderr
    report = json.loads(single.stdout)
    assert report["mean"][0]["alpha_iou"] == pytest.approx(1.0)

    folders = cli("eval", pred, truth, "--json")
    assert folders.code == 0, folders.stderr
    report = json.loads(folders.stdout)
    assert [s["name"] for s in report["samples"]] == ["one"]
    assert report["unmatched"] == ["two"]
    assert "no prediction for two" in folders.stderr

    table = cli("eval", pred / "one.ora", truth / "one")
    assert table.code == 0 and "alpha IoU" in table.stdout


def test_eval_rejects_mismatched_inputs(cli, tmp_path: Path) -> None:
    formats.write(_stack(np.full((8, 8, 4), 255, np.uint8)), tmp_path / "small")
    formats.write(_stack(np.full((9, 8, 4), 255, np.uint8)), tmp_path / "tall")
    result = cli("eval", tmp_path / "small", tmp_path / "tall")
    assert result.code == 2 and "canvas sizes differ" in result.stderr
    missing = cli("eval", tmp_path / "nope", tmp_path / "small")
    assert missing.code == 1 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr + result.stderr
