"""``--backend qwen``: Qwen-Image-Layered in PyTorch with our own sampling loop.

The model classes come from diffusers/transformers (called through
:mod:`.components`); everything around them (working size, captions, prompt embeddings,
condition latents, noise, schedule, true CFG — see :func:`transformer_model` for how cond
and uncond run —, Euler steps, decoding: :mod:`layerctl.backends.layered.flow`) is ours
and equals diffusers' ``QwenImageLayeredPipeline`` on the same checkpoint, seed and settings
(tests/test_qwen_parity.py). Nothing heavy is imported until the class is instantiated.
"""

from __future__ import annotations

import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from layerctl import budget, console
from layerctl.backends.capabilities import MemoryPlan
from layerctl.backends.layered import caption, flow, torch_stack
from layerctl.backends.model_options import QwenRequest, QwenSettings
from layerctl.backends.qwen import components, lora, memory, speed
from layerctl.errors import BackendUnavailable, LayerctlError, UsageError

REQUIRES = ("torch", "diffusers", "transformers")
INSTALL = "pip install 'layerctl[torch]'"
# model_index.json entries a Qwen-Image-Layered folder must declare.
PIPELINE_COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")
DTYPES = ("bfloat16", "float16", "float32")


class QwenBackend:
    name: ClassVar[str] = "qwen"
    summary: ClassVar[str] = "Qwen-Image-Layered (PyTorch): generative layers, needs weights"
    extra: ClassVar[str | None] = "torch"
    Settings: ClassVar[type[QwenSettings]] = QwenSettings
    Request: ClassVar[type[QwenRequest]] = QwenRequest
    # On the host, per image: the core around the model (budget.MODEL_CORE_*); the
    # model's weights and activations are planned by qwen/memory.py.
    peak_bytes_per_pixel: ClassVar[int] = budget.MODEL_CORE_BYTES_PER_PIXEL
    peak_bytes_per_layer_pixel: ClassVar[int] = 0
    peak_fixed_bytes: ClassVar[int] = budget.CORE_FIXED_BYTES
    peak_bytes_per_layer: ClassVar[int] = budget.MODEL_CORE_BYTES_PER_LAYER

    @classmethod
    def available(cls, settings: QwenSettings) -> tuple[bool, str]:
        """torch + diffusers installed, a complete Qwen-Image-Layered folder found and no
        broken torchvision in the way (no torch import here): an ONNX export, a
        half-finished download or a torchvision built for another torch is refused, so
        ``--backend auto`` falls through to the next backend instead of failing later."""
        missing = [name for name in REQUIRES if find_spec(name) is None]
        if missing:
            return False, f"{', '.join(missing)} not installed: {INSTALL}"
        if settings.lora and find_spec("peft") is None:
            return False, f"--lora needs peft, not installed: {INSTALL}"
        from layerctl import weights

        try:
            found = weights.sources(settings.weights, settings.base)
        except LayerctlError as exc:
            return False, str(exc)
        if found.transformer is not None:
            problems = weights.source_problems(found)
            if problems:
                return False, f"{found.transformer.name}: {problems[0]}"
            where = f"transformer {found.transformer}, the rest from {found.base}"
        else:
            problem = pipeline_problem(found.base)
            if problem:
                return False, f"{found.base}: {problem}"
            where = f"weights at {found.base}"
        broken = torch_stack.torchvision_problem()  # last: it costs a subprocess
        if broken:
            return False, broken
        return True, where

    @classmethod
    def memory_plan(cls, settings: QwenSettings, layers: int) -> MemoryPlan:
        """Where ``--offload auto`` would put the model on this machine (no load)."""
        return memory.plan(device_info(settings.device), settings.weights, layers, settings.base)

    def __init__(self, settings: QwenSettings) -> None:
        from layerctl import weights
        from layerctl.backends.layered import load

        self.device = pick_device(settings.device)
        self.dtype = pick_dtype(settings.dtype, self.device)
        found = weights.sources(settings.weights, settings.base)
        self.parts = load.load(found, dtype=self.dtype)
        lora.apply(self.parts.transformer, settings.lora)  # before placement: merged on the host
        self.model_id = str(found.base.resolve())  # what captions: the base's text encoder
        self.scheduler = flow.SchedulerConfig.from_dict(self.parts.scheduler_config)
        self.offload = place(self.parts, settings.offload, self.device)
        if settings.vae_tiling:
            self.parts.vae.enable_tiling()
        # --offload auto without --vae-tiling: tiled decoding only for requests that need it
        self.footprint = None
        if settings.offload == "auto" and not settings.vae_tiling:
            self.footprint = memory.Footprint.of(
                **{n: getattr(self.parts, n) for n in memory.ORDER}
            )
        self.uncompiled = settings.compile  # compiled lazily: the first image pays for it
        if settings.compile:
            speed.compile_blocks(self.parts.transformer)
        self.fp8: speed.Float8Linears | None = None

    @property
    def encoder_device(self) -> str:
        """Where the text encoder runs: the host under ``--offload encoder-cpu``."""
        return "cpu" if self.offload == "encoder-cpu" else self.device

    def caption(self, image: np.ndarray, request: QwenRequest) -> str:
        """The auto-caption of ``image`` (RGBA uint8) at the request's working size."""
        return self._caption(image, flow.resize(image, *canvas(image, request.resolution)), request)

    def decompose(
        self,
        image: np.ndarray,
        request: QwenRequest,
        callback: flow.Callback | None = None,
    ) -> list[np.ndarray]:
        """``request.layers`` RGBA layers at the working size, bottom first."""
        import torch

        width, height = canvas(image, request.resolution)
        resized = flow.resize(image, width, height)
        prompt = request.prompt
        if prompt is None or prompt in {"", " "}:  # the reference captions these too
            prompt = self._caption(image, resized, request)
        options = speed.SpeedOptions.of(request.quantize, request.step_cache, request.cfg_truncate)
        self._set_fp8(options.fp8)
        parts = components.TorchComponents(
            self.parts,
            self.device,
            self.scheduler,
            speed.model_factory(transformer_model, options),
            before_decode=lambda: self._tile_if_needed(request),
            encoder_device=self.encoder_device,
        )
        start = time.perf_counter()
        with torch.inference_mode(), speed.step_cache(self.parts.transformer, options.step_cache):
            layers = flow.decompose(parts, np.asarray(resized), prompt, request, callback)
        if self.uncompiled:
            self.uncompiled = False
            seconds = time.perf_counter() - start
            console.info(f"--compile: the first image took {seconds:.1f} s (compiling)")
        return layers

    def _tile_if_needed(self, request: QwenRequest) -> None:
        """Under --offload auto, tile the VAE decode only when this request would not fit."""
        if self.footprint is None:
            return
        free = memory.device_memory(self.device, ours=True)
        tile = memory.needs_tiling(
            self.offload, self.footprint, request.resolution, request.layers, free
        )
        if tile == self.parts.vae.use_tiling:
            return
        if tile:
            self.parts.vae.enable_tiling()
            console.info(
                f"--offload auto: VAE tiling on for {request.layers} layers at "
                f"{request.resolution} (decoding them whole would not fit)"
            )
        else:
            self.parts.vae.disable_tiling()

    def _set_fp8(self, wanted: bool) -> None:
        """float8 linears in the blocks while requests ask for them (bf16 weights kept)."""
        if wanted and self.fp8 is None:
            speed.require_fp8(self.device)
            self.fp8 = speed.Float8Linears.apply(self.parts.transformer)
        elif not wanted and self.fp8 is not None:
            self.fp8.restore()
            self.fp8 = None

    def _caption(self, image: np.ndarray, resized: Any, request: QwenRequest) -> str:
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
                self.encoder_device,
            ),
        )


