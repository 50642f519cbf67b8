"""The ``layerctl`` command: a thin Typer app over the library.

Commands live in ``layerctl/commands/``; this module wires them up and is the one place
where errors become a one-line message and an exit code (0 ok, 1 failure, 2 usage,
3 batch with failures, 130 Ctrl-C, 143 SIGTERM). Nothing heavy is imported here:
``layerctl --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import typer

from layerctl import __version__, config, console
from layerctl.commands import backends, decompose, doctor, inspect, preview, split, weights
from layerctl.commands import caption as caption_command
from layerctl.commands import convert as convert_command
from layerctl.commands import eval as eval_command
from layerctl.commands import export as export_command
from layerctl.errors import LayerctlError, Terminated, out_of_memory, raise_on_sigterm
from layerctl.helpstyle import Command, Group

app = typer.Typer(
    name="layerctl",
    help="Decompose an image into editable RGBA layers (PSD, OpenRaster, PNG stack, PPTX, SVG).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"layerctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Decompose an image into editable RGBA layers (PSD, OpenRaster, PNG stack, PPTX, SVG)."""


app.command(cls=Command, epilog=decompose.EXAMPLES)(decompose.decompose)
app.command(cls=Command)(inspect.info)
app.command(cls=Command)(inspect.compose)
app.command("convert", cls=Command)(convert_command.convert)
app.command("backends", cls=Command)(backends.list_backends)
app.command(cls=Command)(preview.preview)
app.command("eval", cls=Command)(eval_command.evaluate)
app.command(cls=Command)(doctor.doctor)
app.command(cls=Command)(split.split)
app.command("caption", cls=Command)(caption_command.caption)
app.add_typer(weights.app)
app.add_typer(export_command.app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map every failure to one line on stderr and an exit code."""
    console.state.debug = os.environ.get("LAYERCTL_DEBUG", "") not in {"", "0"}
    if "_LAYERCTL_COMPLETE" in os.environ:  # a shell asks (completions/): enable its classes
        from typer.completion import completion_init

        completion_init()
    previous = raise_on_sigterm() if threading.current_thread() is threading.main_thread() else None
    try:
        _run(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> None:
    try:
        command = typer.main.get_command(app)
        config.add_envvars(command)  # LAYERCTL_<OPTION>, shown in help
        defaults = config.default_map(command)  # layerctl.toml
        code = command.main(
            args=argv, prog_name="layerctl", standalone_mode=False, default_map=defaults
        )
    except LayerctlError as exc:
        _fail(exc, str(exc), exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # typer's own usage errors (it vendors click)
        exc.show()
        sys.exit(getattr(exc, "exit_code", 2))
    except Terminated:
        console.error("terminated")
        sys.exit(143)  # 128 + SIGTERM, as a shell reports it
    except (typer.Abort, KeyboardInterrupt):
        console.error("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, the traceback on --debug
        bug = f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)"
        _fail(exc, "out of memory" if out_of_memory(exc) else bug, 1)
    if code == 130:  # typer turns Ctrl-C into a silent exit code 130
        console.error("interrupted")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(exc: BaseException, message: str, code: int) -> None:
    if console.state.debug:
        import traceback

        traceback.print_exception(exc)
    console.error(message.splitlines()[0] if message else type(exc).__name__)
    sys.exit(code)
