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
MaxPixels = Annotated[
    int,
    typer.Option("--max-pixels", help="Refuse inputs larger than this many pixels.", min=1),
]
