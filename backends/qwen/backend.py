"""``--backend qwen``: Qwen-Image-Layered in PyTorch with our own sampling loop.

The model classes come from diffusers/transformers; everything around them (working size,
captions, prompt embeddings, condition latents, noise, schedule, true CFG with cond and
uncond in ONE batched forward, Euler steps, decoding) is ours and equals diffusers'
``QwenImageLayeredPipeline`` on the same checkpoint, seed and settings
(tests/test_qwen_parity.py). Nothing heavy is imported until the class is instantiated.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any, ClassVar

import numpy as np
from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.backends.qwen import caption, encode, sampling

from layerctl import console
from layerctl.errors import BackendUnavailable, LayerctlError, UsageError

REQUIRES = ("torch", "diffusers", "transformers")
DTYPES = ("bfloat16", "float16", "float32")


class QwenBackend:
    name: ClassVar[str] = "qwen"
    summary: ClassVar[str] = "Qwen-Image-Layered (PyTorch): generative layers, needs weights"
    extra: ClassVar[str | None] = "torch"
    output_is_input_size: ClassVar[bool] = False

    @classmethod
    def available(cls, settings: BackendSettings) -> tuple[bool, str]:
        """torch + diffusers installed and a checkpoint folder found (no torch import)."""
        missing = [name for name in REQUIRES if find_spec(name) is None]
        if missing:
            return False, f"{', '.join(missing)} not installed: pip install 'layerctl[torch]'"
        from layerctl import weights

        try:
            folder = weights.locate(settings.weights)
        except LayerctlError as exc:
            return False, str(exc)
        return True, f"weights at {folder}"

    def __init__(self, settings: BackendSettings) -> None:
        from layerctl.backends.qwen import load

        from layerctl import weights

        self.device = pick_device(settings.device)
        self.dtype = pick_dtype(settings.dtype, self.device)
        folder = weights.locate(settings.weights)
        self.parts = load.load(folder, dtype=self.dtype)
        self.model_id = str(folder.resolve())
        self.scheduler = sampling.SchedulerConfig.from_dict(self.parts.scheduler_config)
        place(self.parts, settings.offload, self.device)
        if settings.vae_tiling:
            self.parts.vae.enable_tiling()

    def caption(self, image: np.ndarray, request: DecomposeRequest) -> str:
        """The auto-caption of ``image`` (RGBA uint8) at the request's working size."""
        return self._caption(image, _resize(image, *canvas(image, request.resolution)), request)

    def decompose(
        self,
        image: np.ndarray,
        request: DecomposeRequest,
        callback: sampling.Callback | None = None,
    ) -> list[np.ndarray]:
        """``request.layers`` RGBA layers at the working size, bottom first."""
        import torch

        p, device = self.parts, self.device
        width, height = canvas(image, request.resolution)
        resized = _resize(image, width, height)
        prompt = request.prompt
        if prompt is None or prompt in {"", " "}:  # the reference captions these too
            prompt = self._caption(image, resized, request)
        guided = sampling.uses_cfg(request.cfg)
        with torch.inference_mode():
            embeds = [encode.prompt_embeds(prompt, p.text_encoder, p.tokenizer, device)]
            if guided:
                negative = request.negative_prompt
                embeds.append(encode.prompt_embeds(negative, p.text_encoder, p.tokenizer, device))
            text, mask = encode.text_batch(embeds)
            cond = encode.condition_latents(p.vae, encode.image_tensor(resized).to(device))
            cond_tokens = sampling.pack(cond.to(text.dtype))
            lh, lw = sampling.latent_size(width, height)
            shape = sampling.noise_shape(request.layers, lh, lw)
            noise = sampling.reference_noise(shape, request.seed, _dtype_name(text.dtype))
            latents = sampling.pack(noise.to(device))
            mu = sampling.shift_mu(cond_tokens.shape[1])
            sched = sampling.schedule(request.steps, mu, self.scheduler)
            shapes = sampling.img_shapes(request.layers, lh, lw)
            model = transformer_model(p.transformer, cond_tokens, text, mask, shapes)
            latents = sampling.denoise(
                model, latents, sched, request.cfg, request.cfg_normalize, callback
            )
            frames = sampling.unpack(latents, request.layers + 1, lh, lw)
            return encode.decode_layers(p.vae, frames)

    def _caption(self, image: np.ndarray, resized: Any, request: DecomposeRequest) -> str:
        p = self.parts
        key = caption.cache_key(image, request.caption_lang, self.model_id, resized.size)
        return caption.cached(
            key,
            lambda: caption.generate_caption(
                resized,
                request.caption_lang,
                p.text_encoder,
                p.tokenizer,
                p.image_processor,
                self.device,
            ),
        )


