"""``layerctl export onnx``: turn a checkpoint into a folder that ``--backend onnx`` runs."""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Force, Json, Quiet, Weights
from layerctl.outputs import json_text


class GraphDtype(str, Enum):
    """Precisions ONNX Runtime runs on CPU (bfloat16 graphs fail there)."""

    float32 = "float32"
    float16 = "float16"


app = typer.Typer(
    name="export",
    help="Export a checkpoint for other runtimes (ONNX).",
    no_args_is_help=True,
)


@app.command("onnx")
def onnx(
    output: Annotated[Path, typer.Option("--output", "-o", help="The export folder to write.")],
    weights: Weights = None,
    dtype: Annotated[GraphDtype, typer.Option("--dtype", help="Graph precision.")] = (
        GraphDtype.float32
    ),
    opset: Annotated[
        int | None, typer.Option("--opset", min=18, help="ONNX opset (default: the exporter's).")
    ] = None,
    force: Force = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Export transformer, VAE and text encoder to ONNX; verify them against torch.

    One export serves every image size, bucket and layer count. The manifest is written
    only when ONNX Runtime reproduces torch within tolerance.
    """
    from layerctl.backends.onnx.export import export_onnx

    console.state.quiet = quiet
    start = time.perf_counter()
    manifest = export_onnx(weights, output, dtype=GraphDtype(dtype).value, opset=opset, force=force)
    seconds = time.perf_counter() - start
    size = sum(f["size"] for f in manifest["files"].values())
    if json_out:
        record = {
            "output": str(output),
            "seconds": round(seconds, 1),
            "bytes": size,
            "verification": manifest["verification"],
        }
        typer.echo(json_text(record, indent=None))
    console.info(f"wrote {output} ({size / 2**20:.1f} MiB, {seconds:.0f} s)")
