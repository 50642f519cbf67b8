"""Group offloading, run for real on the CPU: what it keeps resident matches memory.py's
plan, and it leaves the decomposition unchanged.

diffusers' hooks move each group to the "device" before it runs and back after; here
both are the CPU, so nothing moves, but the same hooks run in the same order.
bench/offload_plan.py's tracker on ``ModuleGroup.onload_`` / ``offload_`` adds up the
bytes of the groups onloaded at once: what a GPU would hold of the weights (less the
one block prefetched on a side stream there, which the plan counts).
"""

from __future__ import annotations

from collections.abc import Iterator

import bench_scripts
import numpy as np
import pytest

from layerctl.backends.model_options import QwenRequest, QwenSettings
from layerctl.backends.qwen import memory

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytestmark = [pytest.mark.slow, pytest.mark.torch]

REQUEST = QwenRequest(layers=2, seed=3, prompt=None, steps=2, resolution=64)


@pytest.fixture
def resident() -> Iterator[list[int]]:
    """``[peak]``: the most weight bytes that group offloading held onloaded at once."""
    with bench_scripts.load("offload_plan").resident() as peak:
        yield peak


def _backend(tiny_qwen):
    from layerctl.backends.qwen.backend import QwenBackend

    return QwenBackend(QwenSettings(weights=str(tiny_qwen), device="cpu"))


def _image() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.zeros((48, 64, 4), np.uint8)
    image[..., :3] = rng.integers(0, 256, (48, 64, 3))
    image[..., 3] = 255
    return image


@pytest.mark.parametrize("mode", ["group", "sequential"])
def test_streaming_gives_the_same_layers(tiny_qwen, mode: str) -> None:
    """Caption (generate), prompt embeddings, sampling and decoding through the hooks."""
    image = _backend(tiny_qwen).decompose(_image(), REQUEST)
    streamed = _backend(tiny_qwen)
    for name in memory.STREAMED:
        memory.stream(getattr(streamed.parts, name), mode, "cpu")
    assert all(
        np.array_equal(a, b)
        for a, b in zip(image, streamed.decompose(_image(), REQUEST), strict=True)
    )


@pytest.mark.parametrize("name", memory.STREAMED)
@pytest.mark.parametrize("mode", ["group", "sequential"])
def test_streaming_keeps_what_the_plan_says(tiny_qwen, resident, name: str, mode: str) -> None:
    """Without a side stream (CPU) one group is onloaded at a time: the plan less the
    prefetched one. Before ``block_modules``, diffusers onloaded all of Qwen2.5-VL at
    once (its blocks are not direct children of the model)."""
    backend = _backend(tiny_qwen)
    module = getattr(backend.parts, name)
    sizes = memory.tensor_bytes(module)
    total = sum(sizes.values())
    plan = memory.Streaming.of(sizes)
    memory.stream(module, mode, "cpu")
    backend.decompose(_image(), REQUEST)
    one_at_a_time = plan.outside + plan.block if mode == "group" else plan.leaf
    assert 0 < resident[0] <= one_at_a_time < total


def test_published_sizes_are_the_published_models_structure() -> None:
    """Footprint.published() equals the Streaming rule applied to the released configs
    (bench/gpu_fullscale.py's), built on the meta device (no memory): Qwen2.5-VL-7B and
    the 60-block transformer."""
    from diffusers import QwenImageTransformer2DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    bench = bench_scripts.load("gpu_fullscale")
    with torch.device("meta"):
        text_encoder = Qwen2_5_VLForConditionalGeneration(
            Qwen2_5_VLConfig(**bench.FULL_TEXT_ENCODER)
        ).to(torch.bfloat16)
        transformer = QwenImageTransformer2DModel(**bench.FULL_TRANSFORMER).to(torch.bfloat16)
    built = memory.Footprint.of(text_encoder=text_encoder, transformer=transformer)
    published = memory.Footprint.published()
    assert (built.text_encoder, built.transformer) == (
        published.text_encoder,
        published.transformer,
    )
    assert (built.group, built.sequential) == (published.group, published.sequential)
    assert memory.block_modules(memory.tensor_bytes(transformer)) == []
    assert {"model", "language_model", "visual"} <= set(
        memory.block_modules(memory.tensor_bytes(text_encoder))
    )


def test_streaming_rule_on_names() -> None:
    sizes = {
        "embed.weight": 100,
        "model.layers.0.mlp.weight": 10,
        "model.layers.0.attn.weight": 5,
        "model.layers.1.mlp.weight": 12,
        "head.weight": 40,
    }
    plan = memory.Streaming.of(sizes)
    assert (plan.outside, plan.block, plan.leaf) == (140, 15, 100)
    assert (plan.group, plan.sequential) == (170, 200)
    assert memory.block_modules(sizes) == ["model"]


def test_place_auto_on_a_full_host_still_offloads(monkeypatch) -> None:
    """Once loaded, the weights are on the host already: little free host memory must
    not rule out offloading (a 24 GB card in a 64 GB machine)."""
    GB = 10**9
    monkeypatch.setattr(memory, "device_memory", lambda device: (23 * GB, 24 * GB))
    monkeypatch.setattr(memory, "host_available", lambda: 4 * GB)
    choice = memory.resolve("auto", "cuda", memory.Footprint.published(), 640, 4)
    assert (choice.mode, choice.vae_tiling) == ("group", False)


def test_tiling_is_decided_per_request() -> None:
    """A 16 GiB card in group mode: 640 decodes whole (exact), 1024 needs tiles."""
    card = 16 * 2**30
    memory_now = (int(card * 0.95), card)
    fp = memory.Footprint.published()
    assert not memory.needs_tiling("group", fp, 640, 4, memory_now)
    assert memory.needs_tiling("group", fp, 1024, 4, memory_now)
    assert not memory.needs_tiling("group", fp, 1024, 4, None)  # not CUDA: never


def test_auto_tiles_the_decode_only_for_requests_that_need_it(tiny_qwen, monkeypatch) -> None:
    from layerctl.backends.qwen.backend import QwenBackend

    qwen = QwenBackend(QwenSettings(weights=str(tiny_qwen), device="cpu", offload="auto"))
    vae = qwen.parts.vae
    GB = 10**9
    for free, tiled in ((8 * GB, False), (GB // 10, True), (8 * GB, False)):
        now = (free, 10 * GB)
        monkeypatch.setattr(memory, "device_memory", lambda device, ours=False, now=now: now)
        qwen.decompose(_image(), REQUEST)
        assert vae.use_tiling is tiled
    explicit = QwenBackend(
        QwenSettings(weights=str(tiny_qwen), device="cpu", offload="auto", vae_tiling=True)
    )
    explicit.decompose(_image(), REQUEST)
    assert explicit.parts.vae.use_tiling  # --vae-tiling is kept whatever the memory
