"""Shell completions: the committed scripts are current and layerctl answers their queries."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from layerctl.cli import app

FOLDER = Path(__file__).resolve().parent.parent / "completions"


def _generator():
    spec = importlib.util.spec_from_file_location("generate", FOLDER / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_committed_scripts_are_current(shell):
    expected = _generator().script(shell)
    assert "_LAYERCTL_COMPLETE" in expected
    committed = (FOLDER / f"layerctl.{shell}").read_text(encoding="utf-8")
    assert committed == expected, "stale: run `python completions/generate.py`"


def _complete_bash(words: str) -> list[str]:
    env = {
        **os.environ,
        "_LAYERCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
    }
    done = subprocess.run(
        [sys.executable, "-m", "layerctl"], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_completion_offers_every_command_and_option():
    group = typer.main.get_command(app)
    assert set(_complete_bash("layerctl ")) == set(group.commands)
    offered = set(_complete_bash("layerctl decompose --"))
    decompose = group.commands["decompose"]
    long_options = {o for p in decompose.params for o in p.opts if o.startswith("--")}
    assert long_options <= offered
    assert _complete_bash("layerctl decompose --recursive-d") == ["--recursive-dirs"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_script_parses():
    subprocess.run(["bash", "-n", str(FOLDER / "layerctl.bash")], check=True)
