"""Where the qwen backend's weights live while it runs: ``--offload`` modes and ``auto``.

Public API::

    MODES                                    # the values --offload accepts
    Footprint.published()                    # Qwen-Image-Layered sizes in bfloat16
    Footprint.of(text_encoder=, transformer=, vae=)   # sizes of loaded modules
    Footprint.of_folder(checkpoint_dir)      # sizes of its safetensors files
    working_bytes(resolution, layers)        # activations of the largest stage
    need(mode, footprint, resolution, layers) -> bytes on the device
    choose(free, total, footprint, resolution, layers, host_free=None) -> Choice
    device_memory(device) -> (free, total) | None; host_available() -> bytes | None
    resolve(mode, device, footprint, resolution, layers) -> Choice   # auto -> a mode
    place(modules: {"text_encoder"|"transformer"|"vae": nn.Module}, mode, device)

Modes, from fastest to leanest (``need`` gives each one's device memory):

- ``none``: every model stays on the device (≈ 58 GB for the full model in bf16).
- ``model``: one model at a time on the device, moved whole when the next one runs
  (accelerate's ``cpu_offload_with_hook`` chain, what diffusers'
  ``enable_model_cpu_offload`` does): the transformer's 41 GB plus activations.
- ``group``: transformer and text encoder stay on the host; one block at a time is copied
  in on a side CUDA stream while the previous block computes (diffusers'
  ``apply_group_offloading``, block level): a few GB, at the cost of moving the weights
  over PCIe once per forward. This is what makes 24 GB and 16 GB cards work.
- ``sequential``: the same, one layer at a time (leaf level): the least memory, slowest.

``auto`` picks the fastest mode whose need fits in the device's free memory minus a
safety margin (``margin``: 1 GiB + 5 % of the card), adding VAE tiling only when no mode
fits without it. The margin is there because running a card to its last few hundred MB
does not fail cleanly: the Windows driver then spills to shared system memory and the
reference pipeline crawls for hours at 23.9 of 24 GB (reported by users on RTX 4090s).
Nothing fits → ``sequential`` with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerctl import console

GB = 10**9
GiB = 2**30
MODES = ("auto", "none", "model", "group", "sequential")
ORDER = ("text_encoder", "transformer", "vae")  # the order a decomposition uses them in

# Full model (Qwen/Qwen-Image-Layered), bf16: the transformer has 60 blocks of
# 36·d² parameters (d = 3072) plus ≈ 30 M outside them; Qwen2.5-VL-7B has 8.29 B
# parameters, of which 2 × 545 M in the embedding table and the LM head.
HIDDEN = 3072
BLOCK_BYTES = 36 * HIDDEN * HIDDEN * 2
TRANSFORMER_BYTES = 60 * BLOCK_BYTES + 60 * 10**6
TEXT_ENCODER_BYTES = 16_580 * 10**6
VAE_BYTES = 254 * 10**6
# What group offloading keeps on the device at once: the text encoder's modules outside
# its layer list (embeddings, LM head, vision merger ≈ 2.3 GB) plus two layers in
# flight; the transformer stage needs less (two 0.68 GB blocks).
STREAMED_RESIDENT = 3_300 * 10**6
# Activation bytes per token and hidden unit, per sequence in the batch: ≈ 16 live
# (token, d) bf16 tensors at the attention/MLP peak of a block (an estimate: the VAE's
# peak hides it in the measurement below).
ACT_TENSORS = 16
# Measured by bench/gpu_fullscale.py (H200, bf16, diffusers 0.42.1, 4 layers): both
# pipelines peak at 48.1 GB (640) and 58.9 GB (1024), 7.0 and 17.8 GB above the
# weights, when the VAE decodes every layer in one batch: ≈ 22 full-resolution
# 96-channel bf16 maps per layer at both sizes. 24 leaves a margin.
VAE_MAPS = 24 * 96
VAE_TILE = 256  # diffusers' default decode tile (tile_sample_min_height/width)
MAX_TEXT_TOKENS = 512


@dataclass(frozen=True)
class Footprint:
    """Bytes each model needs on the device in the run dtype."""

    text_encoder: int
    transformer: int
    vae: int
    streamed: int  # what group offloading keeps resident

    @classmethod
    def published(cls, bytes_per_param: int = 2) -> Footprint:
        """The released checkpoint's sizes (bf16 by default; 4 for float32)."""
        k = bytes_per_param / 2
        return cls(
            text_encoder=int(TEXT_ENCODER_BYTES * k),
            transformer=int(TRANSFORMER_BYTES * k),
            vae=int(VAE_BYTES * k),
            streamed=int(STREAMED_RESIDENT * k),
        )

    @classmethod
    def of(cls, **modules: Any) -> Footprint:
        """Sizes of loaded modules; ``streamed`` scales the published share with them."""
        return cls._scaled(
            {name: _module_bytes(modules[name]) if name in modules else 0 for name in ORDER}
        )

    @classmethod
    def of_folder(cls, root: Path) -> Footprint:
        """Sizes of a diffusers folder's safetensors (stored in bf16, as they run on GPUs)."""
        return cls._scaled(
            {
                name: sum(f.stat().st_size for f in (root / name).glob("*.safetensors"))
                for name in ORDER
            }
        )

    @classmethod
    def _scaled(cls, sizes: dict[str, int]) -> Footprint:
        """``streamed`` scales the published resident share with the model's size."""
        scale = (sizes["text_encoder"] + sizes["transformer"]) / (
            TEXT_ENCODER_BYTES + TRANSFORMER_BYTES
        )
        return cls(**sizes, streamed=int(STREAMED_RESIDENT * scale))

    @property
    def total(self) -> int:
        return self.text_encoder + self.transformer + self.vae


