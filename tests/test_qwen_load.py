"""Loading a Qwen-Image-Layered folder: the tiny fixture, sharded safetensors, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    assert pipe.scheduler.config.time_shift_type == "exponential"
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
