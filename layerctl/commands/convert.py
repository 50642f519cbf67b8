"""``layerctl convert``: one layered format to another, keeping what the target holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Force, Format, Json, MaxMemory, Quiet, ResultPath
from layerctl.outputs import json_text


def convert(
    path: ResultPath,
    output: Annotated[
        Path,
        typer.Argument(help="The new result: .psd, .psb, .ora, .pptx, .svg or a folder."),
    ],
    fmt: Format = None,
    force: Force = False,
    max_memory: MaxMemory = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Convert a result between PSD/PSB, OpenRaster, PNG stack, PPTX and SVG.

    Names, order, groups, visibility and provenance are kept wherever
    the target holds them; a warning names each thing it cannot.
    The input is never overwritten.
    """
    from layerctl import formats
    from layerctl.outputs import check_writable

    console.state.quiet = quiet or console.state.quiet
    target = formats.format_for(output, fmt)
    check_writable(output, force, [path])  # before reading: no work lost, input kept
    stack = formats.read(path, max_memory)
    formats.check_canvas(output, target, stack.size)
    lost = formats.losses(stack, target)
    for line in lost:
        console.warn(line)
    formats.write(stack, output, target, force=force, inputs=[path])
    if json_out:
        record = {
            "input": str(path),
            "output": str(output),
            "format": target,
            "layer_count": len(stack.leaves()),
            "warnings": lost,
        }
        typer.echo(json_text(record, indent=None))
    console.info(f"wrote {output} ({console.counted(len(stack.leaves()), 'layer')})")
