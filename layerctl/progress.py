"""What a batch shows while it runs and when it ends: a progress bar and a summary table.

Both go to stderr. The bar (count, current file, ETA) is drawn only on a terminal and
never with --quiet; the summary is printed unless --quiet, so logs of CI runs keep it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from layerctl import console
from layerctl.batch import Result
from layerctl.outputs import readable


class Progress:
    """Advance with ``started(path)`` / ``finished(result)``; draws nothing off a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._bar = None
        self._task = None

    @contextlib.contextmanager
    def shown(self) -> Iterator[Progress]:
        if not console.interactive():
            yield self
            return
        from rich import progress

        bar = progress.Progress(
            progress.SpinnerColumn(),
            progress.MofNCompleteColumn(),
            progress.BarColumn(),
            progress.TimeRemainingColumn(),
            progress.TextColumn("{task.fields[current]}", markup=False),
            console=console.stderr(),
            transient=True,
        )
        with bar:
            self._bar = bar
            self._task = bar.add_task("layerctl", total=self.total, current="")
            try:
                yield self
            finally:
                self._bar = None

    def started(self, path: Path) -> None:
        if self._bar is not None:
            self._bar.update(self._task, current=path.name)

    def finished(self, result: Result) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)


def summary(results: Sequence[Result], seconds: float) -> None:
    """A table of inputs and time per status, then a line per input that failed or was
    skipped for a reason (another run is writing its output)."""
    if console.state.quiet:
        return
    from rich.table import Table

    out = console.stderr()
    table = Table("status", "inputs", "seconds", show_edge=False)
    for status in ("ok", "skipped", "failed", "not tried"):
        chosen = [r for r in results if r.status == status]
        if chosen or status != "not tried":  # inputs --fail-fast left out
            table.add_row(status, str(len(chosen)), f"{sum(r.seconds for r in chosen):.1f}")
    out.print(table)
    for result in results:
        if result.status == "failed":
            out.print(f"failed: {readable(str(result.error))}", markup=False, soft_wrap=True)
        elif result.error:  # skipped for a reason: another run is writing it
            line = f"skipped: {result.input} ({result.error})"
            out.print(readable(line), markup=False, soft_wrap=True)
    out.print(f"{console.counted(len(results), 'input')} in {seconds:.1f} s", markup=False)
