"""Qwen-Image-Layered on ONNX Runtime, numpy and tokenizers alone — torch is never imported.

The steps are the qwen backend's (backends/qwen/backend.py) with the torch parts swapped:
ONNX sessions for the four networks, the numpy RoPE tables of :mod:`.rope`, the numpy twin
of torch's CPU ``randn`` (:mod:`layerctl.noise`) for bit-identical initial noise, and the
same schedule, packing, true CFG and Euler loop (:mod:`layerctl.backends.qwen.sampling`,
shared, not copied).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from layerctl import console
from layerctl.backends.onnx import manifest, rope
from layerctl.backends.qwen import encode, sampling
from layerctl.errors import BackendUnavailable, MissingWeights
from layerctl.noise import torch_randn

# Best first; only those this onnxruntime build offers are tried.
PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}


def choose_providers(requested: Sequence[str] = ()) -> list[str]:
    """``requested`` (names, or short forms like ``cuda``) if given, else the best available."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if not requested:
        return [p for p in PREFERRED_PROVIDERS if p in available] or available
    chosen = []
    for name in requested:
        full = _provider_name(name)
        if full not in available:
            raise BackendUnavailable(
                f"ONNX Runtime provider {name!r} is not available here",
                hint=f"available: {', '.join(available)}",
            )
        chosen.append(full)
    return chosen


def _provider_name(name: str) -> str:
    short = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider"}
    short["cpu"] = "CPUExecutionProvider"
    return short.get(name.lower(), name)