def canvas(image: np.ndarray, resolution: int) -> tuple[int, int]:
    """The working size (w, h) for ``image``; warns off the trained 640/1024 buckets."""
    if resolution not in flow.TRAINED_RESOLUTIONS:
        console.warn(f"resolution {resolution}: the model was trained on 640 and 1024 only")
    return flow.working_size(image.shape[1], image.shape[0], resolution)


def transformer_model(transformer: Any, cond_tokens: Any, embeds: list[Any], shapes: list) -> Any:
    """Adapt the diffusers transformer to ``model(latents, t) -> (cond, uncond)``: the
    condition image's tokens appended, the same timestep and ``additional_t_cond = 0``
    (RGB-free layered mode) for every prompt in ``embeds`` (cond, then uncond if any).

    One unpadded forward per prompt, as the reference runs them: a batch padded to the
    longer prompt needs an attention mask, which rules out flash attention, and even a
    batch of prompts of equal length is not the reference's arithmetic in bf16; two
    forwards run at the reference's speed and are bit-equal to it (bench/RESULTS.md has
    the measurements; tests/test_gpu_bench_tiny.py the check).
    """
    forwards = [_forward(transformer, cond_tokens, e, shapes) for e in embeds]

    def model(latents: Any, t: float) -> tuple[Any, Any]:
        outs = [forward(latents, t) for forward in forwards]
        return outs[0], (outs[1] if len(outs) > 1 else None)

    return model


