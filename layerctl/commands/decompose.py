"""``layerctl decompose``: one image in, a layered file out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.imageio import DEFAULT_MAX_PIXELS
from layerctl.options import Debug, Force, Format, Json, MaxPixels, Quiet
from layerctl.stack import LayerStack

_DEFAULTS = DecomposeRequest()


def decompose(
    input: Annotated[Path, typer.Argument(help="The image to split (PNG, JPEG, WebP, TIFF, …).")],
    layers: Annotated[int, typer.Option("--layers", "-n", min=1, max=64, help="Layers.")] = 4,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Result: .psd, .ora or a folder (PNG stack)."),
    ] = None,
    fmt: Format = None,
    backend: Annotated[
        str, typer.Option("--backend", "-b", help="auto, classic, qwen, onnx, …")
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = _DEFAULTS.seed,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Describe the image (default: auto-caption).")
    ] = None,
    negative_prompt: Annotated[
        str, typer.Option("--negative-prompt", help="Negative prompt for true CFG.")
    ] = _DEFAULTS.negative_prompt,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Sampling steps.")] = _DEFAULTS.steps,
    cfg: Annotated[float, typer.Option("--cfg", help="True CFG scale.")] = _DEFAULTS.cfg,
    cfg_normalize: Annotated[
        bool, typer.Option("--cfg-normalize/--no-cfg-normalize", help="Rescale CFG output.")
    ] = _DEFAULTS.cfg_normalize,
    resolution: Annotated[
        int, typer.Option("--resolution", help="Model bucket: 640 or 1024.")
    ] = _DEFAULTS.resolution,
    caption_lang: Annotated[
        str, typer.Option("--caption-lang", help="Auto-caption language: en or zh.")
    ] = _DEFAULTS.caption_lang,
    weights: Annotated[
        str | None, typer.Option("--weights", help="Model folder or registry name.")
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")] = "auto",
    dtype: Annotated[
        str, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")
    ] = "auto",
    output_size: Annotated[
        str, typer.Option("--output-size", help="input (default) or model resolution.")
    ] = "input",
    lossless: Annotated[
        bool, typer.Option("--lossless/--no-lossless", help="Make the composite equal the input.")
    ] = True,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    force: Force = False,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split an image into a stack of RGBA layers."""
    from layerctl import api

    console.state.quiet, console.state.debug = quiet, debug or console.state.debug
    output = output or input.with_suffix(".psd")
    request = dict(
        seed=seed,
        prompt=prompt,
        negative_prompt=negative_prompt,
        steps=steps,
        cfg=cfg,
        cfg_normalize=cfg_normalize,
        resolution=resolution,
        caption_lang=caption_lang,
    )
    settings = BackendSettings(weights=weights, device=device, dtype=dtype)
    start = time.perf_counter()
    with console.status(f"decomposing {input.name}"):
        stack = api.decompose_file(
            input,
            output,
            layers,
            fmt=fmt,
            force=force,
            max_pixels=max_pixels,
            backend=backend,
            settings=settings,
            lossless=lossless,
            output_size=output_size,
            **request,
        )
    seconds = time.perf_counter() - start
    if json_out:
        typer.echo(json.dumps(result_record(input, output, stack, seconds)))
    console.info(f"wrote {output} ({len(stack)} layers, {seconds:.1f} s)")


def result_record(input: Path, output: Path, stack: LayerStack, seconds: float) -> dict:
    """The JSON object printed per input with --json."""
    return {
        "input": str(input),
        "output": str(output),
        "status": "ok",
        "error": None,
        "seconds": round(seconds, 3),
        "backend": stack.metadata.get("backend"),
        "layers": [
            {"name": layer.name, "bbox": layer.bbox(), "coverage": round(layer.coverage(), 6)}
            for layer in stack.layers
        ],
    }
