"""``layerctl export onnx`` and ``--backend onnx`` on the tiny random checkpoint.

One export (session fixture, through the real CLI) serves every test: two image sizes and
two layer counts must match the torch backend — latents within 1e-3, layers within 1 per
uint8 channel — and a decomposition in a fresh process must never import torch.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from layerctl.backends.model_options import OnnxSettings, QwenRequest, QwenSettings

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
pytest.importorskip("diffusers")
pytestmark = [pytest.mark.slow, pytest.mark.torch]

REQUEST = QwenRequest(seed=5, prompt="a red disc on cream", steps=2, resolution=64)


@pytest.fixture(scope="session")
def onnx_export(tiny_qwen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from layerctl.cli import main

    folder = tmp_path_factory.mktemp("onnx") / "export"
    with pytest.raises(SystemExit) as done:
        main(["export", "onnx", "--weights", str(tiny_qwen), "-o", str(folder), "--quiet"])
    assert done.value.code == 0
    return folder


@pytest.fixture(scope="module")
def torch_backend(tiny_qwen: Path):
    from layerctl.backends.qwen import QwenBackend

    return QwenBackend(QwenSettings(weights=str(tiny_qwen), device="cpu", dtype="float32"))


@pytest.fixture(scope="module")
def onnx_backend(onnx_export: Path):
    from layerctl.backends.onnx import OnnxBackend

    return OnnxBackend(OnnxSettings(weights=str(onnx_export)))


def _image(width: int, height: int) -> np.ndarray:
    img = Image.new("RGBA", (width, height), (240, 236, 220, 255))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 8, height // 8, width // 2, height // 2), fill=(200, 40, 40, 255))
    draw.rectangle((width // 3, height // 2, width - 4, height - 6), fill=(30, 80, 190, 200))
    return np.asarray(img).copy()


def _run(backend, image: np.ndarray, request: QwenRequest) -> tuple[list, np.ndarray]:
    seen = {}
    layers = backend.decompose(image, request, callback=lambda i, x: seen.update(latents=x))
    latents = seen["latents"]
    return layers, np.asarray(latents.cpu() if hasattr(latents, "cpu") else latents)


def test_manifest_describes_a_size_independent_export(onnx_export: Path) -> None:
    manifest = json.loads((onnx_export / "manifest.json").read_text())
    graphs = manifest["graphs"]
    assert set(graphs) == {"transformer", "vae_encoder", "vae_decoder", "text_encoder"}
    shapes = {i["name"]: i["shape"] for i in graphs["transformer"]["inputs"]}
    assert shapes["tokens"][:2] == ["batch", "tokens"]
    assert shapes["text"][:2] == shapes["text_mask"] == ["batch", "text"]
    image = graphs["vae_encoder"]["inputs"][0]["shape"]
    assert isinstance(image[0], str) and isinstance(image[3], str) and isinstance(image[4], str)
    files = manifest["files"]
    assert {"transformer.onnx", "tokenizer/tokenizer.json"} <= set(files)
    assert any(name.endswith(".data") for name in files)  # weights as external data
    assert all(len(f["sha256"]) == 64 for f in files.values())
    diffs = manifest["verification"]["max_relative_difference"]
    assert max(diffs.values()) <= manifest["verification"]["tolerance"]
    assert {"torch", "onnx", "layerctl"} <= set(manifest["versions"])


@pytest.mark.parametrize(
    ("size", "layers"), [((90, 60), 2), ((48, 80), 3)], ids=["landscape-2", "portrait-3"]
)
def test_onnx_equals_torch_backend(torch_backend, onnx_backend, size, layers) -> None:
    image, request = _image(*size), REQUEST.with_(layers=layers)
    ours, ours_latents = _run(onnx_backend, image, request)
    ref, ref_latents = _run(torch_backend, image, request)
    assert ours_latents.shape == ref_latents.shape
    assert np.abs(ours_latents - ref_latents).max() <= 1e-3
    assert len(ours) == len(ref) == layers
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_tokenizer_matches_transformers(onnx_export: Path, tiny_qwen: Path) -> None:
    from transformers import Qwen2Tokenizer

    from layerctl.backends.layered.flow import PROMPT_TEMPLATE
    from layerctl.backends.onnx.runtime import Tokenizer

    text = PROMPT_TEMPLATE.format("A red disc, 你好, and the word “hello”  twice.")
    expected = Qwen2Tokenizer.from_pretrained(tiny_qwen / "tokenizer")([text]).input_ids[0]
    assert Tokenizer(onnx_export / "tokenizer").ids(text).tolist() == expected


def test_rope_tables_match_diffusers(tiny_qwen: Path) -> None:
    import torch
    from diffusers import QwenImageTransformer2DModel

    from layerctl.backends.onnx import rope

    model = QwenImageTransformer2DModel.from_pretrained(tiny_qwen / "transformer")
    for frames, gh, gw, text in [(3, 4, 6, 9), (5, 7, 3, 2)]:
        shapes = [(1, gh, gw)] * (frames + 1)
        img, txt = model.pos_embed([shapes], max_txt_seq_len=text, device=torch.device("cpu"))
        ours = rope.tables(model.config.axes_dims_rope, frames, gh, gw, text)
        for got, want in zip(ours, (img.real, img.imag, txt.real, txt.imag), strict=True):
            np.testing.assert_allclose(got, want.numpy(), atol=1e-6)


def test_decompose_never_imports_torch(onnx_export: Path, tmp_path: Path) -> None:
    Image.fromarray(_image(70, 50)).save(tmp_path / "in.png")
    probe = (
        "import sys\n"
        "from layerctl.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'diffusers'})\n"
        "print('IMPORTED', heavy, 'EXIT', code)\n"
    )
    args = ["decompose", "in.png", "--backend", "onnx", "--weights", str(onnx_export)]
    args += ["--prompt", "a disc", "--steps", "1", "--resolution", "640", "-n", "2"]
    args += ["--providers", "cpu", "-o", "out.psd"]
    done = subprocess.run(
        [sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert "IMPORTED [] EXIT 0" in done.stdout, done.stderr
    assert "onnx transformer: CPUExecutionProvider" in done.stderr  # the provider is logged
    assert (tmp_path / "out.psd").is_file()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", "transformer.onnx.data has"),
        ("corrupt", "does not match its sha256"),
        ("delete", "vae_decoder.onnx is missing"),
        ("manifest", "not a folder written by `layerctl export onnx`"),
        ("version", "this layerctl reads"),
    ],
)
def test_damaged_export_is_a_clear_error(
    onnx_export: Path, tmp_path: Path, cli, damage: str, message: str
) -> None:
    folder = tmp_path / "export"
    shutil.copytree(onnx_export, folder)
    if damage == "truncate":
        data = folder / "transformer.onnx.data"
        data.write_bytes(data.read_bytes()[:1000])
    elif damage == "corrupt":  # same size, one byte changed
        data = bytearray((folder / "vae_decoder.onnx.data").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "vae_decoder.onnx.data").write_bytes(bytes(data))
    elif damage == "delete":
        (folder / "vae_decoder.onnx").unlink()
    elif damage == "manifest":
        (folder / "manifest.json").unlink()
    else:
        record = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**record, "format_version": 99}))
    Image.fromarray(_image(40, 40)).save(tmp_path / "in.png")
    result = cli(
        "decompose", tmp_path / "in.png", "--backend", "onnx", "--weights", folder,
        "--prompt", "x", "-o", tmp_path / "out.psd",
    )  # fmt: skip
    assert result.code == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out.psd").exists()


def test_export_over_tolerance_writes_nothing(
    tiny_qwen: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from layerctl.backends.onnx import export

    real_specs = export._specs
    monkeypatch.setattr(export, "_specs", lambda *a: real_specs(*a)[:1])  # the text encoder only
    monkeypatch.setattr(export, "_verify", lambda folder, specs: {"text_encoder": 0.5})
    with pytest.raises(export.ExportMismatch, match=r"text_encoder differs .* nothing written"):
        export.export_onnx(str(tiny_qwen), tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_frozen_dimension_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from layerctl.backends.onnx import export

    x = helper.make_tensor_value_info("latents", TensorProto.FLOAT, [2, 16, 1, "h", 8])
    y = helper.make_tensor_value_info("image", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Identity", ["latents"], ["image"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), tmp_path / "vae_decoder.onnx")
    spec = export.GraphSpec(
        "vae_decoder", None, {}, {"latents": {0: "batch", 3: "height", 4: "width"}}, ["image"]
    )
    with pytest.raises(export.ExportMismatch, match=r"latents\[0\] \(batch\) = 2.*latents\[4\]"):
        export._check_symbolic(tmp_path, [spec])


def test_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime

    from layerctl.backends.onnx import runtime
    from layerctl.errors import BackendUnavailable

    assert runtime.choose_providers(["cpu"]) == ["CPUExecutionProvider"]
    assert runtime.choose_providers()[-1] == "CPUExecutionProvider"
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable, match="'cuda' is not available"):
        runtime.choose_providers(["cuda"])


def test_without_prompt_or_captioner_the_fallback_prompt_is_used(
    onnx_backend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from layerctl.backends import onnx as onnx_module

    prompts = []
    monkeypatch.setitem(onnx_backend.pipeline.manifest, "source", "/nonexistent/checkpoint")
    monkeypatch.setattr(
        onnx_backend.pipeline, "decompose", lambda image, prompt, *a: prompts.append(prompt)
    )
    onnx_backend.decompose(_image(40, 40), REQUEST.with_(prompt=None))
    assert prompts == [onnx_module.FALLBACK_PROMPT]
    assert "generic prompt" in capsys.readouterr().err