@dataclass(frozen=True)
class Choice:
    mode: str
    need: int  # bytes on the device in that mode
    budget: int  # free bytes minus the margin
    reason: str
    vae_tiling: bool = False  # needed for the VAE decode to fit


def working_bytes(
    resolution: int, layers: int, vae_tiling: bool = False, hidden: int = HIDDEN
) -> int:
    """Activation memory of the larger stage: a transformer block on cond + uncond, or
    the VAE decoding every layer in one batch (bf16), or one tile at a time."""
    tokens = (layers + 2) * math.ceil(resolution / 16) ** 2 + MAX_TEXT_TOKENS
    transformer = 2 * tokens * hidden * ACT_TENSORS * 2
    side = min(resolution, VAE_TILE) if vae_tiling else resolution
    vae = layers * VAE_MAPS * side * side * 2
    return max(transformer, vae)


def need(
    mode: str, fp: Footprint, resolution: int = 640, layers: int = 4, vae_tiling: bool = False
) -> int:
    """Device bytes a decomposition needs in ``mode`` (weights resident + activations)."""
    resident = {
        "none": fp.total,
        "model": max(fp.text_encoder, fp.transformer) + fp.vae,
        "group": fp.streamed + fp.vae,
        "sequential": fp.streamed // 2 + fp.vae,
    }
    if mode not in resident:
        raise ValueError(f"no memory need for offload mode {mode!r}")
    return resident[mode] + working_bytes(resolution, layers, vae_tiling)


def margin(total: int) -> int:
    """Memory kept free on purpose: 1 GiB + 5 % of the card (see the module docstring)."""
    return GiB + total // 20


