"""The shared sampling maths against diffusers' scheduler and pipeline helpers."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from tiny_qwen import SCHEDULER_CONFIG

from layerctl.backends.layered import flow
from layerctl.errors import UsageError

# The published scheduler config (tests/tiny_qwen.py holds the one copy).
QWEN_LAYERED_SCHEDULER = {k: v for k, v in SCHEDULER_CONFIG.items() if k != "_class_name"}


@pytest.mark.parametrize("steps", [2, 7, 50])
@pytest.mark.parametrize("cond_tokens", [400, 1600, 4096])
@pytest.mark.parametrize(
    ("shift_type", "terminal"), [("linear", False), ("exponential", 0.02), ("linear", None)]
)
def test_schedule_is_bit_identical_to_diffusers(
    steps: int, cond_tokens: int, shift_type: str, terminal: float | None
):
    """Qwen-Image-Layered's released values (linear, no stretch), Qwen-Image's."""
    diffusers = pytest.importorskip("diffusers")
    config = {**QWEN_LAYERED_SCHEDULER, "time_shift_type": shift_type, "shift_terminal": terminal}
    reference = diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)
    mu = flow.shift_mu(cond_tokens)
    reference.set_timesteps(sigmas=np.linspace(1.0, 0, steps + 1)[:-1], mu=mu)
    ours = flow.schedule(steps, mu, flow.SchedulerConfig.from_dict(config))
    assert ours.sigmas.dtype == ours.timesteps.dtype == np.float32
    np.testing.assert_array_equal(ours.sigmas, reference.sigmas.numpy())
    np.testing.assert_array_equal(ours.timesteps, reference.timesteps.numpy())


def test_one_step_schedule_is_finite():
    """diffusers divides 0 by 0 here (NaN sigmas); one step from σ=1 to 0 is meant."""
    config = flow.SchedulerConfig.from_dict(QWEN_LAYERED_SCHEDULER)
    ours = flow.schedule(1, 1.0, config)
    np.testing.assert_array_equal(ours.sigmas, [1.0, 0.0])
    np.testing.assert_array_equal(ours.timesteps, [1000.0])


def test_static_shift_schedule_matches_diffusers():
    diffusers = pytest.importorskip("diffusers")
    config = {"shift": 3.0, "use_dynamic_shifting": False}
    reference = diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)
    reference.set_timesteps(sigmas=np.linspace(1.0, 0, 9)[:-1])
    ours = flow.schedule(8, 0.0, flow.SchedulerConfig.from_dict(config))
    np.testing.assert_array_equal(ours.sigmas, reference.sigmas.numpy())


def test_unsupported_scheduler_settings_are_refused():
    with pytest.raises(UsageError, match="use_karras_sigmas"):
        flow.SchedulerConfig.from_dict({"use_karras_sigmas": True})


@pytest.mark.parametrize(
    ("size", "resolution", "expected"),
    [
        ((640, 640), 640, (640, 640)),
        ((1200, 800), 640, (768, 512)),
        ((300, 500), 1024, (800, 1312)),
    ],
)
def test_working_size_matches_reference(size, resolution, expected):
    assert flow.working_size(*size, resolution) == expected
    pytest.importorskip("diffusers")
    from diffusers.pipelines.qwenimage.pipeline_qwenimage_layered import calculate_dimensions

    assert calculate_dimensions(resolution**2, size[0] / size[1]) == expected


def test_working_size_refuses_resolutions_off_the_grid():
    with pytest.raises(UsageError, match="multiple of 32"):
        flow.working_size(100, 100, 500)


@pytest.mark.parametrize("layers", [1, 3])
def test_pack_and_unpack_match_the_pipeline_for_numpy_and_torch(layers: int):
    torch = pytest.importorskip("torch")
    from diffusers import QwenImageLayeredPipeline as P

    lh, lw = 6, 10
    noise = flow.reference_noise(flow.noise_shape(layers, lh, lw), seed=3)
    reference = P._pack_latents(noise, 1, 16, lh, lw, layers + 1)
    torch.testing.assert_close(flow.pack(noise), reference, rtol=0, atol=0)
    np.testing.assert_array_equal(flow.pack(noise.numpy()), reference.numpy())
    back = flow.unpack(reference, layers + 1, lh, lw)
    expected = P._unpack_latents(reference, lh * 8, lw * 8, layers, 8).permute(0, 2, 1, 3, 4)
    torch.testing.assert_close(back, expected, rtol=0, atol=0)
    np.testing.assert_array_equal(flow.unpack(reference.numpy(), layers + 1, lh, lw), noise)


def test_reference_noise_is_the_pipelines_noise():
    torch = pytest.importorskip("torch")
    from diffusers.utils.torch_utils import randn_tensor

    shape = flow.noise_shape(2, 4, 6)
    expected = randn_tensor(shape, generator=torch.Generator("cpu").manual_seed(11))
    torch.testing.assert_close(flow.reference_noise(shape, 11), expected, rtol=0, atol=0)


def _reference_guidance(cond, uncond, scale, normalize):
    """The lines of QwenImageLayeredPipeline.__call__ that combine the two predictions."""
    import torch

    comb = uncond + scale * (cond - uncond)
    if normalize:
        return comb * (
            torch.norm(cond, dim=-1, keepdim=True) / torch.norm(comb, dim=-1, keepdim=True)
        )
    return comb


@pytest.mark.parametrize("normalize", [False, True])
def test_guidance_matches_the_pipeline(normalize: bool):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 1, 12, 64, generator=g)
    expected = _reference_guidance(cond, uncond, 4.0, normalize)
    torch.testing.assert_close(flow.guide(cond, uncond, 4.0, normalize), expected, rtol=0, atol=0)
    ours_np = flow.guide(cond.numpy(), uncond.numpy(), 4.0, normalize)
    np.testing.assert_allclose(ours_np, expected.numpy(), rtol=1e-6, atol=1e-6)
    if normalize:  # the rescaled prediction has the conditional norm, token by token
        np.testing.assert_allclose(
            np.linalg.norm(ours_np, axis=-1), np.linalg.norm(cond.numpy(), axis=-1), rtol=1e-5
        )


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_denoise_equals_the_scheduler_loop_with_cfg(dtype: str):
    """The whole loop with a stand-in model, against diffusers' scheduler.step."""
    torch = pytest.importorskip("torch")
    diffusers = pytest.importorskip("diffusers")
    config = QWEN_LAYERED_SCHEDULER
    mu, steps, scale = flow.shift_mu(60), 4, 4.0
    weights = torch.randn(64, 64, generator=torch.Generator().manual_seed(1)) / 8

    def model(x, t):
        base = torch.as_tensor(x) @ torch.as_tensor(weights, dtype=torch.as_tensor(x).dtype)
        cond, uncond = torch.tanh(base) * (t / 1000), torch.sin(base)
        if isinstance(x, np.ndarray):
            return cond.numpy(), uncond.numpy()
        return cond, uncond

    start = flow.pack(flow.reference_noise(flow.noise_shape(2, 4, 4), 5, dtype))
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0, steps + 1)[:-1], mu=mu)
    scheduler.set_begin_index(0)
    expected = start
    for t in scheduler.timesteps:
        cond, uncond = model(expected, float(t))
        velocity = _reference_guidance(cond, uncond, scale, True)
        expected = scheduler.step(velocity, t, expected, return_dict=False)[0]

    sched = flow.schedule(steps, mu, flow.SchedulerConfig.from_dict(config))
    seen: list[int] = []
    ours = flow.denoise(model, start, sched, scale, True, callback=lambda i, _: seen.append(i))
    assert ours.dtype == expected.dtype == getattr(torch, dtype)
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert seen == list(range(steps))
    if dtype != "float32":
        return
    ours_np = flow.denoise(model, start.numpy(), sched, scale, True)
    np.testing.assert_allclose(ours_np, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_without_cfg_the_unconditional_prediction_is_ignored():
    cond = np.ones((1, 2, 64), np.float32)
    assert flow.guide(cond, None, 4.0, True) is cond
    sched = flow.schedule(2, 0.5, flow.SchedulerConfig())
    out = flow.denoise(lambda x, t: (cond, cond * 100), np.zeros_like(cond), sched, 1.0, True)
    np.testing.assert_allclose(out, -np.ones_like(cond))  # Σdt = −1 over a schedule to σ=0


class NumpyParts:
    """Stand-in components in numpy: a VAE that is a fixed linear map per 8×8 block (and
    its pseudo-inverse), a text encoder that hashes characters, a transformer that pulls
    the latents towards the condition tokens. Records what the flow asked for."""

    scheduler = flow.SchedulerConfig(use_dynamic_shifting=True, shift_terminal=0.02)
    latents_mean = tuple(0.1 * i for i in range(16))
    latents_std = tuple(1.0 + 0.05 * i for i in range(16))

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.decoded: list[tuple[int, ...]] = []

    def text_states(self, text: str) -> np.ndarray:
        self.texts.append(text)
        codes = np.frombuffer(text.encode(), np.uint8)[:60].astype(np.float32)
        return np.resize(codes / 255, (1, flow.DROP_TOKENS + 4, 8)).astype(np.float32)

    def vae_encode(self, image: np.ndarray) -> np.ndarray:
        b, c, f, h, w = image.shape
        blocks = image.reshape(b, c, f, h // 8, 8, w // 8, 8).mean(axis=(4, 6))
        return np.concatenate([blocks] * 4, axis=1)  # 16 latent channels

    def vae_decode(self, latents: np.ndarray) -> np.ndarray:
        self.decoded.append(latents.shape)
        x = np.tanh(latents[:, :4])
        return x.repeat(8, axis=3).repeat(8, axis=4)

    def noise(self, shape, seed: int, dtype) -> np.ndarray:
        from layerctl.noise import torch_randn

        return torch_randn(shape, seed)

    def model(self, cond_tokens, embeds, shapes):
        frames = len(shapes) - 1
        target = np.concatenate([cond_tokens] * frames, axis=1)

        def model(latents, t):
            return latents - target, (latents if len(embeds) == 2 else None)

        return model


def test_the_flow_runs_on_numpy_components_without_torch():
    """The whole pipeline after captioning against the component contract alone: text
    templated and trimmed, one decode batch of every layer but the composite, RGBA uint8
    at the working size, the same layers for the same seed."""
    image = np.zeros((64, 96, 4), np.uint8)
    image[..., 0] = np.arange(96, dtype=np.uint8)[None] * 2
    image[..., 3] = 255
    request = SimpleNamespace(
        layers=3, seed=5, steps=4, cfg=4.0, cfg_normalize=True, negative_prompt=" "
    )
    parts = NumpyParts()
    layers = flow.decompose(parts, image, "a red card", request)
    assert parts.texts == [flow.PROMPT_TEMPLATE.format(p) for p in ("a red card", " ")]
    assert parts.decoded == [(3, 16, 1, 8, 12)]
    assert len(layers) == 3
    assert all(layer.shape == (64, 96, 4) and layer.dtype == np.uint8 for layer in layers)
    again = flow.decompose(NumpyParts(), image, "a red card", request)
    assert all(np.array_equal(a, b) for a, b in zip(layers, again, strict=True))
    reseeded = SimpleNamespace(**{**vars(request), "seed": 6})
    other = flow.decompose(NumpyParts(), image, "a red card", reseeded)
    assert not all(np.array_equal(a, b) for a, b in zip(layers, other, strict=True))


def test_sampling_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, layerctl.backends.layered.flow, layerctl.backends.onnx.runtime; "
        "print(sorted({'torch', 'layerctl.backends.qwen'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == "[]\n", done.stderr
