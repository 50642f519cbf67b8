"""``layerctl caption``: the prompt the qwen backend would use for an image, on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl.options import CaptionLang, Device, Dtype, MaxMemory, MaxPixels, Resolution, Weights

_IMAGE = Annotated[Path, typer.Argument(help="The image to describe.")]


def caption(
    image: _IMAGE,
    weights: Weights = None,
    caption_lang: CaptionLang = "en",
    resolution: Resolution = "640",
    device: Device = "auto",
    dtype: Dtype = "auto",
    max_pixels: MaxPixels = None,
    max_memory: MaxMemory = None,
) -> None:
    """Caption an image with the Qwen2.5-VL text encoder (cached by image content)."""
    from layerctl.backends import base
    from layerctl.imageio import read_image

    source = read_image(image, max_pixels, max_memory=max_memory)
    qwen = base.backend_class("qwen")
    settings = base.settings_for(qwen, {"weights": weights, "device": device, "dtype": dtype})
    engine = base.load("qwen", settings)
    request = base.build(qwen.Request, {"caption_lang": caption_lang, "resolution": resolution})
    typer.echo(engine.caption(source.pixels, request))
