"""Option defaults: flag > LAYERCTL_* environment > layerctl.toml > built-in default."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from stripes_backend import register

from layerctl import config


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    register(monkeypatch)
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (16, 12), (200, 40, 40)).save(tmp_path / "in.png")
    return tmp_path / "in.png"


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} - {"in.png", "layerctl.toml"}


def test_precedence_flag_env_file_default(cli, image, monkeypatch):
    folder = image.parent
    args = ["decompose", "in.png", "-b", "stripes", "-n", "2"]
    assert cli(*args).code == 0  # built-in default: PSD beside the input
    assert _outputs(folder) == {"in.psd"}
    (folder / "layerctl.toml").write_text('[decompose]\nformat = "ora"\n')
    assert cli(*args).code == 0
    assert _outputs(folder) == {"in.psd", "in.ora"}
    monkeypatch.setenv("LAYERCTL_FORMAT", "png")
    assert cli(*args).code == 0
    assert _outputs(folder) == {"in.psd", "in.ora", "in"}  # a PNG-stack folder
    assert cli(*args, "--format", "psd").code == 1  # the flag wins: in.psd exists
    monkeypatch.setenv("LAYERCTL_FORCE", "true")  # typed values come from strings too
    assert cli(*args, "--format", "psd").code == 0


def test_top_level_keys_apply_to_every_command_that_has_the_option(cli, image, monkeypatch):
    (image.parent / "layerctl.toml").write_text('backend = "nonesuch"\nlayers = "auto"\n')
    result = cli("decompose", "in.png")
    assert result.code == 2 and "nonesuch" in result.stderr
    assert cli("decompose", "in.png", "-b", "stripes").code == 0
    assert cli("info", "in.psd").code == 0  # info has no --backend: not affected


def test_the_xdg_file_is_used_when_there_is_none_here(cli, image, tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    (xdg / "layerctl").mkdir(parents=True)
    (xdg / "layerctl" / "layerctl.toml").write_text('format = "ora"\n')
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    assert config.config_path() == xdg / "layerctl" / "layerctl.toml"
    assert cli("decompose", "in.png", "-b", "stripes", "-n", "2").code == 0
    assert _outputs(image.parent) == {"in.ora", "xdg"}
    (image.parent / "layerctl.toml").write_text("")
    assert config.config_path() == image.parent / "layerctl.toml"  # ./ first
    explicit = tmp_path / "ci.toml"
    explicit.write_text("")
    monkeypatch.setenv("LAYERCTL_CONFIG", str(explicit))
    assert config.config_path() == explicit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seeed = 1\n", "unknown setting 'seeed'"),
        ("[decompose]\nnope = 1\n", "has no option 'nope'"),
        ("[nosuch]\nseed = 1\n", "not a layerctl command"),
        ("seed = \n", "not a readable TOML"),
    ],
)
def test_bad_config_files_are_one_line_usage_errors(cli, image, text, message):
    (image.parent / "layerctl.toml").write_text(text)
    result = cli("decompose", "in.png", "-b", "stripes")
    assert result.code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_missing_explicit_config_is_an_error(cli, image, monkeypatch):
    monkeypatch.setenv("LAYERCTL_CONFIG", str(image.parent / "absent.toml"))
    result = cli("decompose", "in.png", "-b", "stripes")
    assert result.code == 2 and "LAYERCTL_CONFIG" in result.stderr


def test_a_configured_format_must_match_the_output_name(cli, image):
    """format = "ora" with -o res1 would write a zip without a suffix no reader takes."""
    (image.parent / "layerctl.toml").write_text('format = "ora"\n')
    result = cli("decompose", "in.png", "-o", "res1", "-b", "stripes", "-n", "2")
    assert result.code == 2 and "does not match" in result.stderr
    assert not (image.parent / "res1").exists()
    assert cli("decompose", "in.png", "-o", "res1.ora", "-b", "stripes", "-n", "2").code == 0


def test_toml_values_keep_their_toml_types(cli, image):
    """``layers = 3`` is how TOML says it: an int, not the string a flag gives."""
    (image.parent / "layerctl.toml").write_text(
        "layers = 3\nseed = 7\nforce = true\nmax_pixels = 100000000\n"
    )
    result = cli("decompose", "in.png", "-b", "stripes")
    assert result.code == 0, result.stderr
    assert "3 layers" in result.stderr


def test_a_toml_array_is_the_flags_comma_list(cli, image):
    (image.parent / "layerctl.toml").write_text("recursive = 1\nsplit_layers = [1]\n")
    result = cli("decompose", "in.png", "-b", "stripes", "-n", "2")
    assert result.code == 0, result.stderr