def choose(
    free: int,
    total: int,
    fp: Footprint,
    resolution: int = 640,
    layers: int = 4,
    host_free: int | None = None,
) -> Choice:
    """The fastest mode that fits ``free`` device bytes with the margin to spare.

    Modes that leave the output unchanged come first; only when none fits is VAE tiling
    (tile-blended decoding, not bit-identical) added. Offloading modes also need the
    offloaded weights in host memory; when ``host_free`` is known and too small for
    them, those modes are skipped.
    """
    budget = free - margin(total)
    for tiling in (False, True):
        for mode in ("none", "model", "group", "sequential"):
            n = need(mode, fp, resolution, layers, tiling)
            on_host = 0 if mode == "none" else fp.text_encoder + fp.transformer
            if host_free is not None and on_host > host_free:
                continue
            if n <= budget:
                why = f"needs {n / GB:.1f} GB, {budget / GB:.1f} GB free after the margin"
                return Choice(mode, n, budget, why + (", VAE tiling on" if tiling else ""), tiling)
    n = need("sequential", fp, resolution, layers, True)
    why = (
        f"nothing fits: even sequential with VAE tiling needs {n / GB:.1f} GB and "
        f"{budget / GB:.1f} GB is free after the margin; try fewer layers or --resolution 640"
    )
    return Choice("sequential", n, budget, why, True)


def device_memory(device: Any) -> tuple[int, int] | None:
    """(free, total) bytes of a CUDA device, within this process's memory-fraction cap;
    None where the notion does not apply."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    # The per-process cap is kept per device index; plain "cuda" means the current one.
    index = device.index if device.index is not None else torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)(index)
    if fraction < 1.0:  # capped with set_per_process_memory_fraction: a smaller card
        total = int(total * fraction)
        free = min(free, total - torch.cuda.memory_reserved(index))
    return int(free), int(total)


def host_available() -> int | None:
    """Host memory available without swapping (Linux /proc/meminfo), else psutil's."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def resolve(
    mode: str, device: Any, fp: Footprint, resolution: int = 640, layers: int = 4
) -> Choice:
    """``mode`` as given, or for ``auto`` the choice for this device's free memory.

    Off CUDA (CPU, Apple unified memory) there is nothing to offload to: ``none``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown offload mode {mode!r}; one of {', '.join(MODES)}")
    memory = device_memory(device)
    if mode != "auto":
        n = need(mode, fp, resolution, layers)
        return Choice(mode, n, memory[0] - margin(memory[1]) if memory else 0, "as requested")
    if memory is None:
        return Choice("none", need("none", fp, resolution, layers), 0, "not a CUDA device")
    return choose(*memory, fp, resolution, layers, host_available())


def place(modules: Mapping[str, Any], mode: str, device: Any) -> str:
    """Put the models where ``mode`` says and return the mode used. They arrive on the
    host. ``auto`` is resolved here for the 1024 bucket with 4 layers (the request is not
    known at load time; the larger bucket keeps both safe). Works for any nn.Module."""
    import torch

    device = torch.device(device)
    present = [name for name in ORDER if modules.get(name) is not None]
    if mode == "auto":
        fp = Footprint.of(**{name: modules[name] for name in present})
        choice = resolve("auto", device, fp, resolution=1024, layers=4)
        mode = choice.mode
        if choice.vae_tiling and modules.get("vae") is not None:
            modules["vae"].enable_tiling()
        if "nothing fits" in choice.reason:
            console.warn(f"--offload auto: {choice.reason}")
        elif device.type == "cuda":
            console.info(f"--offload auto: {mode} ({choice.reason})")
    if mode == "none" or device.type == "cpu":
        for name in present:
            modules[name].to(device)
        return mode
    if mode == "model":
        from accelerate import cpu_offload_with_hook

        hook = None
        for name in present:
            _, hook = cpu_offload_with_hook(modules[name], device, prev_module_hook=hook)
        return mode
    if mode not in ("group", "sequential"):
        raise ValueError(f"unknown offload mode {mode!r}; one of {', '.join(MODES)}")
    from diffusers.hooks import apply_group_offloading

    streams = device.type == "cuda"
    for name in present:
        if name == "vae":  # small; its convolutions are not organised in blocks
            modules[name].to(device)
            continue
        apply_group_offloading(
            modules[name],
            onload_device=device,
            offload_device=torch.device("cpu"),
            offload_type="block_level" if mode == "group" else "leaf_level",
            num_blocks_per_group=1 if mode == "group" else None,
            use_stream=streams,
            non_blocking=streams,
        )
    return mode


def _module_bytes(module: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))
