"""The options of the Qwen-Image-Layered backends: what each one takes, typed and closed.

``LayeredRequest`` is the model's per-image options, the same for its PyTorch (``qwen``)
and ONNX Runtime (``onnx``) engines; each engine adds its own. Each backend class names
its schemas (``Settings``, ``Request``), so an option it does not take is refused
(layerctl/backends/base.py: ``configure``). No heavy import: the CLI checks options
before any model loads.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import Field, field_validator

from layerctl.backends.base import BackendSettings, DecomposeRequest, Schema
from layerctl.choices import CaptionLang, Device, Dtype, Offload, Quantize
from layerctl.errors import UsageError


class LayeredRequest(DecomposeRequest):
    """Per image, for both engines. Defaults are the official Qwen-Image-Layered settings
    (640 bucket, 50 steps, true CFG 4.0 with negative prompt " ", cfg_normalize on,
    English auto-caption)."""

    prompt: str | None = None  # None: auto-caption
    negative_prompt: str = " "
    steps: int = Field(50, ge=1)
    cfg: float = Field(4.0, ge=0.0)
    cfg_normalize: bool = True
    # The CLI offers the trained buckets (choices.Resolution); Python may ask for any
    # multiple of 32 (tiny test models run at 64; off-bucket sizes warn).
    resolution: int = Field(640, ge=32, multiple_of=32)
    caption_lang: CaptionLang = CaptionLang.en

    def for_layer(self) -> LayeredRequest:
        """A prompt describes the whole image, not its layers: layers are auto-captioned."""
        return self.with_(prompt=None)


class QwenRequest(LayeredRequest):
    """The PyTorch engine's speed options on top (all approximate, all off by default)."""

    quantize: Quantize | None = None  # float8 GEMMs on Ada/Hopper GPUs
    step_cache: float = Field(0.0, ge=0.0)  # First Block Cache threshold, 0 = off
    cfg_truncate: float = Field(0.0, ge=0.0, le=1.0)  # cond only once sigma < this


class Lora(Schema):
    """One ``--lora PATH[:SCALE]``: a safetensors LoRA, merged into the transformer at
    ``scale`` when the model loads (backends/qwen/lora.py)."""

    path: str  # absolute: workers and Ray actors may run elsewhere than the CLI's cwd
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Lora:
        """``PATH[:SCALE]``, checked here (no torch): the file exists, is safetensors, and
        SCALE is a finite number. A PATH that exists as given keeps any colon in it.
        Raises UsageError itself (pydantic passes it through): one line naming the value."""
        path, scale = text, 1.0
        if ":" in text and not Path(text).expanduser().exists():
            path, tail = text.rsplit(":", 1)
            try:
                scale = float(tail)
            except ValueError:
                scale = math.nan
            if not math.isfinite(scale):
                raise UsageError(
                    f"--lora {text}: {tail!r} is not a scale",
                    hint="PATH[:SCALE], e.g. style.safetensors:0.8",
                )
        file = Path(path).expanduser()
        if not file.is_file():
            raise UsageError(f"--lora {path}: {'not a file' if file.exists() else 'no such file'}")
        from layerctl.weights import PICKLE_SUFFIXES, tensor_sizes

        if file.suffix in PICKLE_SUFFIXES:
            raise UsageError(f"--lora {path}: only safetensors LoRAs are loaded, never pickle")
        _, problem = tensor_sizes(file)
        if problem:
            if not problem.startswith("not a safetensors"):
                problem = f"not a safetensors file ({problem})"
            raise UsageError(f"--lora {path}: {problem}")
        return cls(path=str(file.resolve()), scale=scale)


class QwenSettings(BackendSettings):
    """How the PyTorch engine loads: once per run."""

    weights: str | None = None  # a folder, a registry name or one transformer file
    base: str | None = None  # NAME|DIR[,VAE]: the other components of a single-file weights
    device: Device = Device.auto
    dtype: Dtype = Dtype.auto
    offload: Offload = Offload.auto  # the fastest placement that fits (memory.choose)
    vae_tiling: bool = False
    compile: bool = False  # torch.compile of the transformer blocks
    lora: tuple[Lora, ...] = ()  # merged into the transformer when it loads, in order

    @field_validator("lora", mode="before")
    @classmethod
    def _parse_loras(cls, value: object) -> object:
        """``PATH[:SCALE]`` strings, repeated (``--lora``) or comma-separated (as
        LAYERCTL_LORA and layerctl.toml may give them)."""
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else list(value)
        loras: list[object] = []
        for item in items:
            if isinstance(item, str):
                loras += [Lora.parse(p.strip()) for p in item.split(",") if p.strip()]
            else:
                loras.append(item)
        return tuple(loras)


class OnnxSettings(BackendSettings):
    """How the ONNX Runtime engine loads: an export folder and its providers."""

    weights: str | None = None  # a folder written by `layerctl export onnx`
    providers: tuple[str, ...] = ()  # best first, e.g. ("cuda", "cpu"); () = the default

    @field_validator("providers", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """``"cuda,cpu"`` as the CLI and LAYERCTL_PROVIDERS give it."""
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return () if value is None else value
