"""``--lora PATH[:SCALE]``: merged as diffusers' ``load_lora_weights`` + ``set_adapters``
would run it, in every LoRA layout diffusers converts; every bad LoRA a one-line exit 2.

The parity tests compare ``layerctl decompose --lora FILE:0.7`` with diffusers'
QwenImageLayeredPipeline after ``load_lora_weights(FILE)`` and ``set_adapters(…, 0.7)``,
on the tiny checkpoint, every uint8 channel within 1 (tests/test_qwen_parity.py's check).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tiny_qwen import LORA_MODULES, build_lora

from layerctl.backends import base
from layerctl.backends.model_options import Lora, QwenSettings
from layerctl.errors import UsageError

SCALE = 0.7


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    pixels[..., 3] = 255
    Image.fromarray(pixels, "RGBA").save(tmp_path / "in.png")
    return tmp_path / "in.png"


# --- parity with the reference ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("layout", ["peft", "kohya"])
def test_lora_layers_equal_the_reference_after_load_lora_weights(
    cli, tiny_qwen, image, tmp_path, layout
):
    pytest.importorskip("peft")
    from qwen_reference import reference_pipeline
    from test_qwen_parity import _assert_same_layers, _run_ours, _run_reference

    lora = build_lora(tmp_path / f"{layout}.safetensors", layout)
    ours = _run_ours(
        cli, tiny_qwen, image, tmp_path / "out", 2, "--prompt", "a red disc",
        "--lora", f"{lora}:{SCALE}",
    )  # fmt: skip
    pipe = reference_pipeline(tiny_qwen)
    plain = _run_reference(pipe, ours, image, "a red disc", cfg_normalize=True)
    pipe.load_lora_weights(str(lora), adapter_name="style")
    pipe.set_adapters(["style"], [SCALE])
    expected = _run_reference(pipe, ours, image, "a red disc", cfg_normalize=True)
    _assert_same_layers(ours, expected)
    changed = max(np.abs(a.astype(int) - b).max() for a, b in zip(plain, expected, strict=True))
    assert changed > 8, "the LoRA must change the layers, or this test proves nothing"


@pytest.mark.torch
def test_every_layout_merges_the_same_weights(tiny_qwen, tmp_path):
    """kohya (lora_unet_…), ComfyUI (diffusion_model.…) and PEFT forms of one LoRA: the
    same merged transformer; two LoRAs merge with their own scales."""
    pytest.importorskip("peft")
    import torch
    from diffusers import QwenImageTransformer2DModel

    from layerctl.backends.qwen import lora

    def merged(*loras: Lora) -> dict[str, torch.Tensor]:
        model = QwenImageTransformer2DModel.from_pretrained(tiny_qwen / "transformer")
        lora.apply(model, loras)
        assert not any("lora" in name for name, _ in model.named_modules())  # plain again
        return model.state_dict()

    base_weights = merged()
    kohya = merged(Lora.parse(f"{build_lora(tmp_path / 'k.safetensors', 'kohya')}:0.5"))
    comfy = merged(Lora.parse(f"{build_lora(tmp_path / 'c.safetensors', 'comfy')}:0.5"))
    peft_file = build_lora(tmp_path / "p.safetensors", "peft", seed=1)
    both = merged(Lora.parse(f"{tmp_path / 'k.safetensors'}:0.5"), Lora.parse(f"{peft_file}:-1"))
    peft_only = merged(Lora.parse(f"{peft_file}:-1"))
    key = f"transformer_blocks.1.{LORA_MODULES[0]}.weight"
    assert not torch.equal(kohya[key], base_weights[key])
    for name in base_weights:
        torch.testing.assert_close(comfy[name], kohya[name], rtol=0, atol=1e-6)
        delta = (kohya[name] - base_weights[name]) + (peft_only[name] - base_weights[name])
        torch.testing.assert_close(both[name], base_weights[name] + delta, rtol=0, atol=1e-5)


# --- errors: one line, exit 2 -------------------------------------------------------


def _decompose(cli, image: Path, *lora: str):
    args = [arg for value in lora for arg in ("--lora", value)]
    return cli("decompose", image, "-o", image.with_suffix(".psd"), "-b", "qwen", *args)


def test_missing_file_bad_scale_and_non_safetensors_are_usage_errors(cli, image, tmp_path):
    (tmp_path / "notes.safetensors").write_text("not tensors at all, just text")
    (tmp_path / "old.ckpt").write_bytes(b"\x80\x04pickle")
    good = tmp_path / "good.safetensors"
    good.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")  # a valid, empty safetensors
    cases = {
        str(tmp_path / "nope.safetensors"): "nope.safetensors: no such file",
        f"{good}:strong": f"{good}:strong: 'strong' is not a scale",
        f"{good}:inf": "'inf' is not a scale",
        str(tmp_path / "notes.safetensors"): "notes.safetensors: not a safetensors file",
        str(tmp_path / "old.ckpt"): "old.ckpt: only safetensors LoRAs are loaded, never pickle",
        str(tmp_path): "not a file",
    }
    for value, message in cases.items():
        result = _decompose(cli, image, str(good), value)
        assert result.code == 2, (value, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not image.with_suffix(".psd").exists()


def test_parse_keeps_scales_and_colons_in_existing_paths(tmp_path):
    odd = tmp_path / "style:v2.safetensors"
    odd.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    assert Lora.parse(str(odd)) == Lora(path=str(odd), scale=1.0)
    assert Lora.parse(f"{odd}:0.25") == Lora(path=str(odd), scale=0.25)
    settings = QwenSettings(lora=f"{odd}:-0.5, {odd}")  # LAYERCTL_LORA / layerctl.toml form
    assert [lo.scale for lo in settings.lora] == [-0.5, 1.0]
    assert hash(settings) == hash(QwenSettings(lora=[f"{odd}:-0.5", str(odd)]))  # cacheable
    assert pickle.loads(pickle.dumps(settings)) == settings  # to --workers and Ray actors


def test_onnx_refuses_lora_as_an_option_it_does_not_take(tmp_path):
    pytest.importorskip("onnxruntime")  # the onnx backend must be usable to be configured
    pytest.importorskip("tokenizers")
    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text("{}")  # what OnnxBackend.available looks for
    with pytest.raises(UsageError, match="--lora is not an option of the onnx backend"):
        base.configure(
            "onnx", {"weights": str(export), "lora": ["x"]}, strict={"lora"}, label="--{}".format
        )


def test_toml_and_environment_give_loras(cli, image, tmp_path, monkeypatch):
    """layerctl.toml's array and LAYERCTL_LORA reach the qwen settings (the load is stubbed)."""
    from layerctl import batch
    from layerctl.backends.qwen import QwenBackend

    seen = []

    def capture(job, options):
        seen.append(options.settings.lora)
        raise UsageError("captured")

    monkeypatch.setattr(QwenBackend, "available", classmethod(lambda cls, s: (True, "stub")))
    monkeypatch.setattr(batch, "single", capture)
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for path in (a, b):
        path.write_bytes(b"\x02\x00\x00\x00\x00\x00\x00\x00{}")
    (tmp_path / "layerctl.toml").write_text('lora = ["a.safetensors:0.5", "b.safetensors"]\n')
    assert "captured" in cli("decompose", "in.png", "-b", "qwen").stderr
    monkeypatch.setenv("LAYERCTL_LORA", "b.safetensors:2")
    assert "captured" in cli("decompose", "in.png", "-b", "qwen").stderr
    assert "captured" in cli("decompose", "in.png", "-b", "qwen", "--lora", "a.safetensors").stderr
    assert seen == [
        (Lora(path=str(a), scale=0.5), Lora(path=str(b), scale=1.0)),
        (Lora(path=str(b), scale=2.0),),
        (Lora(path=str(a), scale=1.0),),
    ]


