"""Shared fixtures: an isolated environment per test and an in-process CLI runner."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from layerctl import console


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the user's config, caches or LAYERCTL_* settings, or the network."""
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith("LAYERCTL_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr(console, "state", console._State())


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``layerctl ARGS…`` in-process through the real entry point and error boundary."""
    from layerctl.cli import main

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run


@pytest.fixture
def flat_design() -> np.ndarray:
    """A small flat graphic: a background, a disc and a bar, with anti-aliased edges."""
    from PIL import Image, ImageDraw

    scale = 4
    w, h = 96, 64
    img = Image.new("RGBA", (w * scale, h * scale), (240, 236, 220, 255))
    draw = ImageDraw.Draw(img)
    draw.ellipse((10 * scale, 8 * scale, 46 * scale, 44 * scale), fill=(200, 40, 40, 255))
    draw.rectangle((40 * scale, 30 * scale, 88 * scale, 50 * scale), fill=(30, 80, 190, 255))
    img = img.resize((w, h), Image.Resampling.LANCZOS)
    return np.asarray(img).copy()


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen-Image-Layered checkpoint in the hub's folder layout, built once."""
    pytest.importorskip("diffusers")
    from tiny_qwen import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny-qwen") / "Qwen-Image-Layered")


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face hub cache that huggingface_hub reads, offline."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache
