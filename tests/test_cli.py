"""The CLI boundary: exit codes, one-line errors, no partial outputs, light start-up."""

import subprocess
import sys

import pytest
from PIL import Image

HEAVY = ("torch", "diffusers", "onnxruntime", "transformers", "cv2", "skimage")


@pytest.mark.parametrize(
    "code", ["import layerctl", "from layerctl.cli import main; main(['--help'])"]
)
def test_startup_imports_nothing_heavy(code):
    probe = (
        "import sys\ntry:\n    "
        + code.replace("; ", "\n    ")
        + "\nexcept SystemExit:\n    pass\n"
        + f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version_and_help(cli):
    result = cli("--version")
    assert result.code == 0 and result.stdout.startswith("layerctl ")
    result = cli("--help")
    assert result.code == 0 and "decompose" in result.stdout


def test_usage_errors_exit_2(cli, tmp_path):
    assert cli("decompose").code == 2
    assert cli("decompose", "x.png", "-n", "0").code == 2
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    result = cli("decompose", image, "-o", tmp_path / "flat.png")
    assert result.code == 2 and "PNG stack" in result.stderr
    assert cli("decompose", image, "-o", tmp_path / "x.psd", "--format", "tiff").code == 2


@pytest.mark.parametrize(
    ("name", "data"),
    [("empty.png", b""), ("html.png", b"<html></html>"), ("cut.png", b"\x89PNG\r\n\x1a\n\0\0")],
)
def test_bad_input_is_one_line_exit_1_no_output(cli, tmp_path, name, data):
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out.psd"
    result = cli("decompose", src, "-o", out)
    assert result.code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_missing_input_and_unknown_backend(cli, tmp_path):
    result = cli("decompose", tmp_path / "nope.png", "-o", tmp_path / "o.psd")
    assert result.code == 1 and "no such file" in result.stderr
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    result = cli("decompose", image, "-o", tmp_path / "o.psd", "--backend", "nonesuch")
    assert result.code == 2 and "unknown backend 'nonesuch'" in result.stderr


def test_existing_output_needs_force(cli, tmp_path):
    image = tmp_path / "in.png"
    Image.new("RGB", (8, 8)).save(image)
    out = tmp_path / "o.psd"
    out.write_bytes(b"precious")
    result = cli("decompose", image, "-o", out)
    assert result.code == 1 and "--force" in result.stderr
    assert out.read_bytes() == b"precious"


def test_backends_lists_classic(cli):
    import json

    result = cli("backends", "--json")
    assert result.code == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert "classic" in rows


def test_ctrl_c_says_interrupted_and_exits_130(cli, monkeypatch, tmp_path):
    import layerctl.formats

    def interrupted(path, max_memory=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(layerctl.formats, "read", interrupted)
    result = cli("info", tmp_path / "x.psd")
    assert result.code == 130
    assert result.stderr == "error: interrupted\n"


def test_help_imports_neither_numpy_nor_pillow():
    """`layerctl --help` should cost little more than importing typer and rich."""
    probe = (
        "import sys\nfrom layerctl.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'PIL', 'psd_tools'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