def _forward(transformer: Any, cond_tokens: Any, text: Any, shapes: list) -> Any:
    """``forward(latents, t)``: the velocity for the first N tokens, one row per row of
    ``text`` (prompt embeddings of one length: no mask)."""
    import torch

    batch = text.shape[0]
    is_rgb = torch.zeros(batch, dtype=torch.long, device=text.device)
    img_shapes = [shapes] * batch

    def forward(latents: Any, t: float) -> Any:
        n = latents.shape[1]
        x = torch.cat([latents, cond_tokens], dim=1).expand(batch, -1, -1)
        timestep = torch.full((batch,), t, dtype=torch.float32, device=text.device)
        return transformer(
            hidden_states=x,
            timestep=timestep.to(latents.dtype) / 1000,
            encoder_hidden_states=text,
            encoder_hidden_states_mask=None,
            img_shapes=img_shapes,
            additional_t_cond=is_rgb,
            return_dict=False,
        )[0][:, :n]

    return forward


def pipeline_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a complete Qwen-Image-Layered checkpoint (None: it is).

    model_index.json must declare the pipeline's components, and layerctl.weights.check
    (JSON and safetensors headers only, cheap) must find nothing wrong.
    """
    import json

    from layerctl import weights

    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "no readable model_index.json (not a diffusers checkpoint folder)"
    missing = [name for name in PIPELINE_COMPONENTS if name not in index]
    if missing:
        return f"model_index.json lacks {', '.join(missing)} (not a Qwen-Image-Layered folder)"
    problems = weights.check(folder)
    if problems:
        first = problems[0]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return f"incomplete checkpoint: {first.path} {first.what}{more}; {weights.pull_hint()}"
    return None


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


def device_info(requested: str) -> dict[str, Any]:
    """The device :func:`pick_device` gives for ``requested`` and, for a CUDA card, its
    model and free memory; a note instead where torch or the device is missing."""
    if find_spec("torch") is None:
        return {
            "name": "cpu",
            "torch": None,
            "note": "torch missing: pip install 'layerctl[torch]'",
        }
    import torch

    info: dict[str, Any] = {"name": requested, "torch": torch.__version__}
    try:
        info["name"] = pick_device(requested)
    except BackendUnavailable as exc:
        return {**info, "note": str(exc)}
    device = torch.device(info["name"])
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        free, total = memory.device_memory(device)
        info.update(
            model=props.name,
            capability=f"{props.major}.{props.minor}",
            free_bytes=free,
            total_bytes=total,
        )
    return info


def pick_dtype(dtype: str, device: str) -> Any:
    """``auto``: bfloat16 on a GPU, float32 on the CPU."""
    import torch

    if dtype == "auto":
        dtype = "float32" if device == "cpu" else "bfloat16"
    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be auto, {', '.join(DTYPES)}, not {dtype!r}")
    return getattr(torch, dtype)


def place(parts: Any, offload: str, device: str) -> str:
    """Put the models on ``device`` as the --offload mode says and return the mode
    (memory.py; ``auto`` picks the fastest mode that fits the card's free memory)."""
    if offload not in memory.MODES:
        raise UsageError(f"--offload must be one of {', '.join(memory.MODES)}, not {offload!r}")
    modules = {name: getattr(parts, name) for name in memory.ORDER}
    return memory.place(modules, offload, device)
