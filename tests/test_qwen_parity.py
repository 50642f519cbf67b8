"""``layerctl decompose --backend qwen`` against diffusers' QwenImageLayeredPipeline.

Same tiny checkpoint folder, image, prompt, seed, steps and settings; every uint8 channel
within 1. The seed is the one our run used, from its manifest: layerctl derives a
per-image seed from ``--seed`` and the image's content (layerctl/seeds.py). The PNG-stack
writer clears the colour of fully transparent pixels, so colour is compared where both
sides have some alpha (alpha itself everywhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerctl import formats
from layerctl.stack import composite

pytest.importorskip("diffusers")
from qwen_reference import portrait, reference_pipeline, short_caption_copy

pytestmark = [pytest.mark.slow, pytest.mark.torch]

SEED, STEPS = 7, 2


@pytest.fixture(scope="module")
def reference(tiny_qwen: Path):
    return reference_pipeline(tiny_qwen)


def _run_reference(pipe, ours, image: Path, prompt: str | None, cfg_normalize: bool):
    """The reference on the same image with the seed and layer count our run used."""
    import torch

    out = pipe(
        image=Image.open(image).convert("RGBA"),
        prompt=prompt,
        negative_prompt=" ",
        true_cfg_scale=4.0,
        layers=len(ours.layers),
        num_inference_steps=STEPS,
        resolution=640,
        cfg_normalize=cfg_normalize,
        use_en_prompt=True,
        generator=torch.Generator().manual_seed(ours.metadata["seed"]),
    )
    return [np.asarray(layer) for layer in out.images[0]]


def _run_ours(cli, weights: Path, image: Path, out: Path, layers: int, *extra: str):
    result = cli(
        "decompose", image, "-o", out, "--backend", "qwen", "--weights", weights,
        "--layers", str(layers), "--seed", str(SEED), "--steps", str(STEPS),
        "--output-size", "model", "--no-lossless", "--format", "png", *extra,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    return formats.read(out)


def _assert_same_layers(ours, expected: list[np.ndarray]) -> None:
    layers = [layer.pixels for layer in ours.layers]
    assert [a.shape for a in layers] == [e.shape for e in expected]
    for i, (a, e) in enumerate(zip(layers, expected, strict=True)):
        a, e = a.astype(int), e.astype(int)
        alpha = np.abs(a[..., 3] - e[..., 3]).max()
        shown = (a[..., 3] > 0) & (e[..., 3] > 0)
        color = np.abs(a[..., :3] - e[..., :3])[shown].max(initial=0)
        assert alpha <= 1 and color <= 1, f"layer {i}: alpha off by {alpha}, colour by {color}"
        assert shown.mean() > 0.5, "the comparison must cover most of the layer"


def _save(pixels: np.ndarray, path: Path) -> Path:
    Image.fromarray(pixels, "RGBA").save(path)
    return path


@pytest.fixture
def square_image(tmp_path: Path) -> Path:
    """64×64 with a half-transparent patch, so the VAE sees the input's alpha."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    pixels[8:40, 16:48, 3] = 96
    return _save(pixels, tmp_path / "square.png")


def test_two_layers_square_with_cfg_normalize(cli, tiny_qwen, reference, square_image, tmp_path):
    ours = _run_ours(cli, tiny_qwen, square_image, tmp_path / "out", 2, "--prompt", "a red disc")
    expected = _run_reference(reference, ours, square_image, "a red disc", cfg_normalize=True)
    assert ours.layers[0].pixels.shape == (640, 640, 4)
    _assert_same_layers(ours, expected)


def test_three_layers_non_square_without_cfg_normalize(
    cli, tiny_qwen, reference, flat_design, tmp_path
):
    image = _save(flat_design, tmp_path / "flat.png")
    prompt = "a disc and a bar on a cream background"
    ours = _run_ours(
        cli, tiny_qwen, image, tmp_path / "out", 3, "--prompt", prompt, "--no-cfg-normalize"
    )
    expected = _run_reference(reference, ours, image, prompt, cfg_normalize=False)
    assert ours.layers[0].pixels.shape == (512, 768, 4)  # the reference's working size for 3:2
    _assert_same_layers(ours, expected)


