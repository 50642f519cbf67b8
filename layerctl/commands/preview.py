"""``layerctl preview``: a contact sheet PNG of a result, to judge it without an editor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Force, MaxMemory, ResultPath


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
) -> None:
    """Draw every layer, the recomposed image and its difference to the original as one PNG."""
    from layerctl import formats
    from layerctl import preview as sheets
    from layerctl.errors import UsageError
    from layerctl.imageio import read_image
    from layerctl.outputs import check_writable

    output = output or sheets.preview_path(path)
    if output.suffix.lower() != ".png":
        raise UsageError(f"{output}: a contact sheet is a PNG", hint="end the name with .png")
    inputs = [path] if original is None else [path, original]
    check_writable(output, force, inputs)
    stack = formats.read(path, max_memory)
    pixels = None if original is None else read_image(original, max_memory=max_memory).pixels
    plan = sheets.write_preview(stack, output, pixels, force=force, near=path, inputs=inputs)
    known = "with" if plan.tile("original") else "without"
    shown, total = len(plan.layer_tiles()), sum(1 for _ in stack.walk())
    count = console.counted(shown, "layer")
    if shown < total:
        count = f"{shown} of {total} layers shown"
    console.info(f"wrote {output} ({count}, {known} the original)")
