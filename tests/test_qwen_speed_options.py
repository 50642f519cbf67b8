"""The qwen backend's opt-in speed options (--compile, --quantize, --step-cache,
--cfg-truncate), its per-prompt forwards, and which folders it accepts as weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerctl import formats
from layerctl.backends.base import configure
from layerctl.backends.model_options import QwenRequest, QwenSettings

pytest.importorskip("diffusers")
from layerctl.backends.qwen import backend, speed
from layerctl.errors import UsageError


def _image(tmp_path: Path) -> Path:
    pixels = np.full((32, 48, 4), (240, 230, 210, 255), np.uint8)
    pixels[8:24, 12:30] = (200, 30, 30, 255)
    path = tmp_path / "in.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return path


@pytest.mark.parametrize(
    "option",
    [
        ("--quantize", "int8"),
        ("--step-cache", "-0.1"),
        ("--cfg-truncate", "1.5"),
        ("--cfg-truncate", "-1"),
    ],
)
def test_cli_refuses_bad_values(cli, tmp_path, option):
    result = cli("decompose", _image(tmp_path), "-o", tmp_path / "out.psd", *option)
    assert result.code == 2, result.stderr
    assert option[0] in result.stderr


@pytest.mark.parametrize(
    ("quantize", "step_cache", "cfg_truncate", "message"),
    [("int8", 0.0, 0.0, "--quantize"), (None, -1.0, 0.0, "--step-cache"), (None, 0, 2, "sigma")],
)
def test_api_values_are_checked_too(quantize, step_cache, cfg_truncate, message):
    with pytest.raises(UsageError, match=message):
        speed.SpeedOptions.of(quantize, step_cache, cfg_truncate)


def test_fp8_needs_ada_or_hopper():
    with pytest.raises(UsageError, match=r"compute capability 8\.9"):
        speed.require_fp8("cpu")


def test_classic_refuses_them(cli, tmp_path):
    """Options the backend does not take are usage errors, not silently ignored."""
    for flag, value in (("--step-cache", "0.05"), ("--cfg-truncate", "0.4")):
        args = ["-o", tmp_path / "out", "--backend", "classic", flag, value]
        result = cli("decompose", _image(tmp_path), *args)
        assert result.code == 2, result.stderr
        assert f"{flag} is not an option of the classic backend" in result.stderr
        assert "it is for qwen" in result.stderr
    assert not (tmp_path / "out").exists()


def test_onnx_refuses_compile_and_quantize(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "layerctl-onnx"}))
    for option, value in (("compile", True), ("quantize", "fp8")):
        with pytest.raises(UsageError, match=f"{option} is not an option of the onnx backend"):
            configure("onnx", {"weights": str(tmp_path), option: value}, strict={option})


class _Recorder:
    """A transformer stand-in that records each call's text batch and mask."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, object]] = []

    def __call__(self, hidden_states, encoder_hidden_states, encoder_hidden_states_mask, **_):
        text = encoder_hidden_states
        self.calls.append((text.shape[0], text.shape[1], encoder_hidden_states_mask))
        return (hidden_states * text.mean(),)


def test_one_unpadded_forward_per_prompt():
    """Cond and uncond of different lengths: two forwards at their own lengths, no mask;
    the velocities are those of each prompt alone."""
    import torch

    cond_tokens = torch.randn(1, 4, 8)
    embeds = [torch.randn(1, 5, 3), torch.randn(1, 2, 3)]
    recorder = _Recorder()
    model = backend.transformer_model(recorder, cond_tokens, embeds, [(1, 2, 2)] * 3)
    latents = torch.randn(1, 6, 8)
    cond, uncond = model(latents, 500.0)
    assert recorder.calls == [(1, 5, None), (1, 2, None)]
    assert cond.shape == uncond.shape == latents.shape
    assert torch.equal(cond, latents * embeds[0].mean())
    assert torch.equal(uncond, latents * embeds[1].mean())
    only, none = backend.transformer_model(recorder, cond_tokens, embeds[:1], [])(latents, 1.0)
    assert none is None and torch.equal(only, cond)


