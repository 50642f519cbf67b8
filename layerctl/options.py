"""CLI options declared once, as Annotated aliases every command reuses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Force = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing outputs.")]
Json = Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info messages.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
Output = Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")]
Format = Annotated[
    str | None,
    typer.Option("--format", help="psd, ora or png (a folder); default: by output suffix."),
]
ResultPath = Annotated[
    Path, typer.Argument(help="A layered result: .psd, .ora or a PNG-stack folder.")
]


def _size(option: str):
    """A parser for sizes such as 4G, 512M or 1e10 (layerctl.budget.parse_size)."""

    def parse(value: str | int) -> int:
        from layerctl.budget import parse_size

        try:
            return parse_size(str(value))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    parse.__name__ = option
    return parse


MaxPixels = Annotated[
    int | None,
    typer.Option(
        "--max-pixels",
        parser=_size("pixels"),
        metavar="N",
        help="Refuse inputs over N pixels, e.g. 1e8 (default: as many as memory allows).",
    ),
]
MaxMemory = Annotated[
    int | None,
    typer.Option(
        "--max-memory",
        parser=_size("bytes"),
        metavar="SIZE",
        help="Memory one image may take, e.g. 4G (default: what is free; see README).",
    ),
]


def _layer_count(value: str) -> int | str:
    """``-n``: a number of layers, or ``auto`` (chosen per image, see layerctl.auto)."""
    if value == "auto":
        return value
    from layerctl.budget import short_text

    try:
        count = int(value) if len(value) < 10 else 0  # not int() of a 5000-digit string
    except ValueError:
        raise typer.BadParameter(f"{short_text(value)!r} is not a number or auto") from None
    if not 1 <= count <= 64:
        raise typer.BadParameter(f"{short_text(value)} is not between 1 and 64")
    return count


# Decomposition options shared by `decompose` and `split` (the defaults are
# DecomposeRequest's; commands repeat them as the parameter default).
Layers = Annotated[
    str,
    typer.Option(
        "--layers", "-n", parser=_layer_count, metavar="N|auto", help="Layers, or auto per image."
    ),
]
MaxLayers = Annotated[
    int, typer.Option("--max-layers", min=2, max=64, help="Most layers -n auto picks.")
]
Backend = Annotated[str, typer.Option("--backend", "-b", help="auto, classic, qwen, onnx, …")]
Seed = Annotated[
    int, typer.Option("--seed", help="Random seed; each image's own is derived from it.")
]
Prompt = Annotated[
    str | None, typer.Option("--prompt", help="Describe the image (default: auto-caption).")
]
NegativePrompt = Annotated[str, typer.Option("--negative-prompt", help="Negative prompt.")]
Steps = Annotated[int, typer.Option("--steps", min=1, help="Sampling steps.")]
Cfg = Annotated[float, typer.Option("--cfg", help="True CFG scale.")]
CfgNormalize = Annotated[
    bool, typer.Option("--cfg-normalize/--no-cfg-normalize", help="Rescale CFG output.")
]
Resolution = Annotated[int, typer.Option("--resolution", help="Model bucket: 640 or 1024.")]
CaptionLang = Annotated[str, typer.Option("--caption-lang", help="Auto-caption language: en, zh.")]
Weights = Annotated[str | None, typer.Option("--weights", help="Model folder or registry name.")]
Device = Annotated[str, typer.Option("--device", help="auto, cuda, mps or cpu.")]
Dtype = Annotated[str, typer.Option("--dtype", help="auto, bfloat16, float16 or float32.")]
Offload = Annotated[
    str,
    typer.Option("--offload", help="Weights off the GPU: auto, none, model, group, sequential."),
]
VaeTiling = Annotated[bool, typer.Option("--vae-tiling", help="Decode in tiles (less memory).")]
Providers = Annotated[
    str | None,
    typer.Option(
        "--providers",
        metavar="LIST",
        help="ONNX Runtime providers, best first: e.g. cuda,cpu (default: TensorRT, CUDA, CPU).",
    ),
]
Compile = Annotated[
    bool, typer.Option("--compile", help="qwen: torch.compile the transformer blocks (exact).")
]


def _quantize(value: str) -> str:
    if value != "fp8":
        raise typer.BadParameter(f"{value!r}: only fp8 is supported")
    return value


Quantize = Annotated[
    str | None,
    typer.Option(
        "--quantize",
        parser=_quantize,
        metavar="fp8",
        help="qwen: float8 matrix products on Ada/Hopper GPUs (approximate).",
    ),
]
StepCache = Annotated[
    float,
    typer.Option(
        "--step-cache",
        min=0.0,
        metavar="THRESHOLD",
        help="qwen: reuse late blocks while the first changes less than this (approximate).",
    ),
]
CfgTruncate = Annotated[
    float,
    typer.Option(
        "--cfg-truncate",
        min=0.0,
        max=1.0,
        metavar="SIGMA",
        help="qwen: skip the negative prompt once sigma < SIGMA (approximate).",
    ),
]
Lossless = Annotated[
    bool, typer.Option("--lossless/--no-lossless", help="Make the composite equal the input.")
]
