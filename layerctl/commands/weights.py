"""``layerctl weights list | pull | verify | path``: the checkpoints a backend can load."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerctl import console
from layerctl.errors import MissingWeights
from layerctl.options import Json, Quiet
from layerctl.outputs import json_text, readable

if TYPE_CHECKING:
    from layerctl.weights import Checkpoint, Problem

app = typer.Typer(
    name="weights",
    help="Model weights: list the known checkpoints, download, verify and locate them.",
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
                "summary": ckpt.summary,
                "path": str(path) if path else None,
            }
        )
    if json_out:
        typer.echo(json_text(rows, indent=None))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("name", "repo@revision", "backend", "downloaded")
    for row in rows:
        cells = (row["name"], f"{row['repo']}@{row['revision']}", row["backend"], row["path"])
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
        typer.Argument(help="A checkpoint folder, or a name to look up in the HF cache."),
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
    folder = weights.cached(weights.checkpoint(name))
    typer.echo(json_text({"name": name, "path": str(folder)}, indent=None) if json_out else folder)


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