@pytest.fixture(scope="module")
def short_caption_qwen(tiny_qwen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return short_caption_copy(tiny_qwen, tmp_path_factory.mktemp("short-caption") / "qwen")


def test_auto_caption_path(cli, short_caption_qwen, tmp_path):
    image = _save(portrait(), tmp_path / "portrait.png")
    ours = _run_ours(cli, short_caption_qwen, image, tmp_path / "out", 1)
    expected = _run_reference(reference_pipeline(short_caption_qwen), ours, image, None, True)
    assert ours.layers[0].pixels.shape == (768, 512, 4)
    _assert_same_layers(ours, expected)


def test_lossless_composite_equals_the_input(cli, tiny_qwen, flat_design, tmp_path):
    image = _save(flat_design, tmp_path / "flat.png")
    out = tmp_path / "out"
    result = cli(
        "decompose", image, "-o", out, "--backend", "qwen", "--weights", tiny_qwen,
        "--layers", "2", "--steps", "2", "--prompt", "shapes", "--format", "png",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    layers = [layer.pixels for layer in formats.read(out).layers]
    assert layers[0].shape == flat_design.shape  # back at the input's size
    diff = np.abs(composite(layers).astype(int) - flat_design.astype(int))
    assert diff.max() <= 1


def test_auto_picks_qwen_when_torch_and_weights_are_present(tiny_qwen, monkeypatch):
    from layerctl.backends import base

    monkeypatch.setenv("LAYERCTL_WEIGHTS", str(tiny_qwen))
    assert base.configure("auto", {})[0] == "qwen"
    monkeypatch.setenv("LAYERCTL_WEIGHTS", str(tiny_qwen / "missing"))
    ok, why = base.backend_class("qwen").available(base.settings_for(base.backend_class("qwen")))
    assert not ok and "missing" in why


@pytest.fixture(scope="module")
def qwen_image_scheduler(tiny_qwen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` (linked) with Qwen-Image's scheduler config instead of the released
    Qwen-Image-Layered one: exponential time shift, shift_terminal 0.02."""
    import json
    import shutil

    from tiny_qwen import QWEN_IMAGE_SCHEDULER

    folder = tmp_path_factory.mktemp("exponential") / "qwen"
    shutil.copytree(tiny_qwen, folder, copy_function=lambda s, d: Path(d).symlink_to(s))
    config = folder / "scheduler" / "scheduler_config.json"
    config.unlink()  # a link into the shared fixture: replace it, never write through
    config.write_text(json.dumps(QWEN_IMAGE_SCHEDULER))
    return folder


def test_the_checkpoints_scheduler_config_decides(
    cli, tiny_qwen, qwen_image_scheduler, square_image, tmp_path
):
    """Same weights, Qwen-Image's schedule: still the reference's layers, and not the
    layers of the released (linear, unstretched) schedule."""
    prompt = "a red disc"
    ours = _run_ours(
        cli, qwen_image_scheduler, square_image, tmp_path / "exp", 2, "--prompt", prompt
    )
    pipe = reference_pipeline(qwen_image_scheduler)
    assert pipe.scheduler.config.time_shift_type == "exponential"
    _assert_same_layers(ours, _run_reference(pipe, ours, square_image, prompt, True))
    released = _run_ours(cli, tiny_qwen, square_image, tmp_path / "lin", 2, "--prompt", prompt)
    differ = [
        np.abs(a.pixels.astype(int) - b.pixels).max()
        for a, b in zip(ours.layers, released.layers, strict=True)
    ]
    assert max(differ) > 1, "the two schedules must give different layers"
