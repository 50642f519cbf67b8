"""Help that reads like other Unix tools': ``INPUT...`` not ``{INPUT...}...``, no
``<bool>`` on flags, ``INT`` / ``TEXT`` / ``[a|b]`` metavars, so ``decompose --help``
fits 80 columns without cutting an option's name (tests/test_help.py).

The command classes rewrite each parameter's display once, when help asks for it.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperCommand, TyperGroup

# typer's type labels -> the metavars click and most tools print
_METAVARS = {
    "<int>": "INT",
    "<float>": "FLOAT",
    "<str>": "TEXT",
    "<text>": "TEXT",
    "<path>": "PATH",
}


def conventional(param: Any, ctx: Any) -> None:
    """Give ``param`` a conventional metavar, unless it declares its own."""
    if param.param_type_name == "argument":
        if param.metavar is None:
            param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")
        # its name column says INPUT...; typer's type column would repeat <list[str]>
        param.display_type_rich = lambda ctx: None
        return
    if param.metavar is not None:
        return
    if getattr(param, "is_flag", False):
        param.metavar = ""
        return
    shown = param.display_type(ctx)
    if shown.startswith("<") and "|" in shown:  # a choice
        param.metavar = "[" + shown[1:-1] + "]"
    else:
        param.metavar = _METAVARS.get(shown, shown.strip("<>").upper())


class _Conventional:
    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            conventional(param, ctx)
        return params


class Command(_Conventional, TyperCommand):
    """A command with conventional help."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []  # type: ignore[attr-defined]
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name.upper()).removesuffix("...")
                name += "..." if param.nargs != 1 else ""
                pieces.append(name if param.required else f"[{name}]")
        return pieces


class Group(_Conventional, TyperGroup):
    """The top-level group with conventional help."""
