"""The scripting contract of the commands other than decompose: --json prints one
documented JSON document on stdout, -q leaves stderr empty on success, and user text
(file and layer names, plugin messages) is never read as rich markup."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import pytest
from sample_stack import make_stack

from layerctl import console, formats
from layerctl.backends import base


@pytest.fixture
def result(tmp_path: Path) -> Path:
    """A PSD with groups, whose file name would be markup."""
    path = tmp_path / "bad[red].psd"
    formats.write(make_stack(), path)
    return path


def _json(out: str):
    (line,) = out.splitlines()  # one document, on one line
    return json.loads(line)


def test_info_json_and_tree_show_names_literally(cli, result):
    record = _json(cli("info", result, "--json").stdout)
    assert record["path"] == str(result) and record["format"] == "psd"
    assert record["layer_count"] == len(make_stack().leaves())
    assert {"width", "height", "metadata", "layers"} <= set(record)
    shown = cli("info", result)
    assert shown.code == 0 and "bad[red].psd" in shown.stdout


def test_preview_and_info_count_the_same_layers(cli, result, tmp_path):
    """Groups are drawn on the sheet but are not layers: both count pixel layers."""
    stack = make_stack()
    assert len(list(stack.walk())) > len(stack.leaves())  # the sample has groups
    sheet = tmp_path / "sheet.png"
    record = _json(cli("preview", result, "-o", sheet, "--json").stdout)
    info = _json(cli("info", result, "--json").stdout)
    assert record["layer_count"] == info["layer_count"] == len(stack.leaves())
    assert record["output"] == str(sheet) and record["original"] is False
    said = cli("preview", result, "-o", sheet, "-f")
    assert f"({len(stack.leaves())} layers, without the original)" in said.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("compose", "{result}", "-o", "{tmp}/flat.png"),
        ("convert", "{result}", "{tmp}/converted.svg"),
        ("preview", "{result}", "-o", "{tmp}/sheet.png"),
        ("eval", "{result}", "{result}"),
        ("info", "{result}"),
        ("backends",),
        ("weights", "list"),
    ],
)
def test_json_is_one_document_and_quiet_is_silent(cli, result, tmp_path, args):
    filled = [a.format(result=result, tmp=tmp_path) for a in args]
    done = cli(*filled, "--json", "-q")
    assert done.code == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) is not None and len(done.stdout.splitlines()) == 1


def test_compose_json_shape(cli, result, tmp_path):
    record = _json(cli("compose", result, "-o", tmp_path / "flat.png", "--json").stdout)
    assert record == {
        "input": str(result),
        "output": str(tmp_path / "flat.png"),
        "width": make_stack().size[0],
        "height": make_stack().size[1],
    }


def test_weights_json_shapes(cli, tmp_path):
    verify = cli("weights", "verify", tmp_path, "--json")
    assert verify.code == 1
    record = _json(verify.stdout)
    assert record["path"] == str(tmp_path) and record["ok"] is False and record["problems"]
    assert "1 problem," in verify.stderr  # not "problem(s)"
    missing = cli("weights", "path", "--json")
    assert missing.code == 1 and missing.stdout == ""  # no record for what is not there
    hub = find_spec("huggingface_hub") is not None  # absent with only .[classic,dev]
    assert ("not downloaded" if hub else "needs huggingface_hub") in missing.stderr


class _Unavailable:
    name = "bad[red]"
    summary = "never"
    extra = "torch"

    @classmethod
    def available(cls, settings) -> tuple[bool, str]:
        return False, "torch is missing: pip install 'layerctl[torch]'"


def test_backends_prints_extras_and_names_literally(cli, monkeypatch):
    real = base.backend_class
    monkeypatch.setattr(base, "registered", lambda: ["bad[red]", "classic"])
    monkeypatch.setattr(
        base, "backend_class", lambda name: _Unavailable if name == "bad[red]" else real(name)
    )
    monkeypatch.setenv("COLUMNS", "200")
    shown = cli("backends")
    assert "pip install 'layerctl[torch]'" in shown.stdout and "bad[red]" in shown.stdout


def test_spinner_text_is_not_markup(monkeypatch):
    said = []

    class Terminal:
        is_terminal = True

        def status(self, message):
            said.append(message)
            import contextlib

            return contextlib.nullcontext()

    monkeypatch.setattr(console, "stderr", Terminal)
    with console.status("decomposing bad[red].png"):
        pass
    from rich.text import Text

    assert Text.from_markup(said[0]).plain == "decomposing bad[red].png"


def test_pull_says_to_unset_offline_mode_only_when_it_is_set(monkeypatch):
    hub = pytest.importorskip("huggingface_hub")
    from layerctl import weights
    from layerctl.errors import MissingWeights

    def refuse(*args, **kwargs):
        raise hub.errors.LocalEntryNotFoundError("cannot reach the Hub")

    monkeypatch.setattr(hub, "snapshot_download", refuse)
    with pytest.raises(MissingWeights) as offline:
        weights.pull("qwen-image-layered", progress=False)
    assert "unset HF_HUB_OFFLINE" in str(offline.value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(MissingWeights) as online:
        weights.pull("qwen-image-layered", progress=False)
    assert "HF_HUB_OFFLINE" not in str(online.value) and "network" in str(online.value)


def test_verify_does_not_suggest_an_option_it_lacks(cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # not installed
    done = cli("weights", "verify", "qwen-image-layered")
    assert done.code == 1 and "--weights" not in done.stderr
    assert "checkpoint folder" in done.stderr


def test_native_stderr_is_silenced_but_our_messages_show():
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from layerctl import console\n"
        "with console.native_stderr_silenced():\n"
        "    os.write(2, b'[E core_worker.cc] native noise\\n')\n"
        "    console.warn('ours')\n"
        "os.write(2, b'after\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stderr.splitlines() == ["warning: ours", "after"]


@pytest.mark.slow
def test_a_ray_batch_prints_no_ray_log_lines(tmp_path):
    """Ray's driver logs from C++ straight to fd 2 (an actor warning on every run)."""
    import subprocess
    import sys

    pytest.importorskip("ray.data")
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (24, 16), (40 * i, 90, 200)).save(tmp_path / f"{i}.png")
    command = [sys.executable, "-m", "layerctl", "decompose", str(tmp_path), "-o"]
    command += [str(tmp_path / "out"), "--ray", "local", "-b", "classic", "-n", "2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("2 inputs in "), done.stderr
    assert not [line for line in lines if "core_worker" in line or line.startswith("[20")]


def test_compose_never_writes_a_foreign_profile(cli, tmp_path):
    """A result from another program may carry a CMYK profile: not on an RGB image."""
    from PIL import Image, ImageCms

    from layerctl.formats import pngstack
    from layerctl.stack import LayerStack

    stack = make_stack()
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    folder = tmp_path / "stack"
    pngstack.write(LayerStack(stack.layers, stack.metadata, lab), folder)
    assert cli("compose", folder, "-o", tmp_path / "flat.png").code == 0
    with Image.open(tmp_path / "flat.png") as flat:
        assert "icc_profile" not in flat.info
    assert cli("compose", tmp_path / "x.psd", "-o", tmp_path / "x.png").code == 1
