"""``layerctl backends``: what can run here, and how to fix what cannot."""

from __future__ import annotations

import json

import typer

from layerctl.options import Json


def list_backends(json_out: Json = False) -> None:
    """List backends, whether each works here and, if not, why and how to fix it."""
    from layerctl.backends import base

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
        typer.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("backend", "available", "details")
    for row in rows:
        mark = "[green]yes[/]" if row["available"] else "[red]no[/]"
        details = row["summary"] if row["available"] else row["reason"]
        table.add_row(row["name"], mark, escape(details))  # "layerctl[onnx]" is no markup
    Console().print(table)
