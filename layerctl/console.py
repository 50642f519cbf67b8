"""Where messages go: logs and progress to stderr (rich, NO_COLOR honoured), data to stdout."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
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

    return Console(stderr=True, highlight=False, emoji=False)  # "a:b:" is no emoji code


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


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what libraries write to file descriptor 2 from native code (Ray's core
    worker logs there, whatever its Python logging level): fd 2 goes to /dev/null while
    our own messages go on to the terminal through a copy of it. Ray keeps its logs in
    its session folder; --debug shows them here."""
    if state.debug:
        yield
        return
    ours = sys.stderr
    ours.flush()
    saved = os.dup(2)
    try:
        try:
            real = ours.fileno() == 2
        except (AttributeError, OSError, ValueError):  # a test's capture object: keep it
            real = False
        if real:
            encoding, errors = ours.encoding, ours.errors
            sys.stderr = open(os.dup(saved), "w", 1, encoding=encoding, errors=errors)  # noqa: SIM115
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        if sys.stderr is not ours:
            sys.stderr.close()
            sys.stderr = ours
        os.dup2(saved, 2)
        os.close(saved)
