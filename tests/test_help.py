"""Help people can read: no option name cut at 80 columns, conventional metavars."""

from __future__ import annotations

import re

import pytest

from layerctl import __version__


@pytest.mark.parametrize("command", ["decompose", "split"])
def test_help_at_80_columns_cuts_no_option_name(cli, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    result = cli(command, "--help")
    assert result.code == 0
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text.replace("TIFF, …", "")  # nothing cut, env var names included
    from typer.main import get_command

    from layerctl.cli import app

    names = {
        opt
        for param in get_command(app).commands[command].params
        for opt in (*param.opts, *getattr(param, "secondary_opts", ()))
        if opt.startswith("-")
    }
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name
    assert "<bool>" not in text and "<list" not in text and "{" not in text
    for panel in ("Output", "Layers", "Model (qwen, onnx)", "Speed and memory"):
        assert panel in text
    assert "[env var: LAYERCTL_STEPS]" in text


def test_decompose_help_shows_choices_and_examples(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    text = cli("decompose", "--help").stdout
    assert "[psd|ora|png|pptx|svg]" in text and "auto, none, model," in text
    assert "encoder-cpu, group" in text
    assert "Examples" in text and "layerctl decompose poster.png -o poster.psd" in text
    assert "Usage: layerctl decompose [OPTIONS] INPUT..." in text


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(cli, flag):
    result = cli(flag)
    assert result.code == 0 and result.stdout.strip() == f"layerctl {__version__}"
