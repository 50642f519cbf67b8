"""Qwen-Image-Layered on ONNX Runtime, numpy and tokenizers alone — torch is never imported.

:class:`Pipeline` is the ONNX provider of the flow's components
(:mod:`layerctl.backends.layered.flow`, the same flow the qwen backend runs on torch):
ONNX sessions for the four networks, the numpy RoPE tables of :mod:`.rope` and the numpy
twin of torch's CPU ``randn`` (:mod:`layerctl.noise`) for bit-identical initial noise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from layerctl import console
from layerctl.backends.layered import flow
from layerctl.backends.onnx import manifest, rope
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
        self.scheduler = flow.SchedulerConfig.from_dict(scheduler)

    @property
    def latents_mean(self) -> list[float]:
        return self.config["latents_mean"]

    @property
    def latents_std(self) -> list[float]:
        return self.config["latents_std"]

    def text_states(self, text: str) -> np.ndarray:
        ids = self.tokenizer.ids(text)[None]
        return self.sessions.run(
            "text_encoder", {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        )

    def vae_encode(self, image: np.ndarray) -> np.ndarray:
        return self.sessions.run("vae_encoder", {"image": image}).astype(np.float32)

    def vae_decode(self, latents: np.ndarray) -> np.ndarray:
        return self.sessions.run("vae_decoder", {"latents": latents}).astype(np.float32)

    def noise(self, shape: Sequence[int], seed: int, dtype: Any = None) -> np.ndarray:
        """float32 whatever the graphs' dtype: the sessions cast their inputs."""
        return torch_randn(shape, seed)

    def model(self, cond_tokens: np.ndarray, embeds: list[np.ndarray], shapes: list) -> flow.Model:
        """One transformer run per step, cond and uncond as one batch padded to the
        longer prompt (masked)."""
        text, mask = text_batch(embeds)
        batch = text.shape[0]
        frames, (_, gh, gw) = len(shapes) - 1, shapes[0]
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
        return flow.decompose(self, resized, prompt, request, callback)