@pytest.mark.torch
@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"text_model.layers.0.q_proj": 1}, "its keys match no module of the Qwen-Image"),
        (
            {"transformer_blocks.0.attn.to_q": 1, "transformer_blocks.9.attn.to_q": 1},
            "1 of its 2 modules are not modules of the Qwen-Image-Layered transformer",
        ),
        (  # diffusers would filter these out and load nothing
            {"transformer_blocks.0.attn.to_q": 0},
            "keys match no module of the Qwen-Image-Layered transformer (e.g. transformer_bl"
            "ocks.0.attn.to_q) (its keys lack diffusers' `transformer.` prefix",
        ),
    ],
)
def test_a_lora_for_another_model_is_an_error(cli, tiny_qwen, image, tmp_path, keys, message):
    """diffusers only warns (or drops the keys): a LoRA that would not apply is fatal."""
    pytest.importorskip("peft")
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for module, prefixed in keys.items():
        key = f"transformer.{module}" if prefixed else module
        tensors[f"{key}.lora_A.weight"] = torch.ones(2, 64)
        tensors[f"{key}.lora_B.weight"] = torch.ones(64, 2)
    save_file(tensors, str(tmp_path / "other.safetensors"))
    result = cli(
        "decompose", image, "-o", tmp_path / "o.psd", "-b", "qwen", "--weights", tiny_qwen,
        "--lora", tmp_path / "other.safetensors", "--steps", "1",
    )  # fmt: skip
    assert result.code == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]  # above it: transformers' load progress
    assert last.startswith("error: --lora") and message in last, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o.psd").exists()
