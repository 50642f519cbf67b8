"""``layerctl weights list | pull | verify | path``: the checkpoints a backend can load."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerctl import console
from layerctl.errors import MissingWeights
from layerctl.options import Force, Json, Quiet
from layerctl.outputs import json_text, readable

if TYPE_CHECKING:
    from layerctl.weights import Checkpoint, Problem

app = typer.Typer(
    name="weights",
    help="Model weights: list the known checkpoints, download, verify, locate and convert them.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="A checkpoint name from `layerctl weights list`.")]


@app.command("list")
def list_checkpoints(json_out: Json = False, quiet: Quiet = False) -> None:
    """List the known checkpoints and whether each is downloaded (checked offline)."""
    from layerctl import weights

    console.state.quiet = quiet or console.state.quiet
    rows = []
    for ckpt in weights.registry().values():
        path = weights.find_cached(ckpt)
        rows.append(
            {
                "name": ckpt.name,
                "repo": ckpt.repo,
                "revision": ckpt.revision,
                "backend": ckpt.backend,
                "kind": ckpt.kind,
                "summary": ckpt.summary,
                "path": str(path) if path else None,
            }
        )
    if json_out:
        typer.echo(json_text(rows, indent=None))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Column, Table

    widest = max((len(row["name"]) for row in rows), default=4)  # names are what you type
    table = Table(
        Column("name", no_wrap=True, min_width=widest),
        "kind",
        Column("repo@revision", overflow="fold"),
        Column("downloaded", overflow="fold"),
    )
    for row in rows:
        cells = (row["name"], row["kind"], f"{row['repo']}@{row['revision']}", row["path"])
        table.add_row(*(escape(readable(cell or "no")) for cell in cells))
    Console(highlight=False).print(table)


@app.command()
def pull(
    name: Name,
    local_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Download into this folder instead of the HF cache."),
    ] = None,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Download a checkpoint (resumes an interrupted download), then verify it."""
    from layerctl import weights

    console.state.quiet = quiet or console.state.quiet
    spec = weights.checkpoint(name)
    folder = weights.pull(name, local_dir, progress=not console.state.quiet)
    _report(folder, spec, weights.check(folder, spec, hashes=True), json_out)
    if not json_out:
        typer.echo(folder)


@app.command()
def verify(
    target: Annotated[
        str,
        typer.Argument(
            help="A checkpoint folder, a transformer file, or a name to look up in the HF cache."
        ),
    ] = "qwen-image-layered",
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Check a checkpoint: files present with their sizes, configs parse, shards intact.

    A registry name is checked against its registry entry (file list, sizes, sha256);
    a folder is checked on its own (model_index.json, configs, shard indexes and headers).
    """
    from layerctl import weights

    console.state.quiet = quiet or console.state.quiet
    path = Path(target).expanduser()
    if path.is_file():
        _report(path, None, weights.single_file_problems(path), json_out)
        return
    if path.is_dir():
        folder, spec = path, None
    else:
        spec = weights.checkpoint(target)
        folder = weights.cached(spec)
    _report(folder, spec, weights.check(folder, spec, hashes=True), json_out)


@app.command()
def path(name: Name = "qwen-image-layered", json_out: Json = False, quiet: Quiet = False) -> None:
    """Print where a downloaded checkpoint is (the HF cache, found offline)."""
    from layerctl import weights

    console.state.quiet = quiet or console.state.quiet
    ckpt = weights.checkpoint(name)
    folder = weights.cached_file(ckpt) if ckpt.single_file else weights.cached(ckpt)
    typer.echo(json_text({"name": name, "path": str(folder)}, indent=None) if json_out else folder)


@app.command()
def convert(
    folder: Annotated[
        Path, typer.Argument(help="A Qwen-Image-Layered checkpoint folder (diffusers layout).")
    ],
    out: Annotated[Path, typer.Argument(help="The .gguf file to write.")],
    qtype: Annotated[
        str, typer.Option("--type", metavar="Q8_0|Q4_0", help="The quantisation.")
    ] = "Q8_0",
    force: Force = False,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Write the folder's transformer as one GGUF file, for --weights FILE --base FOLDER.

    Q8_0 is 8.5 bits a weight, Q4_0 4.5 (the linear layers' weights; the rest stays F32).
    Needs the torch extra and the gguf package.
    """
    from importlib.util import find_spec

    from layerctl.errors import UsageError

    console.state.quiet = quiet or console.state.quiet
    if out.suffix != ".gguf":
        raise UsageError(f"{out}: the output must end in .gguf")
    missing = [m for m in ("torch", "diffusers", "gguf") if find_spec(m) is None]
    if missing:
        raise MissingWeights(
            f"weights convert needs {', '.join(missing)}", hint="pip install 'layerctl[torch]'"
        )
    from layerctl.backends.layered import quantize

    summary = quantize.convert(folder, out, qtype, force)
    if json_out:
        typer.echo(json_text({"path": str(out), "type": qtype, **summary}, indent=None))


def _report(folder: Path, spec: Checkpoint | None, problems: list[Problem], json_out: bool) -> None:
    """Print the verdict; problems go to stdout one per line, then a one-line error."""
    if json_out:
        record = {
            "name": spec.name if spec else None,
            "path": str(folder),
            "ok": not problems,
            "problems": [str(p) for p in problems],
        }
        typer.echo(json_text(record, indent=None))
    else:
        for problem in problems:
            typer.echo(problem)
    if problems:
        name = spec.name if spec else "NAME"
        raise MissingWeights(
            f"{folder} failed verification: {console.counted(len(problems), 'problem')}, "
            f"first: {problems[0]}",
            hint=f"rerun `layerctl weights pull {name}` to fetch missing or damaged files",
        )
    console.info(f"ok: {folder}")
