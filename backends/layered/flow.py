"""The Qwen-Image-Layered flow, one copy for every engine: schedule, packing, true CFG,
latent (de)normalisation, the Euler loop and the decode steps.

The loop knows nothing about the network (k-diffusion's contract): an engine supplies
:class:`Components` — text encoder, VAE encode/decode, transformer call and noise — and
:func:`decompose` runs the rest. The qwen backend (torch, ``qwen/components.py``) and the
onnx backend (ONNX Runtime, ``onnx/runtime.py``) are the two providers. Every function
takes numpy arrays or torch tensors alike; this module imports neither torch nor a
backend (torch only inside :func:`reference_noise` and the torch branches of the array
helpers, reached only with torch tensors). Numbers follow diffusers 0.42.1
``QwenImageLayeredPipeline`` + ``FlowMatchEulerDiscreteScheduler`` operation by operation,
so that the same seed gives the same layers.

Public API::

    decompose(components, image, prompt, request, callback=None) -> [RGBA uint8]
    resize(image, w, h) -> PIL image                         # the reference's Lanczos
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
    prompt_embeds, condition_tokens, decode_latents        # the once-per-image steps

    Model = Callable[[latents, timestep], tuple[cond, uncond | None]]

``model(latents, t)`` gets the packed noisy latents (B, N, 64) and ``t`` as a Python float
on the scheduler's 0..1000 scale; it appends the condition tokens itself, runs cond and
uncond (as the engine sees fit: the torch one runs two unpadded forwards, the ONNX one a
padded batch) and returns both velocities for the first N tokens (``uncond`` is None when
CFG is off). ``callback(i, latents)`` runs after every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from layerctl.errors import UsageError

if TYPE_CHECKING:
    from PIL import Image

    from layerctl.backends.base import DecomposeRequest

Array = Any  # numpy.ndarray or torch.Tensor
Model = Callable[[Array, float], tuple[Array, Array | None]]
Callback = Callable[[int, Array], None]

TRAINED_RESOLUTIONS = (640, 1024)
LATENT_CHANNELS = 16  # RGBA-VAE z_dim
VAE_SCALE = 8  # the VAE's spatial downsampling
PATCH = 2  # latents are packed 2×2 into tokens
BASE_TOKENS = 256 * 256 / 16 / 16  # the reference's base_seqlen for mu
# QwenImageLayeredPipeline.prompt_template_encode and its start index: the template's
# system prompt is dropped from the text encoder's output.
PROMPT_TEMPLATE = (
    "<|im_start|>system\n"
    "Describe the image by detailing the color, shape, size, texture, quantity, "
    "text, spatial relationships of the objects and background:<|im_end|>\n"
    "<|im_start|>user\n"
    "{}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
DROP_TOKENS = 34
MAX_TEXT_TOKENS = 512  # the reference's max_sequence_length


class Components(Protocol):
    """What an engine supplies to :func:`decompose`; arrays stay in the engine's own type
    (torch tensors on its device, or numpy) and dtype."""

    scheduler: SchedulerConfig
    latents_mean: Sequence[float]  # the VAE config's per-channel latent statistics
    latents_std: Sequence[float]

    def text_states(self, text: str) -> Array:
        """The text encoder's last hidden state on ``text`` (templated already): (1, L, D)."""
        ...

    def vae_encode(self, image: np.ndarray) -> Array:
        """(1, 4, 1, H, W) float32 in [-1, 1] -> the posterior's mode (1, 16, 1, h, w)."""
        ...

    def vae_decode(self, latents: Array) -> Array:
        """De-normalised latents (N, 16, 1, h, w) -> images (N, 4, 1, H, W) in [-1, 1]."""
        ...

    def noise(self, shape: Sequence[int], seed: int, dtype: Any) -> Array:
        """The initial noise (:func:`reference_noise` or its numpy twin), where the
        latents live; ``dtype`` is the prompt embeddings' (the working dtype)."""
        ...

    def model(self, cond_tokens: Array, embeds: list[Array], shapes: list) -> Model:
        """The transformer as ``model(latents, t)``: condition tokens appended, one
        prompt embedding per branch (cond, then uncond when CFG is on)."""
        ...


