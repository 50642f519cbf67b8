"""Load a Qwen-Image-Layered checkpoint folder, as published on the hub, into model objects.

The folder is diffusers' layout (model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, processor/, scheduler/); each component is read by its own diffusers or
transformers class from local safetensors only — never pickle, never remote code. The
folder is checked first (``layerctl.weights.require_complete``) so that a missing or
damaged file is one line naming it, not a stack trace from deep inside a loader.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerctl.backends.layered import torch_stack
from layerctl.errors import BackendUnavailable
from layerctl.weights import require_complete

MODELS = ("text_encoder", "transformer", "vae")  # the components with weights
COMPONENTS = (*MODELS, "tokenizer", "image_processor")  # the scheduler config is always read


@dataclass
class QwenComponents:
    """What a decomposition needs: the parts asked for, on the CPU in ``dtype``."""

    root: Path
    dtype: Any  # torch.dtype
    scheduler_config: dict[str, Any]
    transformer: Any = None  # diffusers.QwenImageTransformer2DModel
    vae: Any = None  # diffusers.AutoencoderKLQwenImage
    text_encoder: Any = None  # transformers.Qwen2_5_VLForConditionalGeneration
    tokenizer: Any = None  # transformers.Qwen2Tokenizer
    image_processor: Any = None  # transformers.Qwen2VLImageProcessorPil


def load(root: Path, dtype: Any, parts: Iterable[str] = COMPONENTS) -> QwenComponents:
    """Check the checkpoint folder ``root``, then load ``parts`` of it on the CPU in ``dtype``.

    Placement on the device (whole, or with offloading hooks) is the backend's next step.
    """
    require_complete(root)
    broken = torch_stack.torchvision_problem()  # else "Failed to import diffusers.models…"
    if broken:
        raise BackendUnavailable(broken)
    wanted = set(parts)
    unknown = wanted - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown components {sorted(unknown)}; known: {COMPONENTS}")
    local = {"local_files_only": True, "use_safetensors": True}
    loaded = QwenComponents(
        root=root,
        dtype=dtype,
        scheduler_config=json.loads((root / "scheduler" / "scheduler_config.json").read_text()),
    )
    if "transformer" in wanted:
        from diffusers import QwenImageTransformer2DModel

        loaded.transformer = QwenImageTransformer2DModel.from_pretrained(
            root / "transformer", torch_dtype=dtype, **local
        ).eval()
    if "vae" in wanted:
        from diffusers import AutoencoderKLQwenImage

        loaded.vae = AutoencoderKLQwenImage.from_pretrained(
            root / "vae", torch_dtype=dtype, **local
        ).eval()
    if "text_encoder" in wanted:
        from transformers import Qwen2_5_VLForConditionalGeneration

        loaded.text_encoder = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            root / "text_encoder",
            config=text_encoder_config(root / "text_encoder"),
            dtype=dtype,
            trust_remote_code=False,
            **local,
        ).eval()
    if "tokenizer" in wanted:
        from transformers import Qwen2Tokenizer

        loaded.tokenizer = Qwen2Tokenizer.from_pretrained(root / "tokenizer", local_files_only=True)
    if "image_processor" in wanted:
        # The Pil variant: the default one and the VL processor's video half need torchvision.
        from transformers import Qwen2VLImageProcessorPil

        loaded.image_processor = Qwen2VLImageProcessorPil.from_pretrained(
            root / "processor", local_files_only=True
        )
    return loaded


def text_encoder_config(folder: Path) -> Any:
    """The text encoder's config without the pre-v5 top-level RoPE keys when text_config
    has its own: the model reads text_config's, and transformers 5 warns about the
    top-level copies on every load ("got `key=rope_scaling`", "Unrecognized keys in
    `rope_parameters`")."""
    from transformers import Qwen2_5_VLConfig

    raw = json.loads((folder / "config.json").read_text("utf-8"))
    text = raw.get("text_config")
    if isinstance(text, dict) and ({"rope_scaling", "rope_parameters"} & set(text)):
        raw.pop("rope_scaling", None)
        raw.pop("rope_theta", None)
    return Qwen2_5_VLConfig.from_dict(raw)
