"""Where the qwen backend's weights live while it runs: ``--offload`` modes and ``auto``.

Public API::

    MODES                                    # the values --offload accepts
    Footprint.published()                    # Qwen-Image-Layered sizes in bfloat16
    Footprint.of(text_encoder=, transformer=, vae=)   # sizes of loaded modules
    Footprint.of_folder(checkpoint_dir)      # sizes of its safetensors files
    Footprint.of_sources(weights.Sources)    # the same with a single-file (GGUF) transformer
    Footprint.for_format("Q4_0")             # published sizes, the transformer in FORMATS
    working_bytes(resolution, layers)        # activations of the largest stage
    need(mode, footprint, resolution, layers) -> bytes on the device
    choose(free, total, footprint, resolution, layers, host_free=None) -> Choice
    device_memory(device, ours=False) -> (free, total) | None; host_available() -> bytes
    needs_tiling(mode, footprint, resolution, layers, device_memory(...)) -> bool
    resolve(mode, device, footprint, resolution, layers) -> Choice   # auto -> a mode
    place(modules: {"text_encoder"|"transformer"|"vae": nn.Module}, mode, device)
    stream(module, "group"|"sequential", device)   # one model, diffusers' group offloading
    plan(device_info, weights, layers) -> MemoryPlan   # doctor: auto's pick per bucket
    Streaming.of({tensor name: bytes}); block_modules(tensor names)

Modes, from fastest to leanest (``need`` gives each one's device memory):

- ``none``: every model stays on the device (≈ 58 GB for the full model in bf16).
- ``model``: one model at a time on the device, moved whole when the next one runs
  (accelerate's ``cpu_offload_with_hook`` chain, what diffusers'
  ``enable_model_cpu_offload`` does): the transformer's 41 GB plus activations.
- ``encoder-cpu``: the transformer and VAE stay on the device, the text encoder runs on
  the host CPU (slow: seconds per prompt, minutes per caption): what lets a quantized
  transformer (GGUF Q4: ~12 GB) stay resident on a 16 GiB card.
- ``group``: transformer and text encoder stay on the host; one block at a time is copied
  in on a side CUDA stream while the previous block computes (diffusers'
  ``apply_group_offloading``, block level, descending into the text encoder's vision
  and language towers): 3.1 GB resident (the text encoder's embedding table and LM
  head plus two decoder layers), at the cost of moving the weights over PCIe once per
  forward. This is what makes 24 GB and 16 GB cards work.
- ``sequential``: the same, one leaf module at a time (leaf level): 2.2 GB, slowest.

``auto`` picks the fastest mode whose need fits in the device's free memory minus a
safety margin (``margin``: 1 GiB + 5 % of the card), allowing VAE tiling only when no
mode fits without it (``choose`` has the order); each request is then decoded whole
when it fits, tiled when not. The margin is there because running a card to its last
few hundred MB does not fail cleanly: the Windows driver then spills to shared system
memory and the reference pipeline crawls for hours at 23.9 of 24 GB (reported by users
on RTX 4090s). Nothing fits → ``sequential`` with a warning.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerctl import console
from layerctl.backends.capabilities import MemoryPlan, Placement
from layerctl.budget import host_available  # the one reader of MemAvailable; re-exported
from layerctl.errors import LayerctlError
from layerctl.weights import Sources, tensor_counts, tensor_sizes

GB = 10**9
GiB = 2**30
MODES = ("auto", "none", "model", "encoder-cpu", "group", "sequential")
BUCKETS = (640, 1024)  # the resolutions a plan covers: the trained ones
ORDER = ("text_encoder", "transformer", "vae")  # the order a decomposition uses them in
STREAMED = ("text_encoder", "transformer")  # the VAE is small and always moved whole

# Full model (Qwen/Qwen-Image-Layered) in bf16, computed from its tensors' names and
# sizes (Streaming.of; the published configs built on the meta device reproduce these
# in tests/test_offload.py): Qwen2.5-VL-7B has 2.18 GB outside its 62 blocks (the
# embedding table and the LM head, 1.09 GB each), the transformer 81 MB outside its 60
# blocks of 0.68 GB.
TEXT_ENCODER_BYTES = 16_584_333_648
TRANSFORMER_BYTES = 40_860_814_464
VAE_BYTES = 254 * 10**6
TEXT_ENCODER_GROUP = 2_183_010_128 + 2 * 466_115_584
TEXT_ENCODER_LEAF = 1_089_994_752  # the LM head
TRANSFORMER_GROUP = 81_058_944 + 2 * 679_662_592
TRANSFORMER_LEAF = 113_283_072
HIDDEN = 3072
# Activation bytes per token and hidden unit, per sequence in the batch: ≈ 16 live
# (token, d) bf16 tensors at the attention/MLP peak of a block (an estimate: the VAE's
# peak hides it in the measurement below).
ACT_TENSORS = 16
# The activation peak is the VAE decoding every layer in one batch: ≈ 22 full-resolution
# 96-channel bf16 maps per layer at 640 and at 1024 (bench/gpu_fullscale.py; the figures
# are in bench/RESULTS.md). 24 leaves a margin.
VAE_MAPS = 24 * 96
VAE_TILE = 256  # diffusers' default decode tile (tile_sample_min_height/width)
MAX_TEXT_TOKENS = 512
# A tensor inside a repeated block: its name's first all-digit part indexes a
# ModuleList / Sequential ("model.language_model.layers.3.mlp.up_proj.weight").
BLOCK_INDEX = re.compile(r"(?:^|\.)\d+(?=\.|$)")


# The transformer's bytes on the device per format, relative to bf16 (its linear weights
# are ~all of it). GGUF keeps blocks quantized on the device (diffusers dequantizes one
# layer at a time): Q8_0 is 34 bytes per 32 weights, 8.5 bits; Q4_0 and Q4_K_M are the
# published Qwen-Image GGUFs' sizes (QuantStack/Qwen-Image-GGUF: 11.9 and 13.1 GB, same
# architecture) over bf16's 40.87 GB, as some tensors stay in higher precision.
# ComfyUI's fp8mixed file (20.5 GB) is dequantized to the run dtype when it loads
# (diffusers has no scaled-fp8 loader), so on the device it is bf16's size.
FORMATS = {
    "bf16": 1.0,
    "fp8mixed": 1.0,
    "Q8_0": 8.5 / 16,
    "Q4_K_M": 13.1 / 40.87,
    "Q4_0": 11.9 / 40.87,
}


@dataclass(frozen=True)
class Streaming:
    """What streaming one model from the host keeps on the device, from its tensors'
    names and byte sizes: the model's structure, not a guess.

    Block level (diffusers' ``apply_group_offloading``, one block per group): the
    tensors outside the repeated blocks stay for the whole forward, plus two blocks —
    the one computing and the next one arriving on the side stream. Leaf level: two leaf
    modules (the largest is an embedding table or LM head).
    """

    outside: int  # bytes outside every repeated block
    block: int  # the largest block
    leaf: int  # the largest leaf module's tensors

    @classmethod
    def of(cls, sizes: Mapping[str, int]) -> Streaming:
        blocks: dict[str, int] = {}
        leaves: dict[str, int] = {}
        outside = 0
        for name, size in sizes.items():
            index = BLOCK_INDEX.search(name)
            if index:
                key = name[: index.end()]
                blocks[key] = blocks.get(key, 0) + size
            else:
                outside += size
            leaf = name.rpartition(".")[0]
            leaves[leaf] = leaves.get(leaf, 0) + size
        return cls(outside, max(blocks.values(), default=0), max(leaves.values(), default=0))

    @property
    def group(self) -> int:
        return self.outside + 2 * self.block

    @property
    def sequential(self) -> int:
        return 2 * self.leaf


def block_modules(names: Iterable[str]) -> list[str]:
    """The submodules diffusers' block-level offloading must descend into to reach a
    model's repeated blocks: it groups only its *direct* ModuleList children, so without
    these Qwen2.5-VL (blocks under ``model.language_model`` and ``model.visual``) would
    be moved whole, 16.6 GB at once."""
    found: dict[str, None] = {}
    for name in names:
        index = BLOCK_INDEX.search(name)
        if index:
            path = name[: index.start()].split(".")[:-1]  # the list's parents
            found.update(dict.fromkeys(path))
    return list(found)


@dataclass(frozen=True)
class Footprint:
    """Bytes each model needs on the device in the run dtype, and what streaming keeps
    resident (the larger of the two streamed models: they run one after the other)."""

    text_encoder: int
    transformer: int
    vae: int
    group: int  # resident with --offload group
    sequential: int  # resident with --offload sequential

    @classmethod
    def for_format(cls, fmt: str) -> Footprint:
        """The released model with its transformer in ``fmt`` (a key of FORMATS), bf16 else."""
        k = FORMATS[fmt]
        return cls(
            text_encoder=TEXT_ENCODER_BYTES,
            transformer=int(TRANSFORMER_BYTES * k),
            vae=VAE_BYTES,
            group=max(TEXT_ENCODER_GROUP, int(TRANSFORMER_GROUP * k)),
            sequential=2 * max(TEXT_ENCODER_LEAF, int(TRANSFORMER_LEAF * k)),
        )

    @classmethod
    def published(cls, bytes_per_param: int = 2) -> Footprint:
        """The released checkpoint's sizes (bf16 by default; 4 for float32)."""
        k = bytes_per_param / 2
        return cls(
            text_encoder=int(TEXT_ENCODER_BYTES * k),
            transformer=int(TRANSFORMER_BYTES * k),
            vae=int(VAE_BYTES * k),
            group=int(max(TEXT_ENCODER_GROUP, TRANSFORMER_GROUP) * k),
            sequential=int(2 * max(TEXT_ENCODER_LEAF, TRANSFORMER_LEAF) * k),
        )

    @classmethod
    def of(cls, **modules: Any) -> Footprint:
        """Sizes of loaded modules (any not given counts as 0)."""
        return cls.from_sizes(
            {name: tensor_bytes(modules[name]) if name in modules else {} for name in ORDER}
        )

    @classmethod
    def of_folder(cls, root: Path) -> Footprint:
        """Sizes of a diffusers folder's safetensors (headers only; stored in bf16, as
        they run on GPUs)."""
        return cls.of_sources(Sources(root))

    @classmethod
    def of_sources(cls, found: Sources) -> Footprint:
        """:meth:`of_folder`, with a single-file transformer counted as it will sit on the
        device (``transformer_sizes``) and a single VAE file by its header."""
        sizes: dict[str, dict[str, int]] = {}
        for name in ORDER:
            sizes[name] = {}
            for path in sorted((found.base / name).glob("*.safetensors")):
                sizes[name].update(tensor_sizes(path)[0])
        if found.transformer is not None:
            sizes["transformer"] = transformer_sizes(found.transformer)
        if found.vae is not None:
            sizes["vae"] = tensor_sizes(found.vae)[0]
        return cls.from_sizes(sizes)

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, Mapping[str, int]]) -> Footprint:
        """From ``{model: {tensor name: bytes}}``."""
        streaming = [Streaming.of(sizes[name]) for name in STREAMED]
        return cls(
            **{name: sum(sizes[name].values()) for name in ORDER},
            group=max(s.group for s in streaming),
            sequential=max(s.sequential for s in streaming),
        )

    @property
    def total(self) -> int:
        return self.text_encoder + self.transformer + self.vae

    @property
    def streamed(self) -> int:
        """Bytes group/sequential offloading holds on the host (pinned for fast copies)."""
        return self.text_encoder + self.transformer


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
        "encoder-cpu": fp.transformer + fp.vae,
        "group": fp.group + fp.vae,
        "sequential": fp.sequential + fp.vae,
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

    Whole (exact) VAE decoding is preferred to tiled (tile-blended, not bit-identical)
    among the modes that keep the transformer on the device (none, model, encoder-cpu),
    and any of those, tiled, to streaming the transformer (group), which copies all of
    it over PCIe twice a step: a quantized transformer stays on a small card only so.
    ``sequential`` streams leaf by leaf, many small copies per step, far slower than any
    of them, so it comes last, only when nothing else fits even with a tiled decode.
    ``host_free`` is host memory before the weights are loaded (``layerctl doctor``):
    offloading modes keep the streamed weights there, so they are skipped when those do not
    fit. Once the weights are loaded (``place``) they are on the host already and it is left
    out.
    """
    budget = free - margin(total)
    host_short = host_free is not None and fp.streamed > host_free
    resident = ("none", "model", "encoder-cpu")  # the transformer stays for every step
    candidates = [(m, False) for m in resident] + [(m, True) for m in resident]
    candidates += [("group", False), ("group", True)]
    for mode, tiling in [*candidates, ("sequential", False), ("sequential", True)]:
        if mode != "none" and host_short:
            continue
        n = need(mode, fp, resolution, layers, tiling)
        if n <= budget:
            why = f"needs {n / GB:.1f} GB, {budget / GB:.1f} GB free after the margin"
            return Choice(mode, n, budget, why + (", VAE tiling on" if tiling else ""), tiling)
    n = need("sequential", fp, resolution, layers, True)
    why = (
        f"nothing fits: even sequential with VAE tiling needs {n / GB:.1f} GB and "
        f"{budget / GB:.1f} GB is free after the margin; try fewer layers or --resolution 640"
    )
    if host_short:
        why = (
            f"nothing fits: offloading keeps {fp.streamed / GB:.1f} GB of weights in host "
            f"memory and {host_free / GB:.1f} GB is available, and the device is too small "
            "to hold them"
        )
    return Choice("sequential", n, budget, why, True)


def device_memory(device: Any, ours: bool = False) -> tuple[int, int] | None:
    """(free, total) bytes of a CUDA device, within this process's memory-fraction cap;
    None where the notion does not apply. ``ours``: count what this process's caching
    allocator holds as free too (``need`` includes the weights it placed there)."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    # The per-process cap is kept per device index; plain "cuda" means the current one.
    index = device.index if device.index is not None else torch.cuda.current_device()
    free, total = torch.cuda.mem_get_info(index)
    reserved = torch.cuda.memory_reserved(index)
    fraction = getattr(torch.cuda, "get_per_process_memory_fraction", lambda _: 1.0)(index)
    if fraction < 1.0:  # capped with set_per_process_memory_fraction: a smaller card
        total = int(total * fraction)
        free = min(free, total - reserved)
    return int(free + (reserved if ours else 0)), int(total)


