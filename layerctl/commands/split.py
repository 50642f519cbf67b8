"""``layerctl split``: split one layer of an existing result into a group of layers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.errors import BadInput, UsageError
from layerctl.options import (
    OUTPUT,
    Backend,
    Base,
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
    Json,
    Layers,
    Lora,
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
    backend: Backend = "auto",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Write a new result here (default: in place).",
            rich_help_panel=OUTPUT,
        ),
    ] = None,
    fmt: Format = None,
    force: Force = False,
    seed: Seed = 0,
    lossless: Lossless = True,
    weights: Weights = None,
    base: Base = None,
    prompt: Prompt = None,
    negative_prompt: NegativePrompt = " ",
    steps: Steps = 50,
    cfg: Cfg = 4.0,
    cfg_normalize: CfgNormalize = True,
    resolution: Resolution = "640",
    caption_lang: CaptionLang = "en",
    providers: Providers = None,
    lora: Lora = None,
    device: Device = "auto",
    dtype: Dtype = "auto",
    offload: Offload = "auto",
    vae_tiling: VaeTiling = False,
    compile: Compile = False,
    quantize: Quantize = None,
    step_cache: StepCache = 0.0,
    cfg_truncate: CfgTruncate = 0.0,
    max_memory: MaxMemory = None,
    json_out: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Split one layer of a PSD / ORA / PNG stack into a group; the others stay as they are.

    With --json: one object on stdout with result, output, layer, layers (how many it
    became), backend and seed; a failure is one line on stderr and a non-zero exit.
    """
    from layerctl import budget, formats, recursion
    from layerctl.commands.decompose import build_options
    from layerctl.decomposer import Decomposer, peak_cost
    from layerctl.outputs import json_text

    console.state.quiet, console.state.debug = quiet, debug or console.state.debug
    options = build_options(ctx)  # every option checked: usage errors before any work
    fmt = options.fmt
    target, fmt = (output, fmt) if output else (result, fmt or formats.detect(result))
    formats.format_for(target, fmt)
    if options.layers != "auto" and int(options.layers) < 2:
        raise UsageError(f"-n {options.layers}: splitting needs at least 2 layers")
    stack = formats.read(result, max_memory)
    old = recursion.find(stack, layer)
    width, height = stack.size  # the layer is split at the canvas size: plan it first
    cost = peak_cost(options)
    budget.check(f"{result}: {width}x{height}", cost.of(width * height), max_memory, "splitting ")
    decomposer = Decomposer(options)
    with console.status(f"splitting {old.name}"):
        group = recursion.split_layer(old, decomposer.split)
    if not group.is_group:
        raise BadInput(
            f"{old.name!r} holds one element: there is nothing to split it into",
            hint="a layer of several elements splits; see `layerctl info`",
        )
    stack = recursion.replace(stack, old, group)
    record = {"layer": old.name, "layers": len(group.children), "seed": seed}
    stack.metadata.setdefault("splits", []).append({**record, "backend": options.backend})
    formats.write(stack, target, fmt, force=force or output is None)
    if json_out:
        done = {"result": str(result), "output": str(target), **record}
        typer.echo(json_text({**done, "backend": options.backend}, indent=None))
    count = console.counted(len(group.children), "layer")
    console.info(f"wrote {target} ({old.name!r} split into {count})")
