"""The once-per-image inputs of the sampling loop and the decode after it (torch).

Each function mirrors a step of diffusers 0.42.1 ``QwenImageLayeredPipeline`` (named in
its docstring) operation by operation, so that our layers equal the reference's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


def prompt_embeds(prompt: str, text_encoder: Any, tokenizer: Any, device: Any) -> Any:
    """``_get_qwen_prompt_embeds`` + ``encode_prompt`` for one prompt: the text
    encoder's last hidden state on the template, first 34 tokens dropped, (1, L, D)."""
    import torch

    tokens = tokenizer([PROMPT_TEMPLATE.format(prompt)], padding=True, return_tensors="pt")
    with torch.inference_mode():
        out = text_encoder(
            input_ids=tokens.input_ids.to(device),
            attention_mask=tokens.attention_mask.to(device),
            output_hidden_states=True,
        )
    hidden = out.hidden_states[-1][:, DROP_TOKENS:][:, :MAX_TEXT_TOKENS]
    return hidden.to(text_encoder.dtype)


def image_tensor(image: Any) -> Any:
    """``VaeImageProcessor.preprocess`` of the already resized RGBA image: [-1, 1],
    (1, 4, 1, H, W) float32."""
    import torch

    pixels = np.array(image).astype(np.float32) / 255.0
    tensor = torch.from_numpy(pixels[None].transpose(0, 3, 1, 2).copy())
    return (2.0 * tensor - 1.0).unsqueeze(2)


def condition_latents(vae: Any, image: Any) -> Any:
    """``_encode_vae_image``: the posterior's mode, normalised by latents_mean/std,
    as (1, 1, 16, h, w) frames-first latents. ``image`` is already on the execution
    device (with offloading the VAE's own weights may still be on the host)."""
    import torch

    with torch.inference_mode():
        z = vae.encode(image.to(dtype=vae.dtype)).latent_dist.mode()
    mean, std = _stats(vae, z)
    z = (z - mean) / std
    return z.permute(0, 2, 1, 3, 4)


def decode_layers(vae: Any, latents: Any) -> list[np.ndarray]:
    """The reference's decode: drop frame 0 (the composite), de-normalise, decode every
    layer in one VAE batch, then ``postprocess`` to RGBA uint8. ``latents`` is
    (1, F, 16, h, w) frames-first."""
    import torch

    x = latents[:, 1:].to(vae.dtype)
    b, f, c, h, w = x.shape
    x = x.reshape(b * f, c, 1, h, w)
    mean, std = _stats(vae, x)
    x = x / (1.0 / std) + mean
    with torch.inference_mode():
        images = vae.decode(x, return_dict=False)[0].squeeze(2)
    images = (images * 0.5 + 0.5).clamp(0, 1)
    array = images.cpu().permute(0, 2, 3, 1).float().numpy()
    return list((array * 255).round().astype(np.uint8))


def _stats(vae: Any, like: Any) -> tuple[Any, Any]:
    import torch

    shape = (1, vae.config.z_dim, 1, 1, 1)
    mean = torch.tensor(vae.config.latents_mean).view(shape).to(like.device, like.dtype)
    std = torch.tensor(vae.config.latents_std).view(shape).to(like.device, like.dtype)
    return mean, std