def test_cfg_truncation_drops_uncond_below_sigma():
    import torch

    recorder = _Recorder()
    embeds = [torch.randn(1, 5, 3), torch.randn(1, 2, 3)]
    factory = speed.model_factory(backend.transformer_model, speed.SpeedOptions(cfg_truncate=0.5))
    model = factory(recorder, torch.randn(1, 4, 8), embeds, [])
    latents = torch.randn(1, 6, 8)
    assert model(latents, 600.0)[1] is not None
    assert model(latents, 400.0)[1] is None
    assert [c[1] for c in recorder.calls] == [5, 2, 5]


# Operators whose result the host must wait for (on CUDA, a device-to-host sync): a
# tensor read as a Python number or bool, and outputs whose size depends on the data.
SYNCING_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2"}


@pytest.mark.slow
def test_the_step_loop_never_waits_for_the_device(tiny_qwen, monkeypatch):
    """Every aten operator the sampling loop dispatches (ours and diffusers'
    transformer, cond and uncond, with cfg_normalize) is recorded: none makes the host
    wait, so on a GPU the steps queue up without a sync."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from layerctl.backends.layered import flow

    ops: set[str] = set()

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops.add(func.__name__.split(".")[0])
            return func(*args, **(kwargs or {}))

    denoise = flow.denoise

    def recorded(*args, **kwargs):
        with Recorder():
            return denoise(*args, **kwargs)

    monkeypatch.setattr(flow, "denoise", recorded)
    qwen = backend.QwenBackend(QwenSettings(weights=str(tiny_qwen), device="cpu"))
    request = QwenRequest(layers=2, steps=2, resolution=64, prompt="a red card")
    qwen.decompose(np.full((32, 48, 4), 200, np.uint8), request)
    assert {"linear", "scaled_dot_product_attention"} <= ops  # it saw the model
    assert not ops & SYNCING_OPS


@pytest.mark.slow
def test_qwen_runs_with_step_cache_and_cfg_truncation(cli, tiny_qwen, tmp_path):
    out = tmp_path / "out"
    result = cli(
        "decompose", _image(tmp_path), "-o", out, "--format", "png", "--backend", "qwen",
        "--weights", tiny_qwen, "-n", "2", "--steps", "2", "--prompt", "shapes",
        "--step-cache", "0.05", "--cfg-truncate", "0.5",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert formats.read(out).metadata["parameters"]["cfg_truncate"] == 0.5


@pytest.mark.slow
def test_quantize_fp8_off_hopper_is_one_line(cli, tiny_qwen, tmp_path):
    result = cli(
        "decompose", _image(tmp_path), "-o", tmp_path / "out.psd", "--backend", "qwen",
        "--weights", tiny_qwen, "--device", "cpu", "--steps", "2", "--prompt", "x",
        "--quantize", "fp8",
    )  # fmt: skip
    assert result.code == 2
    assert "compute capability 8.9" in result.stderr and "Traceback" not in result.stderr


# --- which folders are Qwen-Image-Layered checkpoints ---------------------------------


def test_an_onnx_export_is_not_a_qwen_checkpoint(tmp_path, monkeypatch):
    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"format": "layerctl-onnx"}))
    settings = {"weights": str(export)}
    ok, why = backend.QwenBackend.available(QwenSettings(**settings))
    assert not ok and "model_index.json" in why
    assert configure("auto", settings)[0] != "qwen"


def test_another_pipeline_is_not_a_qwen_checkpoint(tmp_path):
    folder = tmp_path / "sd"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"unet": ["diffusers", "UNet"]}))
    ok, why = backend.QwenBackend.available(QwenSettings(weights=str(folder)))
    assert not ok and "transformer" in why


@pytest.mark.slow
def test_an_incomplete_download_is_refused(tiny_qwen, tmp_path):
    assert backend.QwenBackend.available(QwenSettings(weights=str(tiny_qwen)))[0]
    copy = shutil.copytree(tiny_qwen, tmp_path / "partial")
    shard = next((copy / "transformer").glob("*.safetensors"))
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    settings = {"weights": str(copy)}
    ok, why = backend.QwenBackend.available(QwenSettings(**settings))
    assert not ok and "incomplete" in why and "transformer" in why
    assert configure("auto", settings)[0] != "qwen"