def canvas(image: np.ndarray, resolution: int) -> tuple[int, int]:
    """The working size (w, h) for ``image``; warns off the trained 640/1024 buckets."""
    if resolution not in sampling.TRAINED_RESOLUTIONS:
        console.warn(f"resolution {resolution}: the model was trained on 640 and 1024 only")
    return sampling.working_size(image.shape[1], image.shape[0], resolution)


def transformer_model(
    transformer: Any, cond_tokens: Any, text: Any, mask: Any, shapes: list
) -> sampling.Model:
    """Adapt the diffusers transformer to ``model(latents, t) -> (cond, uncond)``: the
    condition image's tokens appended, cond and uncond prompts in one batch, the same
    timestep and ``additional_t_cond = 0`` (RGB-free layered mode) for both."""
    import torch

    batch = text.shape[0]
    device = text.device
    is_rgb = torch.zeros(batch, dtype=torch.long, device=device)
    img_shapes = [shapes] * batch

    def model(latents: Any, t: float) -> tuple[Any, Any]:
        n = latents.shape[1]
        x = torch.cat([latents, cond_tokens], dim=1).expand(batch, -1, -1)
        timestep = torch.full((batch,), t, dtype=torch.float32, device=device)
        out = transformer(
            hidden_states=x,
            timestep=timestep.to(latents.dtype) / 1000,
            encoder_hidden_states=text,
            encoder_hidden_states_mask=mask,
            img_shapes=img_shapes,
            additional_t_cond=is_rgb,
            return_dict=False,
        )[0][:, :n]
        return (out[:1], out[1:]) if batch == 2 else (out, None)

    return model


def pick_device(device: str) -> str:
    """``auto``: cuda, then mps, then cpu."""
    import torch

    if device != "auto":
        kind = device.split(":")[0]
        ok = {
            "cpu": True,
            "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available(),
        }
        if kind not in ok:
            raise UsageError(f"--device must be auto, cuda, mps or cpu, not {device!r}")
        if not ok[kind]:
            raise BackendUnavailable(f"--device {device}: not available on this machine")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(dtype: str, device: str) -> Any:
    """``auto``: bfloat16 on a GPU, float32 on the CPU."""
    import torch

    if dtype == "auto":
        dtype = "float32" if device == "cpu" else "bfloat16"
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be auto, {', '.join(DTYPES)}, not {dtype!r}")
    return getattr(torch, dtype)


def place(parts: Any, offload: str, device: str) -> None:
    """Put the models on ``device`` as the --offload mode says (memory.py; ``auto`` picks
    the fastest mode that fits the card's free memory)."""
    from layerctl.backends.qwen import memory

    if offload not in memory.MODES:
        raise UsageError(f"--offload must be one of {', '.join(memory.MODES)}, not {offload!r}")
    modules = {name: getattr(parts, name) for name in memory.ORDER}
    memory.place(modules, offload, device)


def _resize(image: np.ndarray, width: int, height: int) -> Any:
    """``VaeImageProcessor.resize``: Lanczos on the RGBA image (alpha included)."""
    from PIL import Image

    return Image.fromarray(image, "RGBA").resize((width, height), Image.Resampling.LANCZOS)


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")
