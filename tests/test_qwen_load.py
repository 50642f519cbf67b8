"""Loading a Qwen-Image-Layered folder: the tiny fixture, sharded safetensors, refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from layerctl.errors import MissingWeights

pytest.importorskip("diffusers")


def test_tiny_checkpoint_has_the_hub_layout(tiny_qwen: Path) -> None:
    index = json.loads((tiny_qwen / "model_index.json").read_text())
    assert index["_class_name"] == "QwenImageLayeredPipeline"
    for component in ("transformer", "text_encoder"):
        shard_index = next((tiny_qwen / component).glob("*.safetensors.index.json"))
        shards = set(json.loads(shard_index.read_text())["weight_map"].values())
        assert len(shards) > 1, f"{component} is not sharded"
        assert all((tiny_qwen / component / s).is_file() for s in shards)


@pytest.mark.slow
def test_reference_pipeline_runs_on_the_tiny_checkpoint(tiny_qwen: Path) -> None:
    """diffusers' own pipeline loads the folder and decomposes once (processor: unused here)."""
    import torch
    from diffusers import QwenImageLayeredPipeline
    from PIL import Image

    pipe = QwenImageLayeredPipeline.from_pretrained(tiny_qwen, processor=None)
    assert pipe.transformer.config.use_layer3d_rope
    assert pipe.vae.config.input_channels == 4
    assert pipe.scheduler.config.time_shift_type == "linear"  # Qwen-Image-Layered's
    out = pipe(
        image=Image.new("RGBA", (96, 64), (200, 40, 40, 255)),
        prompt="a red disc",
        num_inference_steps=2,
        layers=2,
        generator=torch.Generator().manual_seed(0),
    )
    layers = out.images[0]
    assert len(layers) == 2
    assert all(layer.mode == "RGBA" and layer.size == (768, 512) for layer in layers)


def _copy(tiny_qwen: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen, root)
    return root


def test_loads_every_component_from_sharded_safetensors(tiny_qwen: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from layerctl.backends.layered.load import load

    parts = load(tiny_qwen, torch.float32)
    assert type(parts.transformer).__name__ == "QwenImageTransformer2DModel"
    assert type(parts.vae).__name__ == "AutoencoderKLQwenImage"
    assert type(parts.text_encoder).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert parts.tokenizer.convert_tokens_to_ids("<|image_pad|>") == (
        parts.text_encoder.config.image_token_id
    )
    assert parts.image_processor.patch_size == 14
    assert parts.scheduler_config["shift_terminal"] is False  # as released
    # every shard's tensors arrived in the model, bit for bit (transformers renames the
    # text encoder's keys on load, so match those by value)
    for name, model in (("transformer", parts.transformer), ("text_encoder", parts.text_encoder)):
        state = model.state_dict()
        for shard in sorted((tiny_qwen / name).glob("*-of-*.safetensors")):
            for key, tensor in load_file(shard).items():
                loaded = [state[key]] if key in state else state.values()
                assert any(t.shape == tensor.shape and torch.equal(t, tensor) for t in loaded), (
                    f"{name}: {key} from {shard.name}"
                )


def test_loads_only_the_parts_asked_for_in_the_dtype_asked_for(tiny_qwen: Path) -> None:
    import torch

    from layerctl.backends.layered.load import load

    parts = load(tiny_qwen, torch.bfloat16, parts=["vae", "tokenizer"])
    assert parts.vae.dtype == torch.bfloat16
    assert parts.transformer is None and parts.text_encoder is None
    assert parts.tokenizer is not None


def test_missing_component_names_it_and_the_fetch_command(tiny_qwen: Path, tmp_path) -> None:
    import torch

    from layerctl.backends.layered.load import load

    root = _copy(tiny_qwen, tmp_path)
    shutil.rmtree(root / "vae")
    with pytest.raises(MissingWeights) as caught:
        load(root, torch.float32)
    message = str(caught.value)
    assert "vae/" in message and "layerctl weights pull qwen-image-layered" in message
    assert "\n" not in message


def test_missing_component_via_the_cli_is_one_line(cli, tiny_qwen: Path, tmp_path) -> None:
    from PIL import Image

    from layerctl.backends import base

    if "qwen" not in base.registered():
        pytest.skip("the qwen backend is not registered in this install")
    root = _copy(tiny_qwen, tmp_path)
    for shard in (root / "transformer").glob("*-of-*.safetensors"):
        shard.unlink()
    image = tmp_path / "in.png"
    Image.new("RGBA", (32, 32), (200, 40, 40, 255)).save(image)
    result = cli(
        "decompose", image, "--backend", "qwen", "--weights", root, "-o", tmp_path / "out.psd"
    )
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "transformer/" in result.stderr
    assert "layerctl weights pull qwen-image-layered" in result.stderr


def test_pickle_only_folder_is_refused_without_unpickling(
    tiny_qwen: Path, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from safetensors.torch import load_file

    from layerctl.backends.layered.load import load

    root = _copy(tiny_qwen, tmp_path)
    vae = root / "vae" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(vae), vae.with_suffix(".bin"))
    vae.unlink()

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on a pickle checkpoint")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(MissingWeights, match=r"refusing to load .*vae/: pickle weights only"):
        load(root, torch.float32)


def test_pre_v5_rope_keys_load_without_warnings(tiny_qwen: Path, tmp_path) -> None:
    """A text encoder config in the pre-v5 layout (RoPE keys as ``rope_scaling`` in
    text_config and copied at the top level) gives the same text RoPE without the two
    warnings transformers 5 prints for the top-level copies on every load."""
    import logging

    from transformers import Qwen2_5_VLConfig

    from layerctl.backends.layered.load import text_encoder_config

    raw = json.loads((tiny_qwen / "text_encoder" / "config.json").read_text())
    rope = raw["text_config"].pop("rope_parameters")
    legacy = {"mrope_section": rope["mrope_section"], "rope_type": "default", "type": "default"}
    raw["text_config"].update(rope_scaling=dict(legacy), rope_theta=rope["rope_theta"])
    raw.update(rope_scaling=dict(legacy), rope_theta=rope["rope_theta"])
    (tmp_path / "config.json").write_text(json.dumps(raw))
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("transformers")  # the library's root: it does not propagate
    logger.addHandler(handler)
    try:
        ours = text_encoder_config(tmp_path)
        assert not [m for m in messages if "rope" in m]
        theirs = Qwen2_5_VLConfig.from_pretrained(tmp_path)
        assert any("key=rope_scaling" in m for m in messages)  # the warning avoided
    finally:
        logger.removeHandler(handler)
    assert ours.text_config.rope_parameters == theirs.text_config.rope_parameters
