"""The qwen backend's settings: device, dtype, working size and availability."""

from __future__ import annotations

import numpy as np
import pytest

from layerctl.backends import base
from layerctl.backends.model_options import QwenSettings
from layerctl.backends.qwen import backend
from layerctl.errors import BackendUnavailable, UsageError


def test_available_explains_missing_weights(tmp_path):
    pytest.importorskip("diffusers")
    ok, why = backend.QwenBackend.available(QwenSettings(weights=str(tmp_path / "none")))
    assert not ok and "none" in why


def test_canvas_warns_off_the_trained_buckets(capsys):
    image = np.zeros((64, 96, 4), np.uint8)
    assert backend.canvas(image, 640) == (768, 512)
    assert "warning" not in capsys.readouterr().err
    assert backend.canvas(image, 512) == (640, 416)
    assert "trained on 640 and 1024" in capsys.readouterr().err


def test_device_and_dtype_defaults():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("checks the CPU-only defaults")
    assert backend.pick_device("auto") == "cpu"
    assert backend.pick_dtype("auto", "cpu") is torch.float32
    assert backend.pick_dtype("auto", "cuda") is torch.bfloat16
    assert backend.pick_dtype("float16", "cpu") is torch.float16
    with pytest.raises(BackendUnavailable, match="cuda"):
        backend.pick_device("cuda")
    with pytest.raises(UsageError, match="--device"):
        backend.pick_device("tpu")
    with pytest.raises(UsageError, match="--dtype"):
        backend.pick_dtype("int8", "cpu")


def test_unknown_offload_mode_is_a_usage_error(tiny_qwen):
    with pytest.raises(UsageError, match="offload 'half'"):
        base.settings_for(backend.QwenBackend, {"weights": str(tiny_qwen), "offload": "half"})
