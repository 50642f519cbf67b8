"""Where messages go: logs and progress to stderr (rich, NO_COLOR honoured), data to stdout."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

from layerctl.outputs import readable


@dataclass
class _State:
    quiet: bool = False
    debug: bool = False


state = _State()


@functools.cache
def stderr():  # -> rich.console.Console; imported lazily to keep start-up fast
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def info(message: str) -> None:
    if not state.quiet:
        stderr().print(readable(message), markup=False, soft_wrap=True)


def warn(message: str) -> None:
    """Warnings are shown even with --quiet: they say something may be wrong."""
    stderr().print(f"warning: {readable(message)}", style="yellow", markup=False, soft_wrap=True)


def error(message: str) -> None:
    stderr().print(f"error: {readable(message)}", style="bold red", markup=False, soft_wrap=True)


def counted(n: int, noun: str) -> str:
    """``1 layer``, ``3 layers``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def interactive() -> bool:
    return not state.quiet and stderr().is_terminal


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing at all when piped or --quiet. ``message`` is
    text, never markup: a file named ``bad[red].png`` shows as named."""
    if interactive():
        from rich.markup import escape

        with stderr().status(escape(readable(message))):
            yield
    else:
        yield