class Sessions:
    """One ``InferenceSession`` per graph, created on first use; inputs cast to the graph's
    own dtypes (a float16 export takes float16 latents)."""

    def __init__(self, folder: Path, providers: Sequence[str]) -> None:
        self.folder = folder
        self.providers = list(providers)
        self._sessions: dict[str, Any] = {}

    def session(self, name: str) -> Any:
        if name not in self._sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            path = self.folder / f"{name}.onnx"
            try:
                sess = ort.InferenceSession(str(path), options, providers=self.providers)
            except Exception as exc:  # ORT raises its own exception types for bad files
                raise MissingWeights(
                    f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}",
                    hint="re-run `layerctl export onnx`",
                ) from None
            console.info(f"onnx {name}: {sess.get_providers()[0]}")
            self._sessions[name] = sess
        return self._sessions[name]

    def run(self, name: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        sess = self.session(name)
        feed = {}
        for arg in sess.get_inputs():
            if arg.name not in inputs:
                raise MissingWeights(
                    f"{name}.onnx wants input {arg.name!r}, which this layerctl does not make",
                    hint="made by another layerctl version; re-run `layerctl export onnx`",
                )
            feed[arg.name] = np.ascontiguousarray(inputs[arg.name], dtype=_NP_TYPES[arg.type])
        return sess.run(None, feed)[0]


class Tokenizer:
    """The checkpoint's byte-level BPE through the ``tokenizers`` library (no transformers)."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer as Bpe

        self._bpe = Bpe.from_file(str(folder / "tokenizer.json"))

    def ids(self, text: str) -> np.ndarray:
        return np.asarray(self._bpe.encode(text, add_special_tokens=False).ids, np.int64)


def text_batch(embeds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(1, L_i, D) prompt embeddings -> zero-padded (B, L, D) and its int64 mask (B, L)."""
    length = max(e.shape[1] for e in embeds)
    text = np.zeros((len(embeds), length, embeds[0].shape[2]), embeds[0].dtype)
    mask = np.zeros((len(embeds), length), np.int64)
    for i, e in enumerate(embeds):
        text[i, : e.shape[1]] = e[0]
        mask[i, : e.shape[1]] = 1
    return text, mask


class Pipeline:
    """An export folder, ready to decompose: manifest checked, sessions made on first use."""

    def __init__(self, folder: Path, providers: Sequence[str] = ()) -> None:
        self.folder = folder
        self.manifest = manifest.read(folder)
        self.config = self.manifest["config"]
        self.sessions = Sessions(folder, choose_providers(providers))
        self.tokenizer = Tokenizer(folder / "tokenizer")
        scheduler = json.loads((folder / "scheduler" / "scheduler_config.json").read_text())
        self.scheduler = sampling.SchedulerConfig.from_dict(scheduler)

    def prompt_embeds(self, prompt: str) -> np.ndarray:
        """The text encoder's last hidden state on the template, first 34 tokens dropped."""
        ids = self.tokenizer.ids(encode.PROMPT_TEMPLATE.format(prompt))[None]
        hidden = self.sessions.run(
            "text_encoder", {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        )
        return hidden[:, encode.DROP_TOKENS :][:, : encode.MAX_TEXT_TOKENS]

    def condition_tokens(self, resized: np.ndarray) -> np.ndarray:
        """RGBA uint8 at the working size -> packed, normalised VAE latents (1, N, 64)."""
        image = (resized.astype(np.float32) / 255.0 * 2.0 - 1.0).transpose(2, 0, 1)
        z = self.sessions.run("vae_encoder", {"image": image[None, :, None]}).astype(np.float32)
        mean, std = self._stats()
        z = (z - mean) / std
        return sampling.pack(z.transpose(0, 2, 1, 3, 4))

    def decode(self, frames: np.ndarray) -> list[np.ndarray]:
        """(1, F, 16, h, w) -> F − 1 RGBA uint8 layers: frame 0 (the composite) dropped."""
        x = frames[:, 1:].astype(np.float32)
        b, f, c, h, w = x.shape
        x = x.reshape(b * f, c, 1, h, w)
        mean, std = self._stats()
        x = x / (np.float32(1.0) / std) + mean
        images = self.sessions.run("vae_decoder", {"latents": x})[:, :, 0].astype(np.float32)
        images = np.clip(images * 0.5 + 0.5, 0.0, 1.0).transpose(0, 2, 3, 1)
        return list(np.round(images * 255).astype(np.uint8))

    def model(self, cond_tokens: np.ndarray, text: np.ndarray, mask: np.ndarray, grid: tuple):
        """``model(latents, t) -> (cond, uncond)`` for :func:`sampling.denoise`."""
        batch = text.shape[0]
        frames, gh, gw = grid
        tables = rope.tables(self.config["axes_dims_rope"], frames, gh, gw, text.shape[1])
        fixed = {
            "text": text,
            "text_mask": mask,
            **dict(zip(("img_cos", "img_sin", "txt_cos", "txt_sin"), tables, strict=True)),
        }

        def model(latents: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray | None]:
            n = latents.shape[1]
            tokens = np.concatenate([latents, cond_tokens], axis=1)
            timestep = np.full(batch, np.float32(t) / np.float32(1000), np.float32)
            out = self.sessions.run(
                "transformer",
                {"tokens": np.repeat(tokens, batch, axis=0), "timestep": timestep, **fixed},
            )
            out = out[:, :n].astype(np.float32)
            return (out[:1], out[1:]) if batch == 2 else (out, None)

        return model

    def decompose(
        self, resized: np.ndarray, prompt: str, request: Any, callback: Any = None
    ) -> list[np.ndarray]:
        """``request.layers`` RGBA layers of ``resized`` (already at the working size)."""
        height, width = resized.shape[:2]
        embeds = [self.prompt_embeds(prompt)]
        guided = sampling.uses_cfg(request.cfg)
        if guided:
            embeds.append(self.prompt_embeds(request.negative_prompt))
        text, mask = text_batch(embeds)
        cond = self.condition_tokens(resized)
        lh, lw = sampling.latent_size(width, height)
        noise = torch_randn(sampling.noise_shape(request.layers, lh, lw), request.seed)
        sched = sampling.schedule(request.steps, sampling.shift_mu(cond.shape[1]), self.scheduler)
        model = self.model(cond, text, mask, (request.layers + 1, lh // 2, lw // 2))
        latents = sampling.denoise(
            model, sampling.pack(noise), sched, request.cfg, request.cfg_normalize, callback
        )
        return self.decode(sampling.unpack(latents, request.layers + 1, lh, lw))

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        shape = (1, self.config["z_dim"], 1, 1, 1)
        mean = np.asarray(self.config["latents_mean"], np.float32).reshape(shape)
        std = np.asarray(self.config["latents_std"], np.float32).reshape(shape)
        return mean, std
