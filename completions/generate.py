"""Regenerate the shell completion scripts in this folder from the layerctl Typer app.

Run ``python completions/generate.py`` after changing the CLI; tests/test_completions.py
fails while the committed scripts differ from what this writes. Each script asks
``layerctl`` itself for candidates at completion time (``_LAYERCTL_COMPLETE=complete_*``),
so commands and options stay current with the installed version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    """The completion script Typer generates for ``shell``."""
    env = {**os.environ, "_LAYERCTL_COMPLETE": f"source_{shell}"}
    done = subprocess.run(
        [sys.executable, "-m", "layerctl"], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def main() -> None:
    for shell in SHELLS:
        path = HERE / f"layerctl.{shell}"
        path.write_text(script(shell), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
