"""``--backend onnx``: Qwen-Image-Layered on ONNX Runtime, from a ``layerctl export onnx`` folder.

Runs with onnxruntime, numpy and tokenizers only; torch is imported solely to caption an
image when no ``--prompt`` is given, and only if it is installed and the export's source
checkpoint is still on disk. Otherwise the prompt is :data:`FALLBACK_PROMPT`, with a
warning: a generic description still separates layers, just less well than a caption.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from layerctl import budget, console
from layerctl.backends.layered import torch_stack
from layerctl.backends.model_options import LayeredRequest, OnnxSettings
from layerctl.errors import UsageError

REQUIRES = ("onnxruntime", "tokenizers")
FALLBACK_PROMPT = (
    "A layered graphic design: a background with foreground elements such as text, "
    "shapes, objects and people on top of it."
)


class OnnxBackend:
    name: ClassVar[str] = "onnx"
    summary: ClassVar[str] = "Qwen-Image-Layered on ONNX Runtime: needs `layerctl export onnx`"
    extra: ClassVar[str | None] = "onnx"
    Settings: ClassVar[type[OnnxSettings]] = OnnxSettings
    Request: ClassVar[type[LayeredRequest]] = LayeredRequest
    # On the host, per image: the core around the model (budget.MODEL_CORE_*); ONNX
    # Runtime's own allocations for the graphs are not planned.
    peak_bytes_per_pixel: ClassVar[int] = budget.MODEL_CORE_BYTES_PER_PIXEL
    peak_bytes_per_layer_pixel: ClassVar[int] = 0
    peak_fixed_bytes: ClassVar[int] = budget.CORE_FIXED_BYTES
    peak_bytes_per_layer: ClassVar[int] = budget.MODEL_CORE_BYTES_PER_LAYER

    @classmethod
    def available(cls, settings: OnnxSettings) -> tuple[bool, str]:
        """onnxruntime installed and --weights naming an export folder (its files are
        checked when the backend loads)."""
        missing = [name for name in REQUIRES if find_spec(name) is None]
        if missing:
            return False, f"{', '.join(missing)} not installed: pip install 'layerctl[onnx]'"
        if not settings.weights:
            return False, "needs --weights DIR, a folder written by `layerctl export onnx`"
        from layerctl.backends.onnx import manifest

        if not (Path(settings.weights).expanduser() / manifest.FILENAME).is_file():
            return False, f"{settings.weights} is not a folder written by `layerctl export onnx`"
        return True, f"export at {settings.weights}"

    def __init__(self, settings: OnnxSettings) -> None:
        from layerctl.backends.onnx import runtime

        if not settings.weights:
            raise UsageError(
                "--backend onnx needs --weights DIR",
                hint="make one with `layerctl export onnx -o DIR`",
            )
        self.pipeline = runtime.Pipeline(Path(settings.weights).expanduser(), settings.providers)

    def decompose(
        self, image: np.ndarray, request: LayeredRequest, callback: Any = None
    ) -> list[np.ndarray]:
        """``request.layers`` RGBA layers at the model's working size, bottom first."""
        from layerctl.backends.layered import flow

        width, height = flow.working_size(image.shape[1], image.shape[0], request.resolution)
        resized = flow.resize(image, width, height)
        prompt = request.prompt
        if prompt is None or prompt in {"", " "}:  # the reference captions these too
            prompt = self._caption(image, resized, request)
        return self.pipeline.decompose(np.asarray(resized), prompt, request, callback)

    def _caption(self, image: np.ndarray, resized: Any, request: LayeredRequest) -> str:
        """The Qwen2.5-VL captioner (and its caption cache) on the export's source
        checkpoint when torch and that folder are here, else :data:`FALLBACK_PROMPT`."""
        source = Path(self.pipeline.manifest.get("source", ""))
        if find_spec("torch") is None or not (source / "text_encoder").is_dir():
            console.warn(
                "no --prompt, and captioning needs the torch extra and the export's source "
                f"checkpoint; using the generic prompt {FALLBACK_PROMPT!r}"
            )
            return FALLBACK_PROMPT
        broken = torch_stack.torchvision_problem()
        if broken:
            console.warn(f"no --prompt; using the generic prompt {FALLBACK_PROMPT!r}: {broken}")
            return FALLBACK_PROMPT
        import torch

        from layerctl.backends.layered import caption, load

        def generate() -> str:
            parts = load.load(
                source, torch.float32, ("text_encoder", "tokenizer", "image_processor")
            )
            return caption.generate_caption(
                resized,
                request.caption_lang,
                parts.text_encoder,
                parts.tokenizer,
                parts.image_processor,
            )

        key = caption.cache_key(image, request.caption_lang, str(source.resolve()), resized.size)
        return caption.cached(key, generate)
