"""``layerctl split``: split one layer of an existing result into a group of layers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.backends.base import DecomposeRequest
from layerctl.errors import BadInput, UsageError
from layerctl.options import (
    Backend,
    CaptionLang,
    Cfg,
    CfgNormalize,
    CfgTruncate,
    Compile,
    Debug,
    Device,
    Dtype,
    Force,
    Format,
    Layers,
    Lossless,
    MaxLayers,
    MaxMemory,
    NegativePrompt,
    Offload,
    Prompt,
    Providers,
    Quantize,
    Quiet,
    Resolution,
    ResultPath,
    Seed,
    StepCache,
    Steps,
    VaeTiling,
    Weights,
)

_DEFAULTS = DecomposeRequest()


def split(
    ctx: typer.Context,
    result: ResultPath,
    layer: Annotated[
        str,
        typer.Option(
            "--layer", "-l", help="The layer: its name, or its index among the top-level layers."
        ),
    ],
    layers: Layers = "4",
    max_layers: MaxLayers = 8,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write a new result here (default: in place)."),
    ] = None,
    fmt: Format = None,
    backend: Backend = "auto",
    seed: Seed = _DEFAULTS.seed,
    prompt: Prompt = None,
    negative_prompt: NegativePrompt = _DEFAULTS.negative_prompt,
    steps: Steps = _DEFAULTS.steps,
    cfg: Cfg = _DEFAULTS.cfg,
    cfg_normalize: CfgNormalize = _DEFAULTS.cfg_normalize,
    resolution: Resolution = _DEFAULTS.resolution,
    caption_lang: CaptionLang = _DEFAULTS.caption_lang,
    weights: Weights = None,
    device: Device = "auto",
    dtype: Dtype = "auto",
    offload: Offload = "auto",
    vae_tiling: VaeTiling = False,
    providers: Providers = None,
    compile: Compile = False,
    quantize: Quantize = None,
    step_cache: StepCache = _DEFAULTS.step_cache,
    cfg_truncate: CfgTruncate = _DEFAULTS.cfg_truncate,
    lossless: Lossless = True,
    max_memory: MaxMemory = None,
    force: Force = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split one layer of a PSD / ORA / PNG stack into a group; the others stay as they are."""
    from layerctl import budget, formats, recursion
    from layerctl.commands.decompose import build_options
    from layerctl.pipeline import layer_splitter, peak_cost

    console.state.quiet, console.state.debug = quiet, debug or console.state.debug
    target, fmt = (output, fmt) if output else (result, fmt or formats.detect(result))
    formats.format_for(target, fmt)  # usage errors before any work
    options = build_options(ctx.params)
    if options.layers != "auto" and int(options.layers) < 2:
        raise UsageError(f"-n {options.layers}: splitting needs at least 2 layers")
    stack = formats.read(result, max_memory)
    old = recursion.find(stack, layer)
    width, height = stack.size  # the layer is split at the canvas size: plan it first
    cost = peak_cost(options)
    budget.check(f"{result}: {width}x{height}", cost.of(width * height), max_memory, "splitting ")
    with console.status(f"splitting {old.name}"):
        group = recursion.split_layer(old, layer_splitter(options))
    if not group.is_group:
        raise BadInput(
            f"{old.name!r} holds one element: there is nothing to split it into",
            hint="a layer of several elements splits; see `layerctl info`",
        )
    stack = recursion.replace(stack, old, group)
    stack.metadata.setdefault("splits", []).append(
        {"layer": old.name, "layers": len(group.children), "seed": seed, "backend": backend}
    )
    formats.write(stack, target, fmt, force=force or output is None)
    console.info(f"wrote {target} ({old.name!r} split into {len(group.children)} layers)")
