"""``layerctl weights list | pull | verify | path``: the checkpoints a backend can load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from layerctl import console
from layerctl.errors import MissingWeights
from layerctl.options import Json, Quiet

if TYPE_CHECKING:
    from layerctl.weights import Problem

app = typer.Typer(
    name="weights",
    help="Model weights: list the known checkpoints, download, verify and locate them.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="A checkpoint name from `layerctl weights list`.")]


@app.command("list")
def list_checkpoints(json_out: Json = False) -> None:
    """List the known checkpoints and whether each is downloaded (checked offline)."""
    from layerctl import weights

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
        typer.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "repo@revision", "backend", "downloaded")
    for row in rows:
        table.add_row(
            row["name"], f"{row['repo']}@{row['revision']}", row["backend"], row["path"] or "no"
        )
    Console().print(table)


@app.command()
def pull(
    name: Name,
    local_dir: Annotated[
        Path | None,
        typer.Option("--dir", help="Download into this folder instead of the HF cache."),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Download a checkpoint (resumes an interrupted download), then verify it."""
    from layerctl import weights

    console.state.quiet = quiet or console.state.quiet
    folder = weights.pull(name, local_dir, progress=not console.state.quiet)
    _report(folder, weights.check(folder, weights.checkpoint(name), hashes=True), json_out=False)
    typer.echo(folder)


@app.command()
def verify(
    target: Annotated[
        str,
        typer.Argument(help="A checkpoint folder, or a name to look up in the HF cache."),
    ] = "qwen-image-layered",
    json_out: Json = False,
) -> None:
    """Check a checkpoint: files present with their sizes, configs parse, shards intact.

    A registry name is checked against its registry entry (file list, sizes, sha256);
    a folder is checked on its own (model_index.json, configs, shard indexes and headers).
    """
    from layerctl import weights

    path = Path(target).expanduser()
    if path.is_dir():
        folder, spec = path, None
    else:
        spec = weights.checkpoint(target)
        folder = weights.cached(spec)
    _report(folder, weights.check(folder, spec, hashes=True), json_out)


@app.command()
def path(name: Name = "qwen-image-layered") -> None:
    """Print where a downloaded checkpoint is (the HF cache, found offline)."""
    from layerctl import weights

    typer.echo(weights.cached(weights.checkpoint(name)))


def _report(folder: Path, problems: list[Problem], json_out: bool) -> None:
    """Print the verdict; problems go to stdout one per line, then a one-line error."""
    if json_out:
        typer.echo(
            json.dumps(
                {"path": str(folder), "ok": not problems, "problems": [str(p) for p in problems]}
            )
        )
    else:
        for problem in problems:
            typer.echo(problem)
    if problems:
        raise MissingWeights(
            f"{folder} failed verification: {len(problems)} problem(s), first: {problems[0]}",
            hint="rerun `layerctl weights pull NAME` to fetch missing or damaged files",
        )
    console.info(f"ok: {folder}")
