"""``layerctl backends``: what can run here, and how to fix what cannot."""

from __future__ import annotations

import typer

from layerctl import console
from layerctl.options import Json, Quiet
from layerctl.outputs import json_text


def list_backends(json_out: Json = False, quiet: Quiet = False) -> None:
    """List backends, whether each works here and, if not, why and how to fix it."""
    from layerctl.backends import base

    console.state.quiet = quiet or console.state.quiet
    rows = []
    for name in sorted(base.registered()):
        try:
            cls = base.backend_class(name)
            ok, why = cls.available(base.settings_for(cls))
            summary, extra = cls.summary, cls.extra
        except Exception as exc:  # a broken third-party plugin must not hide the others
            ok, why, summary, extra = False, f"failed to load: {exc}", "", None
        rows.append(
            {"name": name, "available": ok, "reason": why, "summary": summary, "extra": extra}
        )
    if json_out:
        typer.echo(json_text(rows, indent=None))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("backend", "available", "details")
    for row in rows:
        mark = "[green]yes[/]" if row["available"] else "[red]no[/]"
        details = row["summary"] if row["available"] else row["reason"]
        # no user or plugin text is markup: "pip install 'layerctl[onnx]'" shows as is
        table.add_row(escape(row["name"]), mark, escape(details))
    Console(highlight=False).print(table)
