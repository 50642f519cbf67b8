"""One exception family; the CLI maps each class to a one-line message and an exit code."""

from __future__ import annotations

from typing import Any


class LayerctlError(Exception):
    """A failure the user can act on. ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class BadInput(LayerctlError):
    """The input file is missing, empty, corrupt, too large or not an image."""


class BadResult(LayerctlError):
    """A PSD / ORA / PNG stack that cannot be read back as layers."""


class OutputExists(LayerctlError):
    """Refusing to overwrite an existing output without --force."""


class OutputError(LayerctlError):
    """The output could not be written (read-only folder, full disk, bad format)."""


class BackendUnavailable(LayerctlError):
    """The backend's extra is not installed or it cannot run on this machine."""


class MissingWeights(LayerctlError):
    """Model weights are missing, incomplete or unsafe to load."""


class UsageError(LayerctlError):
    """Options that make no sense together; exit 2 like any usage error."""

    exit_code = 2


class BatchFailed(LayerctlError):
    """A batch finished but some inputs failed."""

    exit_code = 3


class Stopped(LayerctlError):
    """A batch stopped by Ctrl-C (exit 130) or SIGTERM (143): what finished is kept."""

    def __init__(self, terminated: bool) -> None:
        super().__init__(
            "terminated" if terminated else "interrupted",
            hint="run the same command again to resume",
        )
        self.exit_code = 143 if terminated else 130


class Terminated(BaseException):
    """SIGTERM (``timeout``, ``docker stop``, a cancelled CI job), raised where the
    process is, like Ctrl-C: every clean-up runs and no temporary output is left.

    Not a KeyboardInterrupt: Typer turns those into a bare exit code 130."""


def raise_on_sigterm() -> Any:
    """Turn SIGTERM into ``Terminated`` (143, 128 + SIGTERM) in this process's main thread,
    where Python runs signal handlers; returns the previous handler. (Workers have their
    own handler: layerctl.workers._stop.)"""
    import signal

    def terminated(signum: int, frame: Any) -> None:
        raise Terminated(143)

    return signal.signal(signal.SIGTERM, terminated)


def out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is running out of memory: Python's MemoryError, OpenCV's error
    for an allocation it could not make (a cv2.error, no MemoryError), or the loader's
    for a shared library it had no room to map (an ImportError when a backend's
    modules load lazily under ``prlimit --as``)."""
    return (
        isinstance(exc, MemoryError)
        or (type(exc).__module__ == "cv2" and "Insufficient memory" in str(exc))
        or (isinstance(exc, ImportError) and "failed to map segment" in str(exc))
    )