def needs_tiling(
    mode: str, fp: Footprint, resolution: int, layers: int, memory: tuple[int, int] | None
) -> bool:
    """Whether this request's VAE decode must be tiled to fit ``memory`` (free, total;
    None: not a CUDA device) in ``mode``: ``--offload auto`` decides it per request,
    so that a small request is decoded whole (exact) on a card where a large one is not."""
    if memory is None:
        return False
    free, total = memory
    return need(mode, fp, resolution, layers) > free - margin(total)


def resolve(
    mode: str, device: Any, fp: Footprint, resolution: int = 640, layers: int = 4
) -> Choice:
    """``mode`` as given, or for ``auto`` the choice for this device's free memory (the
    weights are loaded on the host already, so host memory does not limit the modes).

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
    return choose(*memory, fp, resolution, layers)


def plan(
    device: dict[str, Any], weights: str | None, layers: int, base: str | None = None
) -> MemoryPlan:
    """What ``--offload auto`` would pick at each bucket before anything is loaded, on
    ``device`` (``free_bytes``/``total_bytes`` when it is a CUDA card), from the sizes in
    the weights (a folder, or a single-file transformer over ``base``) when complete, else
    the published ones; host memory before the load limits the offloading modes. On a
    CUDA card also the pick for the released model with its transformer in each of
    FORMATS. Off CUDA: whether float32 fits the host."""
    fp, source = _footprint(weights, base)
    host = host_available()
    placements = {}
    by_format: dict[str, dict[int, Placement]] = {}
    for resolution in BUCKETS:
        if "free_bytes" in device:
            c = choose(device["free_bytes"], device["total_bytes"], fp, resolution, layers, host)
            placements[resolution] = Placement(c.mode, c.reason, c.need)
            for fmt in FORMATS:
                c = choose(
                    device["free_bytes"],
                    device["total_bytes"],
                    Footprint.for_format(fmt),
                    resolution,
                    layers,
                    host,
                )
                by_format.setdefault(fmt, {})[resolution] = Placement(c.mode, c.reason, c.need)
        else:
            need_host = 2 * fp.total + working_bytes(resolution, layers)
            fits = "" if host is None or host >= need_host else f", {host / GB:.1f} GB available"
            why = f"not a CUDA device; float32 needs ~{need_host / GB:.1f} GB of host memory"
            placements[resolution] = Placement("none", why + (fits and f"{fits}: too little"))
    sizes = {"text_encoder": fp.text_encoder, "transformer": fp.transformer, "vae": fp.vae}
    return MemoryPlan(device, sizes, source, placements, by_format)


def _footprint(weights: str | None, base: str | None = None) -> tuple[Footprint, str]:
    from layerctl import weights as registry

    try:
        found = registry.sources(weights, base)
    except LayerctlError:
        found = None
    if found is None or registry.source_problems(found):
        return Footprint.published(), "published sizes (bf16)"
    if found.transformer is None:
        return Footprint.of_folder(found.base), "weights folder"
    return Footprint.of_sources(found), f"{found.transformer.name} over {found.base}"


def transformer_sizes(path: Path) -> dict[str, int]:
    """``{tensor name: bytes on the device}`` of a single-file transformer: a GGUF's
    quantized tensors as stored (they stay quantized), everything else in bf16 (the run
    dtype on a GPU; ComfyUI's scaled fp8 is dequantized when it loads)."""
    from layerctl.backends.layered.load import DROPPED, MARKERS, PREFIXES, SCALES

    if path.suffix == ".gguf":
        from gguf import GGMLQuantizationType, GGUFReader

        plain = (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16)
        return {
            t.name: 2 * int(t.n_elements) if t.tensor_type in plain else int(t.n_bytes)
            for t in GGUFReader(path).tensors
        }
    sizes = {}
    for name, count in tensor_counts(path).items():
        if name in MARKERS or name.endswith(SCALES + DROPPED):
            continue
        for prefix in PREFIXES:
            name = name.removeprefix(prefix)
        sizes[name] = 2 * count
    return sizes


def place(modules: Mapping[str, Any], mode: str, device: Any) -> str:
    """Put the models where ``mode`` says and return the mode used. They arrive on the
    host. ``auto`` is resolved here for the 1024 bucket with 4 layers (the request is not
    known at load time; the larger bucket keeps both safe, VAE tiling allowed: whether a
    request needs it is decided per request, ``needs_tiling``). Works for any nn.Module."""
    import torch

    device = torch.device(device)
    present = [name for name in ORDER if modules.get(name) is not None]
    fp = Footprint.of(**{name: modules[name] for name in present})
    if mode == "auto":
        choice = resolve("auto", device, fp, resolution=1024, layers=4)
        mode = choice.mode
        if "nothing fits" in choice.reason:
            console.warn(f"--offload auto: {choice.reason}")
        elif device.type == "cuda":
            console.info(f"--offload auto: {mode} (at 1024 with 4 layers it {choice.reason})")
    if mode == "none" or device.type == "cpu":
        for name in present:
            modules[name].to(device)
        return mode
    if mode == "encoder-cpu":  # the text encoder stays where it was loaded: the host
        for name in present:
            if name != "text_encoder":
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
    pin = _can_pin(fp.streamed)
    for name in present:
        if name in STREAMED:
            stream(modules[name], mode, device, pin=pin)
        else:  # the VAE: small, and its convolutions are not organised in blocks
            modules[name].to(device)
    return mode


def stream(module: Any, mode: str, device: Any, pin: bool = True) -> None:
    """Keep ``module`` on the host and copy it to ``device`` group by group as it runs
    (diffusers' group offloading: ``group`` = one repeated block at a time,
    ``sequential`` = one leaf module). On CUDA the next group is copied on a side stream
    while the current one computes, from pinned host memory unless ``pin`` is False."""
    import torch
    from diffusers.hooks import apply_group_offloading

    device = torch.device(device)
    streams = device.type == "cuda"
    level = {"group": "block_level", "sequential": "leaf_level"}[mode]
    names = [name for name, _ in module.named_parameters()]
    apply_group_offloading(
        module,
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type=level,
        num_blocks_per_group=1 if mode == "group" else None,
        block_modules=(block_modules(names) or None) if mode == "group" else None,
        use_stream=streams,
        non_blocking=streams,
        low_cpu_mem_usage=not pin,
    )


def _can_pin(streamed: int) -> bool:
    """diffusers pins a copy of every streamed weight up front (the originals are freed
    by the first forward); where the host cannot hold both for that moment, it pins
    block by block as it copies instead: slower, but no swapping."""
    host = host_available()
    if host is None or host >= streamed + GiB:
        return True
    console.info(
        f"offloading: {host / GB:.1f} GB of host memory is too little to pin a copy of "
        f"the {streamed / GB:.1f} GB of weights up front; pinning block by block (slower)"
    )
    return False


def tensor_bytes(module: Any) -> dict[str, int]:
    """``{name: bytes}`` of a module's parameters and buffers."""
    named = (*module.named_parameters(), *module.named_buffers())
    return {name: t.numel() * t.element_size() for name, t in named}
