"""``layerctl caption``: the prompt a captioning backend would use for an image, on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from layerctl.options import (
    Backend,
    Base,
    CaptionLang,
    Device,
    Dtype,
    MaxMemory,
    MaxPixels,
    Resolution,
    Weights,
)

_IMAGE = Annotated[Path, typer.Argument(help="The image to describe.")]


def caption(
    image: _IMAGE,
    weights: Weights = None,
    base: Base = None,
    backend: Backend = "auto",
    caption_lang: CaptionLang = "en",
    resolution: Resolution = "640",
    device: Device = "auto",
    dtype: Dtype = "auto",
    max_pixels: MaxPixels = None,
    max_memory: MaxMemory = None,
) -> None:
    """Caption an image as a backend that captions would (qwen: the Qwen2.5-VL text
    encoder; cached by image content)."""
    from layerctl.backends import base as backends
    from layerctl.backends import capabilities
    from layerctl.imageio import read_image

    values = {"weights": weights, "base": base, "device": device, "dtype": dtype}
    cls = capabilities.resolve(backend, values, capabilities.Captioner, "caption")
    source = read_image(image, max_pixels, max_memory=max_memory)
    engine = cast(
        capabilities.Captioner, backends.load(cls.name, backends.settings_for(cls, values))
    )
    request = backends.build(
        backends.request_type(cls), {"caption_lang": caption_lang, "resolution": resolution}
    )
    typer.echo(engine.caption(source.pixels, request))
