"""A torchvision that is installed but does not import (built for another torch: "operator
torchvision::nms does not exist") breaks every diffusers model class. ``layerctl
backends``, ``--backend auto``, ``--backend qwen`` and ``doctor`` must see it and say what
to do, instead of an internal error. A stub ``torchvision`` whose import raises as the
real one does stands in for it, on ``sys.path`` and ``PYTHONPATH`` (the check runs in a
subprocess)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from layerctl.backends.layered import torch_stack

NMS = "RuntimeError: operator torchvision::nms does not exist"


def _stub(root: Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "torchvision").mkdir(parents=True)
    (root / "torchvision" / "__init__.py").write_text(body)
    monkeypatch.syspath_prepend(str(root))
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    monkeypatch.setenv("PYTHONPATH", path)
    torch_stack.torchvision_problem.cache_clear()


@pytest.fixture
def broken_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    body = 'raise RuntimeError("operator torchvision::nms does not exist")\n'  # as the real one
    _stub(tmp_path / "site", body, monkeypatch)
    yield
    torch_stack.torchvision_problem.cache_clear()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    pixels = np.full((48, 64, 4), (240, 236, 220, 255), np.uint8)
    pixels[10:30, 12:40] = (200, 40, 40, 255)
    Image.fromarray(pixels, "RGBA").save(tmp_path / "in.png")
    return tmp_path / "in.png"


def test_the_check_finds_the_import_error_and_names_the_fix(broken_torchvision):
    problem = torch_stack.torchvision_problem()
    assert problem is not None and NMS in problem
    assert "pip uninstall torchvision" in problem


def test_a_torchvision_that_imports_is_no_problem(tmp_path, monkeypatch):
    _stub(tmp_path / "site", "", monkeypatch)
    assert torch_stack.torchvision_problem() is None
    torch_stack.torchvision_problem.cache_clear()


@pytest.mark.torch
def test_backends_auto_qwen_and_doctor_see_it(
    cli, tiny_qwen, image, broken_torchvision, monkeypatch, tmp_path
):
    monkeypatch.setenv("LAYERCTL_WEIGHTS", str(tiny_qwen))  # qwen would be usable but for it
    rows = {row["name"]: row for row in json.loads(cli("backends", "--json").stdout)}
    assert not rows["qwen"]["available"] and NMS in rows["qwen"]["reason"]

    auto = cli("decompose", image, "-o", tmp_path / "auto.psd", "--json")
    assert auto.code == 0, auto.stderr
    assert json.loads(auto.stdout)["backend"] == "classic"  # fell through, as auto should

    qwen = cli("decompose", image, "-o", tmp_path / "q.psd", "-b", "qwen")
    assert qwen.code == 1 and "internal error" not in qwen.stderr
    assert NMS in qwen.stderr and "pip uninstall torchvision" in qwen.stderr
    assert len(qwen.stderr.strip().splitlines()) == 1

    doctor = cli("doctor", "--json")
    assert doctor.code == 0 and NMS in json.loads(doctor.stdout)["torchvision"]
    assert "torchvision   BROKEN" in cli("doctor").stdout


def test_onnx_captions_with_the_generic_prompt_and_says_why(tiny_qwen, broken_torchvision, capsys):
    """The ONNX engine needs no torch once it has a prompt; its captioner does."""
    from types import SimpleNamespace

    from layerctl.backends.model_options import LayeredRequest
    from layerctl.backends.onnx import FALLBACK_PROMPT, OnnxBackend

    backend = object.__new__(OnnxBackend)  # no export needed to caption
    backend.pipeline = SimpleNamespace(manifest={"source": str(tiny_qwen)})
    pixels = np.zeros((32, 32, 4), np.uint8)
    prompt = backend._caption(pixels, Image.fromarray(pixels, "RGBA"), LayeredRequest())
    assert prompt == FALLBACK_PROMPT
    assert NMS in capsys.readouterr().err
