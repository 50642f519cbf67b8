"""One Decomposer for the CLI and Python: same layers, options checked once, up front."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import layerctl
from layerctl import formats
from layerctl.errors import OutputExists, UsageError


@pytest.fixture
def poster(tmp_path: Path, flat_design: np.ndarray) -> Path:
    path = tmp_path / "poster.png"
    Image.fromarray(flat_design).save(path)
    return path


def _pixels(stack) -> list[np.ndarray]:
    return [layer.pixels for layer in stack.leaves()]


@pytest.mark.parametrize(
    "args",
    [
        ("-n", "3", "--seed", "7"),
        ("-n", "auto", "--max-layers", "5", "--seed", "7"),
        ("-n", "3", "--recursive", "1", "--min-coverage", "0.05"),
    ],
    ids=["fixed", "auto", "recursive"],
)
def test_python_and_cli_give_bit_equal_layers(cli, poster, tmp_path, args):
    out = tmp_path / "cli.psd"
    result = cli("decompose", poster, "-o", out, "-b", "classic", *args)
    assert result.code == 0, result.stderr
    from_cli = formats.read(out)
    keywords = {
        "layers": "auto" if "auto" in args else 3,
        "max_layers": 5 if "auto" in args else 8,
        "seed": 7 if "--seed" in args else 0,
        "recursive": 1 if "--recursive" in args else 0,
        "min_coverage": 0.05 if "--recursive" in args else 0.01,
    }
    from_python = layerctl.decompose(poster, backend="classic", **keywords)
    assert [layer.name for layer in from_python.leaves()] == [
        layer.name for layer in from_cli.leaves()
    ]
    for ours, theirs in zip(_pixels(from_python), _pixels(from_cli), strict=True):
        # the PSD stores each layer cropped; transparent pixels' colour is not kept
        visible = ours[..., 3] > 0
        assert np.array_equal(ours[..., 3], theirs[..., 3])
        assert np.array_equal(ours[visible], theirs[visible])
    assert from_python.metadata["seed"] == from_cli.metadata["seed"]


def test_open_once_for_many_images(poster, flat_design):
    run = layerctl.open(backend="classic", layers=3, seed=7)
    first, again, array = run(poster), run(poster), run(flat_design)
    assert first.metadata["seed"] == again.metadata["seed"] != 7  # mixed with the content
    for a, b in zip(_pixels(first), _pixels(again), strict=True):
        assert np.array_equal(a, b)
    assert array.metadata["source"]["path"] == "<array>" and len(array.layers) <= 3


def test_decompose_file_is_the_cli_path(poster, tmp_path):
    out = tmp_path / "api.ora"
    stack = layerctl.decompose_file(poster, out, 3, backend="classic", preview=True)
    assert formats.read(out).metadata["source"]["sha256"] == stack.metadata["source"]["sha256"]
    assert (tmp_path / "api.ora.preview.png").is_file()
    with pytest.raises(OutputExists):
        layerctl.decompose_file(poster, out, 3, backend="classic")
    with pytest.raises(UsageError, match="does not match"):
        layerctl.decompose_file(poster, tmp_path / "x.psd", backend="classic", fmt="ora")
    assert not (tmp_path / "x.psd").exists()


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"steps": 3}, "steps is not an option of the classic backend"),
        ({"stepz": 3}, "stepz is not an option of the classic backend"),
        ({"layers": 0}, "layers 0: must be 1 to 64, or auto"),
        ({"output_size": "half"}, "output_size 'half': must be one of input, model"),
        ({"fmt": "tiff"}, "fmt 'tiff': must be one of psd, ora, png"),
    ],
)
def test_python_options_are_checked_on_open(keywords, message):
    with pytest.raises(UsageError, match=message):
        layerctl.open(backend="classic", **keywords)


def test_the_model_options_are_typed():
    from layerctl.backends.base import build
    from layerctl.backends.model_options import QwenRequest, QwenSettings

    with pytest.raises(UsageError, match="resolution 777"):
        build(QwenRequest, {"resolution": 777})
    with pytest.raises(UsageError, match="device 'gpu'"):
        build(QwenSettings, {"device": "gpu"})
    assert build(QwenSettings, {"device": "cpu"}).device == "cpu"
    assert QwenRequest(prompt="a poster").for_layer().prompt is None


def test_a_bad_backend_is_one_usage_error_before_any_image(cli, poster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        Image.open(poster).save(folder / f"{name}.png")
    result = cli("decompose", folder, "-o", tmp_path / "out", "--backend", "clasic", "--json")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.count("unknown backend 'clasic'") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flag", "takers"),
    [
        (["--steps", "3"], "onnx and qwen"),
        (["--offload", "group"], "qwen"),
        (["--quantize", "fp8"], "qwen"),
        (["--prompt", "x"], "onnx and qwen"),
        (["--device", "cuda"], "qwen"),
        (["--resolution", "1024"], "onnx and qwen"),
        (["--providers", "cpu"], "onnx"),
        (["--cfg-normalize"], "onnx and qwen"),
    ],
)
def test_a_flag_the_backend_does_not_take_is_a_usage_error(cli, poster, tmp_path, flag, takers):
    result = cli("decompose", poster, "-o", tmp_path / "o.psd", "-b", "classic", *flag)
    assert result.code == 2, result.stderr
    assert f"{flag[0]} is not an option of the classic backend" in result.stderr
    assert f"it is for {takers}" in result.stderr
    assert not (tmp_path / "o.psd").exists()


def test_bad_choices_are_usage_errors(cli, poster, tmp_path):
    for flag in (["--resolution", "777"], ["--offload", "banana"], ["--device", "gpu"]):
        result = cli("decompose", poster, "-o", tmp_path / "o.psd", *flag)
        assert result.code == 2 and "is not one of" in result.stderr, result.stderr


def test_config_and_env_values_for_another_backend_are_ignored(cli, poster, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "layerctl.toml").write_text('steps = 3\n[decompose]\noffload = "group"\n')
    monkeypatch.setenv("LAYERCTL_PROMPT", "a poster")
    monkeypatch.setenv("LAYERCTL_DEVICE", "cpu")
    result = cli("decompose", poster, "-o", tmp_path / "o.psd", "-b", "classic", "-n", "2")
    assert result.code == 0, result.stderr
    assert "steps" not in formats.read(tmp_path / "o.psd").metadata["parameters"]


def test_split_takes_json_and_the_same_checks(cli, poster, tmp_path):
    out = tmp_path / "r.psd"
    assert cli("decompose", poster, "-o", out, "-b", "classic", "-n", "2").code == 0
    result = cli("split", out, "-l", "1", "-b", "classic", "--steps", "3")
    assert result.code == 2 and "--steps is not an option of the classic" in result.stderr
    result = cli("split", out, "-l", "1", "-b", "classic", "-n", "3", "--json", "-q")
    assert result.code in (0, 1), result.stderr
    if result.code == 0:
        import json

        record = json.loads(result.stdout)
        assert record["output"] == str(out) and record["backend"] == "classic"
        assert record["layers"] >= 2 and result.stderr == ""
