"""Flow-matching sampling for Qwen-Image-Layered, shared by the torch and ONNX paths.

The loop knows nothing about the network (k-diffusion's contract, see shared/STYLE.md):
the torch transformer and the ONNX session are both adapters to one callable. Every
function takes numpy arrays or torch tensors alike; torch is imported only inside
:func:`reference_noise`. Numbers follow diffusers 0.42.1
``QwenImageLayeredPipeline`` + ``FlowMatchEulerDiscreteScheduler`` operation by operation,
so that the same seed gives the same layers.

Public API::

    working_size(width, height, resolution=640) -> (w, h)    # the model's canvas, /32
    latent_size(w, h) -> (lh, lw)                            # VAE grid: h/8, w/8
    noise_shape(layers, lh, lw, batch=1) -> (B, layers+1, 16, lh, lw)
    reference_noise(shape, seed, dtype="float32") -> torch.Tensor   # CPU torch.Generator
    pack(latents)  (B, F, C, lh, lw) -> (B, F*lh/2*lw/2, 4C)        # 2×2 patches
    unpack(tokens, frames, lh, lw) -> (B, F, C, lh, lw)
    img_shapes(layers, lh, lw) -> [(1, lh/2, lw/2)] * (layers+2)     # Layer3D RoPE
    shift_mu(cond_tokens) -> float                          # dynamic shift from image size
    SchedulerConfig.from_dict(scheduler_config.json dict)
    schedule(steps, mu, config) -> Schedule(sigmas [steps+1], timesteps [steps])  # float32
    uses_cfg(scale) -> bool                                 # true CFG only when scale > 1
    guide(cond, uncond, scale, normalize) -> velocity       # true CFG (+ cfg_normalize)
    step_sizes(schedule, like) -> σ_{i+1} − σ_i, float32, on like's device
    euler_step(latents, velocity, dt) -> latents
    denoise(model, latents, schedule, cfg, cfg_normalize, callback=None) -> latents

    Model = Callable[[latents, timestep], tuple[cond, uncond | None]]

``model(latents, t)`` gets the packed noisy latents (B, N, 64) and ``t`` as a Python float
on the scheduler's 0..1000 scale; it appends the condition tokens itself, runs cond and
uncond in one batched forward and returns both velocities for the first N tokens
(``uncond`` is None when CFG is off). ``callback(i, latents)`` runs after every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from layerctl.errors import UsageError

Array = Any  # numpy.ndarray or torch.Tensor
Model = Callable[[Array, float], tuple[Array, Array | None]]
Callback = Callable[[int, Array], None]

TRAINED_RESOLUTIONS = (640, 1024)
LATENT_CHANNELS = 16  # RGBA-VAE z_dim
VAE_SCALE = 8  # the VAE's spatial downsampling
PATCH = 2  # latents are packed 2×2 into tokens
BASE_TOKENS = 256 * 256 / 16 / 16  # the reference's base_seqlen for mu


def working_size(width: int, height: int, resolution: int = 640) -> tuple[int, int]:
    """The reference's canvas: area ≈ resolution², input aspect, sides rounded to 32.

    Same arithmetic as diffusers' ``calculate_dimensions`` (Python's round-half-even
    included). Resolutions other than 640/1024 must be multiples of 32.
    """
    if resolution <= 0 or resolution % 32:
        raise UsageError(
            f"--resolution must be a positive multiple of 32, not {resolution}",
            hint="the model was trained on 640 and 1024",
        )
    ratio = width / height
    w = math.sqrt(resolution * resolution * ratio)
    h = w / ratio
    w, h = round(w / 32) * 32, round(h / 32) * 32
    multiple = VAE_SCALE * PATCH
    return max(w // multiple * multiple, 32), max(h // multiple * multiple, 32)


def latent_size(width: int, height: int) -> tuple[int, int]:
    """(lh, lw): the VAE latent grid of a working canvas, even so it packs into 2×2."""
    return 2 * (height // (VAE_SCALE * PATCH)), 2 * (width // (VAE_SCALE * PATCH))


def noise_shape(layers: int, lh: int, lw: int, batch: int = 1) -> tuple[int, ...]:
    """Frame 0 is the generated composite, frames 1..layers the layers."""
    return (batch, layers + 1, LATENT_CHANNELS, lh, lw)


def reference_noise(shape: Sequence[int], seed: int, dtype: str = "float32") -> Array:
    """The reference's initial noise: ``torch.randn`` from a CPU generator seeded ``seed``.

    Generated on the CPU in the working dtype (as diffusers' ``randn_tensor`` does), so a
    seed gives the same noise on every device. The ONNX path swaps this function for a
    numpy twin of torch's CPU generator.
    """
    import torch

    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, dtype=getattr(torch, dtype))


def pack(latents: Array) -> Array:
    """(B, F, C, lh, lw) -> (B, F·lh/2·lw/2, 4C): each 2×2 latent patch becomes one token."""
    b, f, c, h, w = latents.shape
    x = latents.reshape(b, f, c, h // 2, 2, w // 2, 2)
    x = _permute(x, (0, 1, 3, 5, 2, 4, 6))
    return x.reshape(b, f * (h // 2) * (w // 2), c * 4)


def unpack(tokens: Array, frames: int, lh: int, lw: int) -> Array:
    """Inverse of :func:`pack`: (B, N, 4C) -> (B, frames, C, lh, lw)."""
    b, _, c4 = tokens.shape
    x = tokens.reshape(b, frames, lh // 2, lw // 2, c4 // 4, 2, 2)
    x = _permute(x, (0, 1, 4, 2, 5, 3, 6))
    return x.reshape(b, frames, c4 // 4, lh, lw)


def img_shapes(layers: int, lh: int, lw: int) -> list[tuple[int, int, int]]:
    """Layer3D RoPE frames: layers + 1 generated frames, then the condition image (index -1)."""
    return [(1, lh // 2, lw // 2)] * (layers + 2)


def shift_mu(cond_tokens: int) -> float:
    """The reference's dynamic-shift exponent: sqrt(condition tokens / 256)."""
    return (cond_tokens / BASE_TOKENS) ** 0.5


@dataclass(frozen=True)
class SchedulerConfig:
    """The ``FlowMatchEulerDiscreteScheduler`` settings that shape the schedule."""

    num_train_timesteps: int = 1000
    shift: float = 1.0
    use_dynamic_shifting: bool = False
    time_shift_type: str = "exponential"
    shift_terminal: float | None = None
    invert_sigmas: bool = False
    use_karras_sigmas: bool = False
    use_exponential_sigmas: bool = False
    use_beta_sigmas: bool = False
    stochastic_sampling: bool = False

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> SchedulerConfig:
        """From a checkpoint's scheduler_config.json; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in config.items() if k in known})
        unsupported = [
            name
            for name in (
                "invert_sigmas",
                "use_karras_sigmas",
                "use_exponential_sigmas",
                "use_beta_sigmas",
                "stochastic_sampling",
            )
            if getattr(cfg, name)
        ]
        if unsupported or cfg.time_shift_type not in {"exponential", "linear"}:
            raise UsageError(
                f"unsupported scheduler settings: {', '.join(unsupported) or cfg.time_shift_type}",
                hint="layerctl samples with the plain flow-matching Euler schedule",
            )
        return cfg


@dataclass(frozen=True)
class Schedule:
    sigmas: np.ndarray  # float32, steps + 1 values, the last one 0
    timesteps: np.ndarray  # float32, sigmas[:-1] * num_train_timesteps

    def __len__(self) -> int:
        return len(self.timesteps)


def schedule(steps: int, mu: float, config: SchedulerConfig) -> Schedule:
    """Sigmas and timesteps of ``set_timesteps(sigmas=linspace(1, 0, steps+1)[:-1], mu=mu)``.

    The same numpy float32 operations as diffusers' FlowMatchEulerDiscreteScheduler, so
    the values are bit-identical: time shift (exponential or linear, SD3 paper eq. 23),
    then the LTX-Video stretch so the schedule ends at ``shift_terminal``.
    """
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, not {steps}")
    sigmas = np.linspace(1.0, 0, steps + 1)[:-1].astype(np.float32)
    if config.use_dynamic_shifting:
        if config.time_shift_type == "exponential":
            sigmas = math.exp(mu) / (math.exp(mu) + (1 / sigmas - 1) ** 1.0)
        else:
            sigmas = mu / (mu + (1 / sigmas - 1) ** 1.0)
    else:
        sigmas = config.shift * sigmas / (1 + (config.shift - 1) * sigmas)
    if config.shift_terminal and steps > 1:  # one step: diffusers divides 0 by 0 here
        one_minus_z = 1 - sigmas
        scale = one_minus_z[-1] / (1 - config.shift_terminal)
        sigmas = 1 - (one_minus_z / scale)
    sigmas = sigmas.astype(np.float32)
    timesteps = (sigmas * config.num_train_timesteps).astype(np.float32)
    return Schedule(np.append(sigmas, np.float32(0)).astype(np.float32), timesteps)


def uses_cfg(scale: float) -> bool:
    """The reference runs true CFG only when the scale is above 1 (a negative prompt is
    always given here: " " by default)."""
    return scale > 1


def guide(cond: Array, uncond: Array | None, scale: float, normalize: bool) -> Array:
    """True CFG ``uncond + scale·(cond − uncond)``; with ``normalize`` rescaled per token
    to the conditional prediction's norm over its 64 packed channels (Qwen-Image-Layered)."""
    if uncond is None:
        return cond
    comb = uncond + scale * (cond - uncond)
    if not normalize:
        return comb
    return comb * (_norm(cond) / _norm(comb))


def step_sizes(sched: Schedule, like: Array) -> Array:
    """σ_{i+1} − σ_i in float32, on the latents' device, made once per image.

    Kept as float32 array entries, not Python floats: with bfloat16 latents on CUDA the
    reference multiplies by a 0-d float32 CUDA tensor, which PyTorch rounds to bfloat16
    first (a Python float would not be); on the CPU such a 0-d tensor stays float32.
    Indexing this array gives exactly that operand on either device.
    """
    steps = np.diff(sched.sigmas).astype(np.float32)
    if isinstance(like, np.ndarray):
        return steps
    import torch

    return torch.from_numpy(steps).to(like.device)


def euler_step(latents: Array, velocity: Array, dt: Array) -> Array:
    """x ← x + dt·v with ``dt`` an entry of :func:`step_sizes`: accumulated in float32 and
    stored in the velocity's dtype, as FlowMatchEulerDiscreteScheduler.step does."""
    return _cast(_cast(latents, "float32") + _cast(dt * velocity, velocity.dtype), velocity.dtype)


def denoise(
    model: Model,
    latents: Array,
    sched: Schedule,
    cfg: float,
    cfg_normalize: bool,
    callback: Callback | None = None,
) -> Array:
    """Integrate the flow from noise (σ=1) to data (σ=0) with Euler steps and true CFG.

    No value goes back to the host inside the loop: timesteps are Python floats from
    the precomputed schedule and the step sizes sit on the device already.
    """
    steps = step_sizes(sched, latents)
    for i, t in enumerate(float(t) for t in sched.timesteps):
        cond, uncond = model(latents, t)
        velocity = guide(cond, uncond if uses_cfg(cfg) else None, cfg, cfg_normalize)
        latents = euler_step(latents, velocity, steps[i])
        if callback is not None:
            callback(i, latents)
    return latents


def _permute(x: Array, axes: tuple[int, ...]) -> Array:
    return x.transpose(axes) if isinstance(x, np.ndarray) else x.permute(axes)


def _norm(x: Array) -> Array:
    if isinstance(x, np.ndarray):
        return np.linalg.norm(x, axis=-1, keepdims=True).astype(x.dtype)
    import torch

    return torch.norm(x, dim=-1, keepdim=True)


def _cast(x: Array, dtype: Any) -> Array:
    if isinstance(x, np.ndarray):
        return x.astype(dtype, copy=False)
    import torch

    return x.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
