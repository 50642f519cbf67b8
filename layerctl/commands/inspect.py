"""``layerctl info`` and ``layerctl compose``: look into, and flatten, an existing result."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from layerctl import console
from layerctl.options import Force, Json, MaxMemory, Output, Quiet, ResultPath
from layerctl.outputs import json_text, readable

if TYPE_CHECKING:
    from layerctl.stack import Layer


def info(
    path: ResultPath, json_out: Json = False, quiet: Quiet = False, max_memory: MaxMemory = None
) -> None:
    """Show the layer tree of a result: sizes, bounding boxes, coverage."""
    from layerctl import formats

    console.state.quiet = quiet or console.state.quiet
    stack = formats.read(path, max_memory)
    width, height = stack.size
    if json_out:
        record = {
            "path": str(path),
            "format": formats.detect(path),
            "width": width,
            "height": height,
            "layer_count": len(stack.leaves()),
            "metadata": stack.metadata,
            "layers": [_layer_record(layer) for layer in stack.layers],
        }
        typer.echo(json_text(record, indent=None))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    count = console.counted(len(stack.leaves()), "layer")
    tree = Tree(f"{escape(readable(str(path)))}  {width}×{height}, {count} (top first)")
    _add_branches(tree, stack.layers)
    Console(highlight=False).print(tree)


def _layer_record(layer: Layer) -> dict:
    record = {"name": layer.name, "bbox": layer.bbox(), "coverage": round(layer.coverage(), 6)}
    if layer.is_group:
        record["children"] = [_layer_record(child) for child in layer.children]
    return record


def _add_branches(tree, layers: list[Layer]) -> None:
    from rich.markup import escape

    for layer in reversed(layers):  # top first, as editors list layers
        box = layer.bbox()
        where = f"{box[2] - box[0]}×{box[3] - box[1]} at ({box[0]}, {box[1]})" if box else "empty"
        kind = "group" if layer.is_group else "layer"
        name = escape(readable(layer.name))
        branch = tree.add(f"{name}  [dim]{kind}, {where}, {layer.coverage():.1%}[/]")
        if layer.is_group:
            _add_branches(branch, layer.children)


def compose(
    path: ResultPath,
    output: Output,
    force: Force = False,
    max_memory: MaxMemory = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Flatten a result back into one image (PNG, TIFF, WebP, …)."""
    from PIL import Image

    from layerctl import formats
    from layerctl.imageio import rgb_profile
    from layerctl.outputs import atomic_output

    console.state.quiet = quiet or console.state.quiet
    fmt = Image.registered_extensions().get(output.suffix.lower())
    if fmt is None:
        from layerctl.errors import UsageError

        raise UsageError(f"{output}: unknown image suffix", hint="use .png, .tif or .webp")
    stack = formats.read(path, max_memory)
    image = Image.fromarray(stack.composite(), "RGBA")
    if fmt == "JPEG":
        image = image.convert("RGB")
    icc = rgb_profile(stack.icc_profile)  # another program's CMYK profile is no RGB's
    with atomic_output(output, force=force, inputs=[path]) as tmp:
        image.save(tmp, format=fmt, **({"icc_profile": icc} if icc else {}))
    width, height = stack.size
    if json_out:
        record = {"input": str(path), "output": str(output), "width": width, "height": height}
        typer.echo(json_text(record, indent=None))
    console.info(f"wrote {output}")
