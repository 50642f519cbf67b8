"""The options of the Qwen-Image-Layered backends: what each one takes, typed and closed.

``LayeredRequest`` is the model's per-image options, the same for its PyTorch (``qwen``)
and ONNX Runtime (``onnx``) engines; each engine adds its own. Each backend class names
its schemas (``Settings``, ``Request``), so an option it does not take is refused
(layerctl/backends/base.py: ``configure``). No heavy import: the CLI checks options
before any model loads.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from layerctl.backends.base import BackendSettings, DecomposeRequest
from layerctl.choices import CaptionLang, Device, Dtype, Offload, Quantize


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


class QwenSettings(BackendSettings):
    """How the PyTorch engine loads: once per run."""

    weights: str | None = None  # a folder, a registry name or one transformer file
    base: str | None = None  # NAME|DIR[,VAE]: the other components of a single-file weights
    device: Device = Device.auto
    dtype: Dtype = Dtype.auto
    offload: Offload = Offload.auto  # the fastest placement that fits (memory.choose)
    vae_tiling: bool = False
    compile: bool = False  # torch.compile of the transformer blocks


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
