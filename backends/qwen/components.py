"""The torch provider of the flow's components (:class:`layerctl.backends.layered.flow.Components`).

diffusers' VAE and transformers' text encoder and tokenizer, called as diffusers 0.42.1
``QwenImageLayeredPipeline`` calls them; the flow around them is
:mod:`layerctl.backends.layered.flow`, shared with the ONNX backend. Built per request
(cheap): it carries the request's transformer adapter and the check to run just before
the VAE decodes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from layerctl.backends.layered import flow


class TorchComponents:
    """Loaded parts (``layered.load.QwenComponents``) on ``device``, as flow components."""

    def __init__(
        self,
        parts: Any,
        device: Any,
        scheduler: flow.SchedulerConfig,
        model: Callable[..., flow.Model],
        before_decode: Callable[[], None] = lambda: None,
        encoder_device: Any = None,
    ) -> None:
        self.parts = parts
        self.device = device
        self.encoder_device = encoder_device or device  # the host with --offload encoder-cpu
        self.scheduler = scheduler
        self._model = model  # (transformer, cond_tokens, embeds, shapes) -> Model
        self._before_decode = before_decode
        self.latents_mean: Sequence[float] = parts.vae.config.latents_mean
        self.latents_std: Sequence[float] = parts.vae.config.latents_std

    def text_states(self, text: str) -> Any:
        import torch

        encoder = self.parts.text_encoder
        tokens = self.parts.tokenizer([text], padding=True, return_tensors="pt")
        with torch.inference_mode():
            out = encoder(
                input_ids=tokens.input_ids.to(self.encoder_device),
                attention_mask=tokens.attention_mask.to(self.encoder_device),
                output_hidden_states=True,
            )
        return out.hidden_states[-1].to(self.device, encoder.dtype)

    def vae_encode(self, image: np.ndarray) -> Any:
        """With offloading the VAE's weights may still be on the host: the image goes to
        the execution device, the hooks bring the weights."""
        import torch

        vae = self.parts.vae
        x = torch.from_numpy(image).to(self.device)
        with torch.inference_mode():
            return vae.encode(x.to(dtype=vae.dtype)).latent_dist.mode()

    def vae_decode(self, latents: Any) -> Any:
        import torch

        self._before_decode()
        vae = self.parts.vae
        with torch.inference_mode():
            return vae.decode(latents.to(vae.dtype), return_dict=False)[0]

    def noise(self, shape: Sequence[int], seed: int, dtype: Any) -> Any:
        name = str(dtype).removeprefix("torch.")
        return flow.reference_noise(shape, seed, name).to(self.device)

    def model(self, cond_tokens: Any, embeds: list[Any], shapes: list) -> flow.Model:
        return self._model(self.parts.transformer, cond_tokens, embeds, shapes)
