"""``layerctl preview``: a contact sheet PNG of a result, to judge it without an editor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Force, ResultPath


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
    stack = formats.read(path)
    pixels = read_image(original).pixels if original is not None else None
    plan = sheets.write_preview(stack, output, pixels, force=force, near=path, inputs=inputs)
    known = "with" if plan.tile("original") else "without"
    count = console.counted(len(plan.layer_tiles()), "layer")
    console.info(f"wrote {output} ({count}, {known} the original)")
