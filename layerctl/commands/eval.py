"""``layerctl eval``: score a decomposition against ground truth (LayerD protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from layerctl import console
from layerctl.options import Json, Quiet
from layerctl.outputs import json_text


def evaluate(
    pred: Annotated[Path, typer.Argument(help="Predicted result, or a folder of results.")],
    gt: Annotated[Path, typer.Argument(help="Ground truth, or a folder matched by name.")],
    merges: Annotated[
        int, typer.Option("--merges", min=0, max=20, help="Greedy merges to report (levels).")
    ] = 5,
    json_out: Json = False,
    quiet: Quiet = False,
) -> None:
    """Score layers against ground truth: RGB L1 and alpha soft IoU (LayerD, ICCV 2025)."""
    from layerctl.evaluate import evaluate_paths

    console.state.quiet = quiet or console.state.quiet
    report = evaluate_paths(pred, gt, merges)
    for name in report.unmatched:
        console.warn(f"no prediction for {name}")
    if json_out:
        typer.echo(json_text(report.as_dict(), indent=None))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "merges", "RGB L1 ↓", "alpha IoU ↑", "cost ↓", title=f"{len(report.samples)} scored"
    )
    for row in report.mean():
        table.add_row(
            str(row["merges"]),
            f"{row['rgb_l1']:.4f}",
            f"{row['alpha_iou']:.4f}",
            f"{row['cost']:.4f}",
        )
    Console(highlight=False).print(table)
