"""Regenerate the shell completion scripts in this folder from the layerctl Typer app.

Run ``python completions/generate.py`` after changing the CLI; tests/test_completions.py
fails while the committed scripts differ from what this writes. Each script asks
``layerctl`` itself for candidates at completion time (``_LAYERCTL_COMPLETE=complete_*``),
so commands, options and the values of options with choices stay current with the
installed version.

Two fixes to Typer's scripts: a zsh completion file must start with ``#compdef`` (Typer's
starts with a blank line, so zsh's ``compinit`` ignores the file), and one autoloaded from
``$fpath`` must complete on the first Tab too, not only bind the function for the next
one (Click's own zsh script does the same).
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
    text = done.stdout.lstrip("\n")
    if shell == "zsh":
        text = text.replace(ZSH_BIND, ZSH_AUTOLOAD)
    return text


ZSH_BIND = "compdef _layerctl_completion layerctl\n"
ZSH_AUTOLOAD = """\
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _layerctl_completion "$@"  # autoloaded from $fpath: complete now
else
  compdef _layerctl_completion layerctl  # sourced: bind for later
fi
"""


def main() -> None:
    for shell in SHELLS:
        path = HERE / f"layerctl.{shell}"
        path.write_text(script(shell), encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