def decompose(
    parts: Components,
    image: np.ndarray,
    prompt: str,
    request: DecomposeRequest,
    callback: Callback | None = None,
) -> list[np.ndarray]:
    """``request.layers`` RGBA uint8 layers of ``image`` (RGBA uint8, already at the
    working size), bottom first: the reference pipeline's ``__call__`` after captioning."""
    height, width = image.shape[:2]
    embeds = [prompt_embeds(parts, prompt)]
    if uses_cfg(request.cfg):
        embeds.append(prompt_embeds(parts, request.negative_prompt))
    cond_tokens = _cast(condition_tokens(parts, image), embeds[0].dtype)
    lh, lw = latent_size(width, height)
    noise = parts.noise(noise_shape(request.layers, lh, lw), request.seed, embeds[0].dtype)
    sched = schedule(request.steps, shift_mu(cond_tokens.shape[1]), parts.scheduler)
    model = parts.model(cond_tokens, embeds, img_shapes(request.layers, lh, lw))
    latents = denoise(model, pack(noise), sched, request.cfg, request.cfg_normalize, callback)
    return decode_latents(parts, unpack(latents, request.layers + 1, lh, lw))


def prompt_embeds(parts: Components, prompt: str) -> Array:
    """``_get_qwen_prompt_embeds`` + ``encode_prompt`` for one prompt: the text encoder's
    last hidden state on the template, first 34 tokens dropped, (1, L, D)."""
    hidden = parts.text_states(PROMPT_TEMPLATE.format(prompt))
    return hidden[:, DROP_TOKENS:][:, :MAX_TEXT_TOKENS]


def condition_tokens(parts: Components, image: np.ndarray) -> Array:
    """``_encode_vae_image`` then packing: the posterior's mode, normalised by
    latents_mean/std, frames first, as (1, N, 64) tokens. ``image``: RGBA uint8 at the
    working size, scaled to [-1, 1] as ``VaeImageProcessor.preprocess`` does."""
    pixels = (image.astype(np.float32) / 255.0 * 2.0 - 1.0).transpose(2, 0, 1)
    z = parts.vae_encode(np.ascontiguousarray(pixels[None, :, None]))
    mean, std = _stats(parts, z)
    z = (z - mean) / std
    return pack(_permute(z, (0, 2, 1, 3, 4)))


def decode_latents(parts: Components, frames: Array) -> list[np.ndarray]:
    """The reference's decode: drop frame 0 (the composite), de-normalise, decode every
    layer in one VAE batch, then ``postprocess`` to RGBA uint8. ``frames`` is
    (1, F, 16, h, w) frames-first."""
    x = frames[:, 1:]
    b, f, c, h, w = x.shape
    x = x.reshape(b * f, c, 1, h, w)
    mean, std = _stats(parts, x)
    # The reference's own arithmetic (its latents_std is 1/std): bit-equal, not x·std.
    images = parts.vae_decode(x / (1.0 / std) + mean)[:, :, 0]
    images = _clip01(images * 0.5 + 0.5)
    array = _host_float32(_permute(images, (0, 2, 3, 1)))
    return list(np.round(array * 255).astype(np.uint8))


def resize(image: np.ndarray, width: int, height: int) -> Image.Image:
    """``VaeImageProcessor.resize``: Lanczos on the RGBA image (alpha included)."""
    from PIL import Image

    return Image.fromarray(image, "RGBA").resize((width, height), Image.Resampling.LANCZOS)


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
        values = {k: v for k, v in config.items() if k in known}
        # Qwen-Image-Layered's file says `"shift_terminal": false`: no stretch, as None.
        values["shift_terminal"] = values.get("shift_terminal") or None
        cfg = cls(**values)
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


def _stats(parts: Components, like: Array) -> tuple[Array, Array]:
    """latents_mean/std as (1, C, 1, 1, 1) arrays of ``like``'s type, dtype and device."""
    shape = (1, len(parts.latents_mean), 1, 1, 1)
    if isinstance(like, np.ndarray):
        mean = np.asarray(parts.latents_mean, np.float32).reshape(shape).astype(like.dtype)
        std = np.asarray(parts.latents_std, np.float32).reshape(shape).astype(like.dtype)
        return mean, std
    import torch

    mean = torch.tensor(parts.latents_mean).view(shape).to(like.device, like.dtype)
    std = torch.tensor(parts.latents_std).view(shape).to(like.device, like.dtype)
    return mean, std


def _clip01(x: Array) -> Array:
    return np.clip(x, 0.0, 1.0) if isinstance(x, np.ndarray) else x.clamp(0, 1)


def _host_float32(x: Array) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float32, copy=False)
    return x.cpu().float().numpy()


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
