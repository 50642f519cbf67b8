"""``layerctl convert``: every layered format to every other, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from optional import needs_pptx, pptx_marked, writable
from sample_stack import make_stack, tree

from layerctl import formats
from layerctl.stack import Layer, LayerStack

NAMES = writable(
    {
        "psd": "r.psd",
        "psb": "r.psb",
        "ora": "r.ora",
        "png": "r",
        "pptx": "r.pptx",
        "svg": "r.svg",
    }
)


def _chain(tmp_path: Path, cli, names: list[str]) -> LayerStack:
    """Convert from ``names[0]`` through the others in order; the last result read back."""
    source = tmp_path / names[0]
    for number, name in enumerate(names[1:]):
        target = tmp_path / f"{number}{name}"
        done = cli("convert", source, target)
        assert done.code == 0, done.stderr
        assert "warning" not in done.stderr, done.stderr
        source = target
    return formats.read(source)


@pytest.mark.parametrize("start", sorted(NAMES))
def test_every_format_through_every_other_keeps_everything(tmp_path: Path, cli, start) -> None:
    """Names, order, groups, visibility, pixels, provenance and profile survive a chain
    through all six kinds of result, whichever it starts from."""
    stack = make_stack()
    formats.write(stack, tmp_path / NAMES[start])
    others = [name for kind, name in NAMES.items() if kind != start]
    back = _chain(tmp_path, cli, [NAMES[start], *others, NAMES[start]])
    assert tree(back) == tree(stack)
    assert back.metadata == stack.metadata and back.icc_profile == stack.icc_profile


@pytest.mark.parametrize(("via", "to"), pptx_marked([("r.pptx", "r.psd"), ("r.svg", "r.ora")]))
def test_psd_through_pptx_or_svg_keeps_every_layer_within_one(tmp_path: Path, cli, via, to):
    """The issue's round trips, PSD -> PPTX -> PSD and PSD -> SVG -> ORA: every layer's
    pixels within 1 per channel (they come back exact)."""
    stack = make_stack()
    formats.write(stack, tmp_path / "in.psd")
    for source, target in [("in.psd", via), (via, to)]:
        assert cli("convert", tmp_path / source, tmp_path / target).code == 0
    back = formats.read(tmp_path / to)
    for ours, theirs in zip(stack.walk(), back.walk(), strict=True):
        assert ours.name == theirs.name and ours.visible == theirs.visible
        visible = ours.pixels[..., 3] > 0
        diff = np.abs(ours.pixels.astype(int) - theirs.pixels.astype(int))[visible]
        assert diff.max(initial=0) <= 1, ours.name


def test_one_warning_per_thing_the_target_cannot_hold(tmp_path: Path, cli) -> None:
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[1:3, 1:3] = 255
    names = ["nul\x00x", "fine", "x" * 300]
    formats.write(LayerStack([Layer(name, pixels) for name in names]), tmp_path / "r")
    expected = writable({"svg": 1, "pptx": 1, "ora": 1, "psd": 1, "png": 0})
    for kind, count in expected.items():
        out = tmp_path / ("out" if kind == "png" else f"out.{kind}")
        done = cli("convert", tmp_path / "r", out, "--json")
        assert done.code == 0, done.stderr
        warnings = [line for line in done.stderr.splitlines() if line.startswith("warning: ")]
        assert len(warnings) == count, done.stderr
        assert json.loads(done.stdout)["warnings"] == [
            w.removeprefix("warning: ") for w in warnings
        ]
        if count:  # PSD keeps the NUL but cuts the long name; XML formats the reverse
            assert ("cut to 255" if kind == "psd" else "nul") in warnings[0], warnings


def test_the_input_is_never_overwritten_and_outputs_only_with_force(tmp_path: Path, cli) -> None:
    formats.write(make_stack(), tmp_path / "r.psd")
    before = (tmp_path / "r.psd").read_bytes()
    for extra in [(), ("--force",)]:
        done = cli("convert", tmp_path / "r.psd", tmp_path / "r.psd", *extra)
        assert done.code == 2 and "is the input" in done.stderr
    (tmp_path / "taken.svg").write_text("mine")
    done = cli("convert", tmp_path / "r.psd", tmp_path / "taken.svg")
    assert done.code == 1 and "exists" in done.stderr
    assert (tmp_path / "taken.svg").read_text() == "mine"
    assert cli("convert", tmp_path / "r.psd", tmp_path / "taken.svg", "-f").code == 0
    assert len(formats.read(tmp_path / "taken.svg").leaves()) == len(make_stack().leaves())
    assert (tmp_path / "r.psd").read_bytes() == before


@needs_pptx
def test_format_option_and_suffix_must_agree(tmp_path: Path, cli) -> None:
    formats.write(make_stack(), tmp_path / "r.ora")
    done = cli("convert", tmp_path / "r.ora", tmp_path / "x.svg", "--format", "pptx")
    assert done.code == 2 and "does not match" in done.stderr
    done = cli("convert", tmp_path / "r.ora", tmp_path / "x.pptx", "--format", "pptx", "-q")
    assert done.code == 0 and done.stderr == ""


@pytest.mark.parametrize("suffix", pptx_marked([".pptx", ".svg"]))
def test_the_other_commands_read_pptx_and_svg(tmp_path: Path, cli, flat_design, suffix) -> None:
    """info, compose, preview, eval and split take our PPTX and SVG like any result."""
    result = tmp_path / f"r{suffix}"
    formats.write(LayerStack([Layer("design", flat_design)]), result)
    info = json.loads(cli("info", result, "--json").stdout)
    assert info["format"] == suffix[1:] and info["layer_count"] == 1
    assert cli("compose", result, "-o", tmp_path / "flat.png").code == 0
    assert cli("preview", result, "-o", tmp_path / "sheet.png").code == 0
    assert cli("eval", result, result, "--json").code == 0
    done = cli("split", result, "--layer", "0", "-n", "3", "--backend", "classic", "--json")
    assert done.code == 0, done.stderr
    assert json.loads(done.stdout)["layers"] > 1
    back = formats.read(result)  # split in place, in the same format
    assert back.layers[0].is_group and back.layers[0].name == "design"
