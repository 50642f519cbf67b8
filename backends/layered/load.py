"""Load a Qwen-Image-Layered checkpoint folder, as published on the hub, into model objects.

The folder is diffusers' layout (model_index.json, transformer/, vae/, text_encoder/,
tokenizer/, processor/, scheduler/); each component is read by its own diffusers or
transformers class from local safetensors only — never pickle, never remote code. The
folder is checked first (``layerctl.weights.require_sources``) so that a missing or
damaged file is one line naming it, not a stack trace from deep inside a loader.

The transformer may instead be one file (``weights.Sources``): the community layouts —
diffusers' names, bare or under ``model.diffusion_model.`` / ``transformer.`` (ComfyUI
saves both), ComfyUI's scaled fp8 (``*.weight_scale`` + ``*.comfy_quant``, dequantized
here to the run dtype: diffusers has no loader for it) — or a GGUF, which diffusers'
``from_single_file`` keeps quantized (``GGUFQuantizationConfig``, the ``gguf`` package).
The VAE may be one file too, in diffusers' or ComfyUI's (Wan's original) key layout.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerctl.backends.layered import torch_stack
from layerctl.errors import BackendUnavailable, MissingWeights
from layerctl.weights import Sources, require_sources

MODELS = ("text_encoder", "transformer", "vae")  # the components with weights
COMPONENTS = (*MODELS, "tokenizer", "image_processor")  # the scheduler config is always read
# Prefixes community single files put before diffusers' names (ComfyUI: both).
PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.")
MARKERS = ("__index_timestep_zero__", "scaled_fp8")  # ComfyUI flags, not weights
SCALES = (".weight_scale", ".scale_weight")  # ComfyUI fp8: new (comfy_quant) and old names
DROPPED = (".comfy_quant", ".input_scale", ".scale_input")


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


def load(source: Path | Sources, dtype: Any, parts: Iterable[str] = COMPONENTS) -> QwenComponents:
    """Check ``source`` (a checkpoint folder, or single files over a base folder), then load
    ``parts`` of it on the CPU in ``dtype``.

    Placement on the device (whole, or with offloading hooks) is the backend's next step.
    """
    found = source if isinstance(source, Sources) else Sources(source)
    require_sources(found)
    root = found.base
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
    if "transformer" in wanted and found.transformer is not None:
        loaded.transformer = transformer_from_file(found.transformer, root, dtype)
    elif "transformer" in wanted:
        from diffusers import QwenImageTransformer2DModel

        loaded.transformer = QwenImageTransformer2DModel.from_pretrained(
            root / "transformer", torch_dtype=dtype, **local
        ).eval()
    if "vae" in wanted and found.vae is not None:
        loaded.vae = vae_from_file(found.vae, root, dtype)
    elif "vae" in wanted:
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


def transformer_from_file(path: Path, base: Path, dtype: Any) -> Any:
    """The transformer from one file, shaped by ``base``'s transformer/config.json, through
    diffusers' single-file loader; a GGUF stays quantized (dequantized layer by layer as
    it runs, in ``dtype``)."""
    from diffusers import QwenImageTransformer2DModel
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint

    quantized = {}
    if path.suffix == ".gguf":
        from diffusers import GGUFQuantizationConfig

        quantized["quantization_config"] = GGUFQuantizationConfig(compute_dtype=dtype)
    state = diffusers_names(load_single_file_checkpoint(str(path), local_files_only=True), dtype)
    expected = _expected_names(base / "transformer")
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        what = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which the model has not"
        raise MissingWeights(
            f"{path.name} is not a Qwen-Image-Layered transformer for this --base: it {what} "
            f"({len(missing)} missing, {len(extra)} unexpected tensors)",
            hint="give the transformer file of the same model as the --base folder",
        )
    return QwenImageTransformer2DModel.from_single_file(
        state,
        config=str(base),
        subfolder="transformer",
        torch_dtype=dtype,
        local_files_only=True,
        **quantized,
    ).eval()


def diffusers_names(state: dict[str, Any], dtype: Any) -> dict[str, Any]:
    """A community single file's tensors under diffusers' names: the common prefix off,
    ComfyUI's flags dropped, its scaled fp8 weights dequantized (``weight * scale``, per
    tensor, in float32 then ``dtype``) — ComfyUI's own dequantization."""
    import torch

    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
            break
    state = {k: v for k, v in state.items() if k not in MARKERS}
    for key in [k for k in state if k.endswith(SCALES)]:
        scale = state.pop(key)
        weight_key = key.rpartition(".")[0] + ".weight"
        if weight_key not in state:
            raise MissingWeights(f"{key} scales {weight_key}, which the file does not hold")
        weight = state[weight_key]
        state[weight_key] = (weight.to(torch.float32) * scale.to(torch.float32)).to(dtype)
    for key in [k for k in state if k.endswith(DROPPED)]:
        if key.endswith(".comfy_quant"):
            _require_fp8(key, state[key])
        del state[key]
    return state


def _require_fp8(key: str, config: Any) -> None:
    """ComfyUI's per-layer quantization record (JSON bytes): only float8 is read here."""
    try:
        fmt = json.loads(bytes(config.tolist()).decode("utf-8")).get("format", "")
    except (ValueError, AttributeError):
        fmt = "unreadable"
    if not str(fmt).startswith("float8"):
        raise MissingWeights(
            f"{key}: ComfyUI quantization {fmt!r} is not supported",
            hint="use a bf16, fp8 (scaled) or GGUF transformer file",
        )


def _expected_names(folder: Path) -> set[str]:
    """The transformer's parameter and buffer names for its config, built on the meta
    device (no memory): what a single file must hold."""
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    with init_empty_weights():
        model = QwenImageTransformer2DModel.from_config(
            QwenImageTransformer2DModel.load_config(folder, local_files_only=True)
        )
    return set(model.state_dict())


def vae_from_file(path: Path, base: Path, dtype: Any) -> Any:
    """The RGBA VAE from one file, shaped by ``base``'s vae/config.json. ComfyUI ships it
    in Wan 2.1's original key layout (the Qwen-Image VAE is Wan's, with diffusers' names
    shared by both classes): diffusers' Wan converter renames it."""
    import torch
    from diffusers import AutoencoderKLQwenImage
    from diffusers.loaders.single_file_utils import (
        convert_wan_vae_to_diffusers,
        load_single_file_checkpoint,
    )

    state = load_single_file_checkpoint(str(path), local_files_only=True)
    if "encoder.conv1.weight" in state:  # Wan's original layout
        state = convert_wan_vae_to_diffusers(state)
    vae = AutoencoderKLQwenImage.from_config(
        AutoencoderKLQwenImage.load_config(base / "vae", local_files_only=True)
    )
    expected = vae.state_dict()
    wrong = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra or wrong:
        what = f"lacks {missing[0]}" if missing else f"has {(wrong or extra)[0]}"
        raise MissingWeights(
            f"{path.name} is not a Qwen-Image-Layered VAE for this --base: it {what}",
            hint="the VAE file is qwen_image_layered_vae.safetensors (4-channel RGBA VAE)",
        )
    vae.load_state_dict(state)
    return torch.nn.Module.to(vae, dtype).eval()  # not ModelMixin.to: it warns for nothing
