"""Shell completions: the committed scripts are current and layerctl answers their queries."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
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


def test_zsh_file_starts_with_compdef_and_completes_when_autoloaded():
    """compinit reads only files whose first line is #compdef; an autoloaded file must
    complete on the first Tab, not only bind the function for the next one."""
    text = (FOLDER / "layerctl.zsh").read_text(encoding="utf-8")
    assert text.splitlines()[0] == "#compdef layerctl"
    assert "loadautofunc" in text and '_layerctl_completion "$@"' in text


def _choice_options() -> list[tuple[str, str, list[str]]]:
    """(command, option, values) of every option typed as an Enum or a Literal."""
    import enum
    import typing

    def commands(group, prefix: str = "") -> Iterator[tuple[str, object]]:
        for name, command in group.commands.items():  # Typer vendors its own click
            yield f"{prefix}{name}", command
            if hasattr(command, "commands"):
                yield from commands(command, f"{prefix}{name} ")

    found = []
    for name, command in commands(typer.main.get_command(app)):
        for param in command.params:
            descriptor = getattr(param, "type_descriptor", None)
            kind = getattr(descriptor, "annotation", None)
            if param.param_type_name != "option" or kind is None:
                continue
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                found.append((name, param.opts[0], [str(m.value) for m in kind]))
            elif typing.get_origin(kind) is typing.Literal:
                found.append((name, param.opts[0], [str(v) for v in typing.get_args(kind)]))
    return found


def test_options_with_choices_complete_their_values():
    assert ("export onnx", "--dtype", ["float32", "float16"]) in _choice_options()
    for command, option, choices in _choice_options():
        assert set(_complete_bash(f"layerctl {command} {option} ")) == set(choices), option


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_installed_bash_script_completes_in_a_real_shell(tmp_path):
    """The README's steps: the script file, sourced by bash, asks the layerctl on PATH."""
    words = "layerctl deco"
    line = (
        f"source {FOLDER / 'layerctl.bash'}; COMP_WORDS=({words}); COMP_CWORD=1; "
        '_layerctl_completion layerctl; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", line], env={**os.environ, "PATH": path}, capture_output=True, text=True
    )
    assert done.stdout.split() == ["decompose"], done.stderr
