"""CLI options declared once, as Annotated aliases every command reuses.

Each option of a decomposition sits in a help panel named after what reads it; closed
sets of values are enums (layerctl/choices.py), so help lists them and shells complete
them. Every option also reads ``LAYERCTL_<NAME>`` (layerctl/config.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import choices

OUTPUT = "Output"
LAYERS = "Layers"
BATCH = "Batch"
MODEL = "Model (qwen, onnx)"
SPEED = "Speed and memory"


def _or(kind: type) -> str:
    """``a, b or c``: a choice's values, for help where ``[a|b|c]`` would not fit."""
    values = [member.value for member in kind]
    return ", ".join(values[:-1]) + " or " + values[-1]


Force = Annotated[
    bool,
    typer.Option("--force", "-f", help="Overwrite existing outputs.", rich_help_panel=OUTPUT),
]
Json = Annotated[bool, typer.Option("--json", help="Print results as JSON on stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or info messages.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
Output = Annotated[Path, typer.Option("--output", "-o", help="Where to write the result.")]
Format = Annotated[
    choices.Format | None,
    typer.Option(
        "--format",
        help="png: a folder of PNGs (default: by the output's suffix).",
        rich_help_panel=OUTPUT,
    ),
]
ResultPath = Annotated[
    Path, typer.Argument(help="A layered result: .psd, .ora, .pptx, .svg or a PNG-stack folder.")
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
        help="Refuse inputs over N pixels, e.g. 1e8 (default: what memory allows).",
        rich_help_panel=SPEED,
    ),
]
MaxMemory = Annotated[
    int | None,
    typer.Option(
        "--max-memory",
        parser=_size("bytes"),
        metavar="SIZE",
        help="Memory one image may take, e.g. 4G (default: what is free).",
        rich_help_panel=SPEED,
    ),
]


def _layer_count(value: str | int) -> int | str:
    """``-n``: a number of layers, or ``auto`` (chosen per image, see layerctl.auto).
    ``layers = 3`` in layerctl.toml arrives as an int."""
    value = str(value)
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


# Decomposition options shared by `decompose` and `split`. Defaults are the schemas'
# (layerctl/backends/model_options.py); a value the user did not give is not passed on.
Layers = Annotated[
    str,
    typer.Option(
        "--layers",
        "-n",
        parser=_layer_count,
        metavar="N|auto",
        help="Layers, or auto per image.",
        rich_help_panel=LAYERS,
    ),
]
MaxLayers = Annotated[
    int,
    typer.Option(
        "--max-layers",
        metavar="N",
        help="Most layers -n auto picks (2-64).",
        rich_help_panel=LAYERS,
    ),
]
Seed = Annotated[
    int,
    typer.Option(
        "--seed", help="Random seed; each image's is derived from it.", rich_help_panel=LAYERS
    ),
]
Lossless = Annotated[
    bool,
    typer.Option(
        "--lossless/--no-lossless",
        help="Make the composite equal the input.",
        rich_help_panel=LAYERS,
    ),
]
OutputSize = Annotated[
    choices.OutputSize,
    typer.Option("--output-size", help="model: at the model's resolution.", rich_help_panel=OUTPUT),
]


def _installed() -> list[str]:
    """``--backend`` values: auto and every installed backend (the registry's names)."""
    from layerctl.backends.base import registered

    return ["auto", *sorted(registered())]


# A name, not an enum: a backend installed later (a plugin) is a choice too. The help
# and shell completion list the installed ones; decomposer.configure checks the name.
Backend = Annotated[
    str,
    typer.Option(
        "--backend",
        "-b",
        metavar="[" + "|".join(_installed()) + "]",
        autocompletion=_installed,
        help="auto: the best one usable here.",
    ),
]

# The model's options (qwen and onnx): layerctl/backends/model_options.py.
Prompt = Annotated[
    str | None,
    typer.Option(
        "--prompt",
        metavar="TEXT",
        help="Describe the image (default: a caption).",
        rich_help_panel=MODEL,
    ),
]
NegativePrompt = Annotated[
    str,
    typer.Option("--negative-prompt", metavar="TEXT", help="For CFG.", rich_help_panel=MODEL),
]
Steps = Annotated[
    int, typer.Option("--steps", metavar="N", help="Sampling steps.", rich_help_panel=MODEL)
]
Cfg = Annotated[float, typer.Option("--cfg", help="True CFG scale.", rich_help_panel=MODEL)]
CfgNormalize = Annotated[
    bool,
    typer.Option("--cfg-normalize/--no-cfg-normalize", help="Rescale CFG.", rich_help_panel=MODEL),
]
Resolution = Annotated[
    choices.Resolution,
    typer.Option(
        "--resolution",
        metavar="N",
        help=f"Size bucket: {_or(choices.Resolution)}.",
        rich_help_panel=MODEL,
    ),
]
CaptionLang = Annotated[
    choices.CaptionLang,
    typer.Option(
        "--caption-lang",
        metavar="LANG",
        help=f"Caption: {_or(choices.CaptionLang)}.",
        rich_help_panel=MODEL,
    ),
]
Weights = Annotated[
    str | None,
    typer.Option(
        "--weights",
        metavar="DIR",
        help="Model folder, registry name or transformer file.",
        rich_help_panel=MODEL,
    ),
]
Base = Annotated[
    str | None,
    typer.Option(
        "--base",
        metavar="DIR",
        help="qwen: the rest of the model for a one-file --weights "
        "(.safetensors/.gguf); NAME|DIR[,VAE].",
        rich_help_panel=MODEL,
    ),
]
Providers = Annotated[
    str | None,
    typer.Option(
        "--providers",
        metavar="LIST",
        help="onnx: ONNX Runtime providers, best first, e.g. cuda,cpu.",
        rich_help_panel=MODEL,
    ),
]
Lora = Annotated[
    list[str] | None,
    typer.Option(
        "--lora",
        metavar="FILE",
        help="qwen: a LoRA, FILE[:SCALE] (default 1); repeatable.",
        rich_help_panel=MODEL,
    ),
]

# How the model runs: speed, memory, exactness.
Device = Annotated[
    choices.Device,
    typer.Option("--device", help="qwen: where the model runs.", rich_help_panel=SPEED),
]
Dtype = Annotated[
    choices.Dtype,
    typer.Option(
        "--dtype", metavar="DTYPE", help=f"qwen: {_or(choices.Dtype)}.", rich_help_panel=SPEED
    ),
]
Offload = Annotated[
    choices.Offload,
    typer.Option(
        "--offload",
        metavar="MODE",
        help=f"qwen: weights off the GPU: {_or(choices.Offload)}.",
        rich_help_panel=SPEED,
    ),
]
VaeTiling = Annotated[
    bool,
    typer.Option(
        "--vae-tiling", help="qwen: decode in tiles (less memory).", rich_help_panel=SPEED
    ),
]
Compile = Annotated[
    bool,
    typer.Option(
        "--compile", help="qwen: torch.compile the blocks (exact).", rich_help_panel=SPEED
    ),
]
Quantize = Annotated[
    choices.Quantize | None,
    typer.Option(
        "--quantize",
        help="qwen: float8 matmuls, Ada/Hopper GPUs (approximate).",
        rich_help_panel=SPEED,
    ),
]
StepCache = Annotated[
    float,
    typer.Option(
        "--step-cache",
        metavar="T",
        help="qwen: reuse late blocks while the first changes < T (approximate).",
        rich_help_panel=SPEED,
    ),
]
CfgTruncate = Annotated[
    float,
    typer.Option(
        "--cfg-truncate",
        metavar="SIGMA",
        help="qwen: no negative prompt once sigma < SIGMA (approximate).",
        rich_help_panel=SPEED,
    ),
]
