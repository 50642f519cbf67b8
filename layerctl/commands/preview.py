"""``layerctl preview``: a contact sheet PNG of a result, to judge it without an editor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Force, Json, MaxMemory, Quiet, ResultPath
from layerctl.outputs import json_text


def preview(
    path: ResultPath,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The sheet (.png); default: <RESULT>.preview.png."),
    ] = None,
    original: Annotated[
        Path | None,
        typer.Option(
            "--original", help="The input image, for the difference map (default: recorded one)."
        ),
    ] = None,
    force: Force = False,
    max_memory: MaxMemory = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Draw every layer, the recomposed image and its difference to the original as one PNG."""
    from layerctl import formats
    from layerctl import preview as sheets
    from layerctl.errors import UsageError
    from layerctl.imageio import read_image
    from layerctl.outputs import check_writable

    console.state.quiet = quiet or console.state.quiet
    output = output or sheets.preview_path(path)
    if output.suffix.lower() != ".png":
        raise UsageError(f"{output}: a contact sheet is a PNG", hint="end the name with .png")
    inputs = [path] if original is None else [path, original]
    check_writable(output, force, inputs)
    stack = formats.read(path, max_memory)
    pixels = None if original is None else read_image(original, max_memory=max_memory).pixels
    plan = sheets.write_preview(stack, output, pixels, force=force, near=path, inputs=inputs)
    # Pixel layers, as `info` counts them; group tiles (their composite) are extra.
    shown = sum(1 for t in plan.layer_tiles() if t.layer is not None and not t.layer.is_group)
    total = len(stack.leaves())
    if json_out:
        record = {
            "input": str(path),
            "output": str(output),
            "layer_count": total,
            "layers_shown": shown,
            "original": plan.tile("original") is not None,
        }
        typer.echo(json_text(record, indent=None))
    count = console.counted(total, "layer")
    if shown < total:
        count = f"{shown} of {total} layers shown"
    known = "with" if plan.tile("original") else "without"
    console.info(f"wrote {output} ({count}, {known} the original)")
