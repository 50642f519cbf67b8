"""Full-scale speed and memory of the qwen backend against diffusers' pipeline, one GPU.

Builds the published Qwen-Image-Layered transformer (60 blocks, 24 heads × 128,
joint_attention_dim 3584, Layer3D RoPE, additional_t_cond) and the RGBA-VAE with random
bf16 weights directly on the GPU — speed does not depend on the values, so nothing is
downloaded — and random prompt embeddings instead of the 7B text encoder (the caption is
excluded). Then, in one process, on the same inputs and the same module objects, it
alternates runs of diffusers' ``QwenImageLayeredPipeline`` ("reference") and ours,
recording per-step latency (device events), end-to-end time (image in, layers out) and
peak device memory, checks that our exact mode lands on the reference's final latents
(max abs difference), counts the FLOP floor and reports MFU against a measured bf16
matrix-product rate. Optional sections: ``--equal-prompts`` (cond and uncond of one
length: ours batches them), ``--compile`` (regional torch.compile of the blocks, compile
time reported), ``--speed`` (CFG truncation, step cache, fp8 — each with its deviation)
and ``--offload-check`` (``--offload auto`` under ``--offload-caps`` GB: mode picked,
peak memory, time). Each section runs only while ``--budget-s`` (counted from the start)
leaves its estimated time; a failing section is reported and the others go on; the
JSON is rewritten after every section and the table is printed last.

    python bench/gpu_fullscale.py --speed --compile --offload-check   # one H100, < 8 min
    python bench/gpu_fullscale.py --buckets 640:6:1,1024:3:1 --warmup-steps 1 \
        --equal-prompts --compile --offload-check --budget-s 260    # focused, ~4 min
    python bench/gpu_fullscale.py --tiny [--dtype bfloat16]   # the same code path, CPU
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROMPT_TOKENS = 200  # a typical English caption after the template's 34 dropped tokens
NEGATIVE_TOKENS = 6  # " " plus the template's closing tokens
SEED = 0
PROMPT = "(embeddings given)"  # any non-empty prompt: the embeddings are what counts
CFG = 4.0
# Seconds per denoising step of either pipeline on the H200 (bench/RESULTS.md), bf16:
# what --budget-s uses to skip a section that would not finish in time.
STEP_S = {640: 0.9, 1024: 3.2}

TESTS = Path(__file__).resolve().parents[1] / "tests"  # tiny_qwen: the published configs

FULL_TRANSFORMER = dict(
    num_layers=60,
    attention_head_dim=128,
    num_attention_heads=24,
    joint_attention_dim=3584,
    in_channels=64,
    out_channels=16,
    patch_size=2,
    axes_dims_rope=(16, 56, 56),
    use_layer3d_rope=True,
    use_additional_t_cond=True,
)
# Qwen2.5-VL-7B-Instruct, the text encoder of the released checkpoint.
FULL_TEXT_ENCODER = {
    "text_config": {
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 3584,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
    "vocab_size": 152064,
    "tie_word_embeddings": False,
}
TINY_TEXT_ENCODER = {
    "text_config": {
        **FULL_TEXT_ENCODER["text_config"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 1000,
        "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
    },
    "vision_config": {
        **FULL_TEXT_ENCODER["vision_config"],
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    },
    "vocab_size": 1000,
    "tie_word_embeddings": False,
}
TINY_TRANSFORMER = {
    **FULL_TRANSFORMER,
    "num_layers": 2,
    "attention_head_dim": 32,
    "num_attention_heads": 2,
    "joint_attention_dim": 64,
    "axes_dims_rope": (8, 12, 12),
}


@dataclass(frozen=True)
class Spec:
    """One benchmark configuration."""

    device: str
    dtype: str
    transformer: dict[str, Any]
    vae: dict[str, Any]
    layers: int
    buckets: tuple[tuple[int, int, int], ...]  # (resolution, steps, alternating reps)
    warmup_steps: int
    text_tokens: tuple[int, int] = (PROMPT_TOKENS, NEGATIVE_TOKENS)
    # --cfg-truncate of the speed section: 10 steps at 640 on the released (linear)
    # schedule cut the last 2; the tiny run's 2 steps (σ = 1, 0.71) need 0.75 to cut one.
    cfg_truncate: float = 0.5


FULL = Spec(
    "cuda",
    "bfloat16",
    FULL_TRANSFORMER,
    {"input_channels": 4},
    4,
    ((640, 10, 2), (1024, 4, 1)),
    2,
)
TINY = Spec(
    "cpu",
    "float32",
    TINY_TRANSFORMER,
    {"input_channels": 4, "base_dim": 8, "num_res_blocks": 1},
    2,
    ((640, 2, 1),),
    0,
    (7, 3),
    cfg_truncate=0.75,
)


@dataclass
class Run:
    """One decomposition: who ran it, how long each step and the whole took, peak memory."""

    name: str
    resolution: int
    steps: int
    step_s: list[float]
    total_s: float
    peak_gb: float | None
    latents: Any = field(default=None, repr=False)


@dataclass
class Row:
    name: str
    resolution: int
    steps: int
    step_ms: float
    total_s: float
    peak_gb: float | None
    mfu: float | None
    max_abs_diff: float | None = None
    note: str = ""


class Clock:
    """Device-side timestamps (CUDA events) so the loop is never synchronised to time it."""

    def __init__(self, device: Any) -> None:
        import torch

        self.cuda = device.type == "cuda"
        self._torch = torch

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def seconds(self, a: Any, b: Any) -> float:
        if not self.cuda:
            return b - a
        b.synchronize()
        return a.elapsed_time(b) / 1000


# --- models and inputs ----------------------------------------------------------------


def scheduler_config() -> dict[str, Any]:
    """Qwen/Qwen-Image-Layered's scheduler_config.json, as published (one copy, kept
    beside the tests' tiny checkpoint that is saved with it)."""
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from tiny_qwen import SCHEDULER_CONFIG

    return dict(SCHEDULER_CONFIG)


def build_models(spec: Spec, device: Any, dtype: Any) -> tuple[Any, Any]:
    """Transformer and RGBA-VAE with random weights, created on ``device`` in ``dtype``.

    Parameters are allocated and initialised where they will run (no host copy, no
    float32 detour); the RoPE tables the constructor computes stay float32/complex.
    """
    import torch
    from diffusers import AutoencoderKLQwenImage, QwenImageTransformer2DModel

    torch.manual_seed(SEED)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            transformer = QwenImageTransformer2DModel(**spec.transformer)
            vae = AutoencoderKLQwenImage(**spec.vae)
    finally:
        torch.set_default_dtype(previous)
    return transformer.eval().requires_grad_(False), vae.eval().requires_grad_(False)


def build_text_encoder(config: dict[str, Any], dtype: Any, device: Any = "cpu") -> Any:
    """Qwen2.5-VL with random weights on ``device`` in ``dtype`` (no float32 detour: the
    7B model is 16.6 GB in bf16). Its parameters start on the meta device and are each
    set to a slice of one N(0, 0.02) pool as large as the largest parameter: drawing
    8 B normal numbers on the host would take about a minute, and speed does not depend
    on the values. The buffers (RoPE frequencies) are computed as usual."""
    import torch
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    with init_empty_weights(include_buffers=False):
        model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))
    shapes = {name: p.shape for name, p in model.named_parameters()}
    largest = max(math.prod(shape) for shape in shapes.values())
    g = torch.Generator().manual_seed(SEED)
    pool = torch.empty(largest, dtype=dtype).normal_(0, 0.02, generator=g)
    for name, shape in shapes.items():
        value = pool[: math.prod(shape)].view(shape).clone()
        set_module_tensor_to_device(model, name, device, value=value, dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def encode_prompt(text_encoder: Any, device: Any, tokens: int = PROMPT_TOKENS) -> tuple[float, Any]:
    """(seconds, last hidden state) of one prompt-embedding forward on random token ids,
    the call ``flow.prompt_embeds`` makes (hooks and offloading included)."""
    import torch

    vocab = text_encoder.config.get_text_config().vocab_size
    ids = torch.randint(0, vocab, (1, tokens), generator=torch.Generator().manual_seed(SEED))
    ids = ids.to(device)
    clock = Clock(torch.device(device))
    start = clock.mark()
    with torch.inference_mode():
        out = text_encoder(
            input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True
        )
    return clock.seconds(start, clock.mark()), out.hidden_states[-1]


@dataclass
class Inputs:
    image: Any  # PIL RGBA, square
    cond: Any  # (1, T, joint_dim) prompt embeddings
    uncond: Any  # (1, T', joint_dim) negative-prompt embeddings


def make_inputs(spec: Spec, resolution: int, device: Any, dtype: Any) -> Inputs:
    """A random RGBA image at the bucket's size and random prompt embeddings (seeded)."""
    import numpy as np
    import torch
    from PIL import Image

    rng = np.random.default_rng(SEED)
    pixels = rng.integers(0, 256, (resolution, resolution, 4), dtype=np.uint8)
    g = torch.Generator("cpu").manual_seed(SEED)
    dim = spec.transformer["joint_attention_dim"]
    cond, uncond = (torch.randn(1, n, dim, generator=g) for n in spec.text_tokens)
    return Inputs(Image.fromarray(pixels, "RGBA"), cond.to(device, dtype), uncond.to(device, dtype))


class _NoTextEncoder:
    """What the reference pipeline reads from its text encoder when embeddings are given."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype


def reference_pipeline(transformer: Any, vae: Any, dtype: Any) -> Any:
    """diffusers' QwenImageLayeredPipeline over the given modules, fed embeddings."""
    from diffusers import FlowMatchEulerDiscreteScheduler, QwenImageLayeredPipeline

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler_config())
    pipe = QwenImageLayeredPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        processor=None,
        transformer=transformer,
    )
    pipe.text_encoder = _NoTextEncoder(dtype)  # only its dtype is read
    pipe.set_progress_bar_config(disable=True)
    return pipe


# --- the two runners ------------------------------------------------------------------


def run_reference(pipe: Any, inputs: Inputs, layers: int, resolution: int, steps: int) -> Run:
    import torch

    clock = Clock(pipe.transformer.device)
    marks: list[Any] = []
    captured: dict[str, Any] = {}

    def on_step(_pipe: Any, i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        marks.append(clock.mark())
        if i == steps - 1:
            captured["latents"] = kwargs["latents"].clone()
        return {}

    _reset_peak()
    start, wall = clock.mark(), time.perf_counter()
    pipe(
        image=inputs.image,
        prompt=PROMPT,
        prompt_embeds=inputs.cond,
        prompt_embeds_mask=_all_valid(inputs.cond),
        negative_prompt_embeds=inputs.uncond,
        negative_prompt_embeds_mask=_all_valid(inputs.uncond),
        true_cfg_scale=CFG,
        layers=layers,
        num_inference_steps=steps,
        resolution=resolution,
        cfg_normalize=True,
        generator=torch.Generator("cpu").manual_seed(SEED),
        output_type="np",
        callback_on_step_end=on_step,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    total = time.perf_counter() - wall
    steps_s = [clock.seconds(a, b) for a, b in zip([start, *marks[:-1]], marks, strict=True)]
    return Run("reference", resolution, steps, steps_s, total, _peak_gb(), captured["latents"])


def _all_valid(embeds: Any) -> Any:
    import torch

    return torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)


class TextStandIn:
    """Tokenizer + text encoder in place of the 7B Qwen2.5-VL: each known prompt maps to
    fixed random embeddings, returned after the template's dropped positions, so the
    backend's own prompt-encoding code runs unchanged."""

    def __init__(self, embeds: dict[str, Any], dtype: Any) -> None:
        self.prompts = list(embeds)
        self.embeds = list(embeds.values())
        self.dtype = dtype

    def tokenizer(self, texts: list[str], **_: Any) -> Any:
        import torch

        from layerctl.backends.layered.flow import DROP_TOKENS

        index = next(i for i, p in enumerate(self.prompts) if f"\n{p}<|im_end|>" in texts[0])
        ids = torch.full((1, DROP_TOKENS + self.embeds[index].shape[1]), index)
        return SimpleNamespace(input_ids=ids, attention_mask=torch.ones_like(ids))

    def __call__(self, input_ids: Any, **_: Any) -> Any:
        import torch

        from layerctl.backends.layered.flow import DROP_TOKENS

        e = self.embeds[int(input_ids[0, 0])]
        head = e.new_zeros(1, DROP_TOKENS, e.shape[2])
        return SimpleNamespace(hidden_states=(torch.cat([head, e], dim=1),))


class OursRunner:
    """Our backend (``QwenBackend.decompose``, image in, uint8 layers out) over the given
    modules: the instance is assembled from them instead of loaded from a folder."""

    def __init__(self, transformer: Any, vae: Any, dtype: Any, spec: Spec) -> None:
        from layerctl.backends.layered import flow
        from layerctl.backends.layered.load import QwenComponents
        from layerctl.backends.qwen.backend import QwenBackend

        self.spec = spec
        self.device = transformer.device  # kept: an offloaded model reports the host
        self.backend = QwenBackend.__new__(QwenBackend)
        self.backend.device = str(transformer.device)
        self.backend.dtype = dtype
        self.backend.model_id = "bench"
        self.backend.scheduler = flow.SchedulerConfig.from_dict(scheduler_config())
        self.backend.uncompiled, self.backend.fp8 = False, None
        self.backend.offload, self.backend.footprint = "none", None  # offload_section sets
        self.backend.parts = QwenComponents(
            root=Path("."),
            dtype=dtype,
            scheduler_config=scheduler_config(),
            transformer=transformer,
            vae=vae,
        )

    def run(
        self,
        inputs: Inputs,
        layers: int,
        resolution: int,
        steps: int,
        variant: str = "ours",
        **changes: Any,
    ) -> Run:
        """One decomposition with the backend's defaults; ``changes`` are QwenRequest
        fields (``quantize``, ``step_cache``, ``cfg_truncate``), as the CLI sets them."""
        import numpy as np

        from layerctl.backends.model_options import QwenRequest

        text = TextStandIn({PROMPT: inputs.cond, " ": inputs.uncond}, self.backend.dtype)
        self.backend.parts.tokenizer, self.backend.parts.text_encoder = text.tokenizer, text
        request = QwenRequest(
            layers=layers,
            seed=SEED,
            prompt=PROMPT,
            negative_prompt=" ",
            steps=steps,
            cfg=CFG,
            cfg_normalize=True,
            resolution=resolution,
            **changes,
        )
        clock = Clock(self.device)
        marks: list[Any] = []
        captured: dict[str, Any] = {}

        def on_step(i: int, latents: Any) -> None:
            marks.append(clock.mark())
            if i == steps - 1:
                captured["latents"] = latents.clone()

        _reset_peak()
        start, wall = clock.mark(), time.perf_counter()
        try:
            self.backend.decompose(np.asarray(inputs.image), request, on_step)
        finally:
            self.backend._set_fp8(False)  # the next run starts from the bf16 weights
        total = time.perf_counter() - wall
        steps_s = [clock.seconds(a, b) for a, b in zip([start, *marks[:-1]], marks, strict=True)]
        return Run(variant, resolution, steps, steps_s, total, _peak_gb(), captured["latents"])


# --- accounting -----------------------------------------------------------------------


def forward_flops(cfg: dict[str, Any], img_tokens: int, txt_tokens: int) -> float:
    """FLOPs of one transformer forward for one sequence (multiply-add = 2).

    Per block and token: q, k, v, out projections (4·d²) and the 4×-wide MLP (8·d²), on
    the image and text streams alike; joint attention costs 4·n²·d (QKᵀ and PV). Outside
    the blocks: img_in, txt_in, proj_out. Modulation and norms are negligible.
    """
    d = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    n = img_tokens + txt_tokens
    blocks = cfg["num_layers"] * (2 * n * 12 * d * d + 4 * n * n * d)
    io = 2 * img_tokens * d * (cfg["in_channels"] + cfg["out_channels"] * 4)
    return blocks + io + 2 * txt_tokens * cfg["joint_attention_dim"] * d


def step_flops(spec: Spec, resolution: int) -> float:
    """Useful FLOPs of one denoising step: cond + uncond forwards at their own lengths."""
    side = resolution // 16  # square inputs: the working canvas is resolution²
    img = (spec.layers + 2) * side * side
    return sum(forward_flops(spec.transformer, img, t) for t in spec.text_tokens)


def measure_peak_tflops(device: Any, dtype: Any) -> float | None:
    """bf16 matrix-product rate on this card (8192³, median of 10 after warm-up)."""
    import torch

    if device.type != "cuda":
        return None
    a, b = (torch.randn(8192, 8192, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e) / 1000)
    return 2 * 8192**3 / statistics.median(times) / 1e12


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None


def max_abs_diff(a: Any, b: Any) -> float:
    return float((a.float() - b.float()).abs().max())


def summarise(runs: list[Run], flops: float, peak_tflops: float | None) -> Row:
    """Median over repetitions; the first step of each run is excluded from step time."""
    per_step = [s for r in runs for s in (r.step_s[1:] or r.step_s)]
    step = statistics.median(per_step)
    mfu = flops / step / (peak_tflops * 1e12) if peak_tflops else None
    peaks = [r.peak_gb for r in runs if r.peak_gb is not None]
    return Row(
        runs[0].name,
        runs[0].resolution,
        runs[0].steps,
        step * 1000,
        statistics.median(r.total_s for r in runs),
        max(peaks) if peaks else None,
        mfu,
    )


def table(rows: list[Row], header: str) -> str:
    lines = [
        header,
        f"{'run':<24}{'res':>6}{'steps':>6}{'ms/step':>10}{'total s':>9}"
        f"{'peak GB':>9}{'MFU':>7}{'max|Δ|':>10}  note",
    ]
    for r in rows:
        peak = f"{r.peak_gb:.1f}" if r.peak_gb is not None else "-"
        mfu = f"{r.mfu:.0%}" if r.mfu is not None else "-"
        diff = f"{r.max_abs_diff:.2g}" if r.max_abs_diff is not None else "-"
        lines.append(
            f"{r.name:<24}{r.resolution:>6}{r.steps:>6}{r.step_ms:>10.1f}{r.total_s:>9.2f}"
            f"{peak:>9}{mfu:>7}{diff:>10}  {r.note}"
        )
    return "\n".join(lines)


# --- driver ---------------------------------------------------------------------------


@dataclass
class Bench:
    """What every section shares: the models, both runners, the clock budget, the rows."""

    spec: Spec
    device: Any
    dtype: Any
    pipe: Any
    ours: OursRunner
    peak_tflops: float | None
    deadline: float  # time.perf_counter() value after which sections are skipped
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    reference: dict[int, Any] = field(default_factory=dict)  # resolution -> latents
    exact: dict[int, Any] = field(default_factory=dict)  # resolution -> our latents
    inputs: dict[int, Inputs] = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def inputs_for(self, resolution: int) -> Inputs:
        if resolution not in self.inputs:
            self.inputs[resolution] = make_inputs(self.spec, resolution, self.device, self.dtype)
        return self.inputs[resolution]

    def row(self, runs: list[Run], spec: Spec | None = None, ref: Any = None) -> Row:
        """Summarised runs; max |Δ| against ``ref`` (default: the bucket's reference)."""
        spec = spec or self.spec
        r = summarise(runs, step_flops(spec, runs[0].resolution), self.peak_tflops)
        ref = ref if ref is not None else self.reference.get(r.resolution)
        if ref is not None and runs[-1].latents is not None:
            r.max_abs_diff = max_abs_diff(runs[-1].latents, ref)
        self.rows.append(r)
        return r


def bucket_section(b: Bench, resolution: int, steps: int, reps: int, warmup: int) -> None:
    """Reference and ours alternately on the same inputs; ours checked against it."""
    inputs = b.inputs_for(resolution)
    layers = b.spec.layers
    if warmup:
        run_reference(b.pipe, inputs, layers, resolution, warmup)
        b.ours.run(inputs, layers, resolution, warmup)
    ref_runs, our_runs = [], []
    for _ in range(reps):  # alternate, so drift hits both alike
        ref_runs.append(run_reference(b.pipe, inputs, layers, resolution, steps))
        our_runs.append(b.ours.run(inputs, layers, resolution, steps))
        log(
            f"{resolution}: reference {ref_runs[-1].total_s:.2f} s,"
            f" ours {our_runs[-1].total_s:.2f} s"
        )
    b.reference[resolution] = ref_runs[-1].latents
    b.exact[resolution] = our_runs[-1].latents
    flops = step_flops(b.spec, resolution)
    ref_row, our_row = b.row(ref_runs), b.row(our_runs)
    ref_row.note = f"{flops / 1e12:.0f} TFLOP/step"
    if b.peak_tflops:
        ref_row.note += f", floor {flops / (b.peak_tflops * 1e12) * 1000:.0f} ms/step"
    our_row.note = f"{ref_row.step_ms / our_row.step_ms:.2f}x per step, exact mode"


def variant_section(b: Bench, name: str, steps: int, note: str, **run_kwargs: Any) -> Row:
    """One run of ours at the first bucket with a speed option; its deviation from ours."""
    resolution = b.spec.buckets[0][0]
    run = b.ours.run(b.inputs_for(resolution), b.spec.layers, resolution, steps, name, **run_kwargs)
    row = b.row([run])
    exact = b.exact.get(resolution)
    dev = f", vs ours exact {max_abs_diff(run.latents, exact):.2g}" if exact is not None else ""
    row.note = note + dev
    log(f"{name}: {run.total_s:.2f} s")
    return row


def equal_prompts_section(b: Bench, steps: int) -> None:
    """Prompts of equal length, so that cond and uncond could share ONE forward without
    padding or mask: the reference, ours (two forwards) and that batched layout, which
    the backend does not use (not bit-equal in bf16) — measured here for its speed."""
    from layerctl.backends.qwen import backend as backend_module

    length = b.spec.text_tokens[0]
    spec = replace(b.spec, text_tokens=(length, length))
    resolution = b.spec.buckets[0][0]
    inputs = make_inputs(spec, resolution, b.device, b.dtype)
    ref = run_reference(b.pipe, inputs, spec.layers, resolution, steps)
    ours = b.ours.run(inputs, spec.layers, resolution, steps, "ours =len")
    exact_factory = backend_module.transformer_model
    backend_module.transformer_model = functools.partial(_batched_model, backend_module)
    try:
        batched = b.ours.run(inputs, spec.layers, resolution, steps, "ours =len, 1 batch")
    finally:
        backend_module.transformer_model = exact_factory
    ref.name = "reference =len"
    ref_row = b.row([ref], spec, ref.latents)
    ref_row.note = f"cond and uncond both {length} tokens"
    for run in (ours, batched):
        row = b.row([run], spec, ref.latents)
        row.note = f"{ref_row.step_ms / row.step_ms:.2f}x per step"
    log(f"equal prompts: reference {ref.total_s:.2f} s, ours {ours.total_s:.2f} s")


def _batched_model(
    backend_module: Any, transformer: Any, cond_tokens: Any, embeds: list, shapes: list
) -> Any:
    """Cond and uncond of one length in one batched forward (the layout not taken)."""
    import torch

    forward = backend_module._forward(transformer, cond_tokens, torch.cat(embeds), shapes)

    def model(latents: Any, t: float) -> tuple[Any, Any]:
        out = forward(latents, t)
        return out[:1], (out[1:] if len(embeds) > 1 else None)

    return model


def speed_sections(b: Bench, steps: int) -> None:
    """The approximate modes, through the request fields the CLI sets."""
    cut = b.spec.cfg_truncate
    variant_section(b, f"ours+cfg-trunc σ<{cut:g}", steps, "approx.", cfg_truncate=cut)
    variant_section(b, "ours+step-cache 0.05", steps, "approx.", step_cache=0.05)
    with _fp8_anywhere(b):
        variant_section(b, "ours+fp8", steps, "approx.", quantize="fp8")


@contextlib.contextmanager
def _fp8_anywhere(b: Bench) -> Iterator[None]:
    """Off CUDA the backend refuses fp8 (no float8 tensor cores); the bench lets it run
    there, through the backend's own path, to test that path."""
    from layerctl.backends.qwen import speed

    if b.device.type == "cuda":
        yield
        return
    require = speed.require_fp8
    speed.require_fp8 = lambda device: None
    try:
        yield
    finally:
        speed.require_fp8 = require


def compile_section(b: Bench, steps: int, fp8: bool) -> None:
    """Regional torch.compile (``--compile``); a 2-step run pays the compile, then a full
    run is timed. With ``fp8`` (``--speed``) the same again with float8 linears, which
    recompiles the blocks."""
    from layerctl.backends.qwen import speed

    transformer = b.ours.backend.parts.transformer
    resolution = b.spec.buckets[0][0]
    variants = [("ours+compile", "exact", {})]
    if fp8:
        variants.append(("ours+compile+fp8", "approx.", {"quantize": "fp8"}))
    speed.compile_blocks(transformer)
    try:
        for name, note, options in variants:
            with _fp8_anywhere(b):
                t = time.perf_counter()
                b.ours.run(b.inputs_for(resolution), b.spec.layers, resolution, 2, **options)
                compile_s = time.perf_counter() - t
                variant_section(b, name, steps, f"{note}, compile {compile_s:.0f} s", **options)
    finally:
        speed.uncompile_blocks(transformer)


def offload_section(b: Bench, caps_gb: tuple[float, ...]) -> None:
    """``--offload auto`` under device-memory caps (a 24 / 16 GB card on this one), with
    the full-size text encoder (random weights, built on the host) placed too.

    The first cap places the models with memory.place("auto") as the backend does, the
    cap seen through the per-process memory fraction; later caps reuse that placement
    when auto picks the same mode there. Per cap: one prompt-embedding forward and one
    decomposition, each with its time and peak memory. Moves the transformer to the host
    for good, so it runs last.
    """
    import torch

    from layerctl.backends.qwen import memory

    parts = b.ours.backend.parts
    b.pipe = None
    parts.transformer.to("cpu")
    parts.vae.to("cpu")
    torch.cuda.empty_cache()
    t = time.perf_counter()
    text_encoder = build_text_encoder(FULL_TEXT_ENCODER, parts.transformer.dtype)
    log(f"text encoder built on the host in {time.perf_counter() - t:.1f} s")
    total = torch.cuda.get_device_properties(b.device).total_memory
    index = b.device.index if b.device.index is not None else torch.cuda.current_device()
    resolution = b.spec.buckets[0][0]
    modules = {"text_encoder": text_encoder, "transformer": parts.transformer, "vae": parts.vae}
    footprint = memory.Footprint.of(**modules)
    placed = None
    for cap in caps_gb:
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 1e9 / total), index)
        choice = memory.resolve("auto", b.device, footprint, 1024, 4)
        log(f"--offload auto under {cap:g} GB: {choice.mode} ({choice.reason})")
        if placed is None:
            t = time.perf_counter()
            placed = memory.place(modules, "auto", b.device)
            log(f"placed in {time.perf_counter() - t:.1f} s")
            # as QwenBackend under --offload auto: VAE tiling is decided per request
            b.ours.backend.offload, b.ours.backend.footprint = placed, footprint
        elif placed != choice.mode:
            b.notes.append(f"offload ≤{cap:g} GB: auto picks {choice.mode}, placed {placed}")
            continue
        torch.cuda.reset_peak_memory_stats(b.device)
        encode_s, _ = encode_prompt(text_encoder, b.device)
        encode_gb = torch.cuda.max_memory_allocated(b.device) / 1e9
        run = b.ours.run(
            b.inputs_for(resolution), b.spec.layers, resolution, 2, f"ours auto ≤{cap:g} GB"
        )
        tiled = ", VAE tiled" if parts.vae.use_tiling else ""
        row = b.row([run])
        row.note = (
            f"--offload auto: {choice.mode}{tiled} ({choice.reason}); text encoder "
            f"{encode_s:.2f} s, peak {encode_gb:.1f} GB"
        )
        log(f"offload auto under {cap:g} GB: {run.total_s:.2f} s, peak {run.peak_gb:.1f} GB")
    torch.cuda.set_per_process_memory_fraction(1.0, index)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small config on the CPU")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--speed", action="store_true", help="also time the opt-in fast modes")
    parser.add_argument("--offload-check", action="store_true", help="--offload auto, capped")
    parser.add_argument(
        "--offload-caps", type=_floats, default=(24.0, 16.0), help="GB caps, e.g. 24,16"
    )
    parser.add_argument(
        "--equal-prompts", action="store_true", help="also: prompts of equal length (one batch)"
    )
    parser.add_argument(
        "--buckets", type=_buckets, help="RES:STEPS:REPS,… (default 640:10:2,1024:4:1)"
    )
    parser.add_argument("--warmup-steps", type=int, help="warm-up run length per bucket")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), help="default: the spec's")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip sections after this")
    parser.add_argument("--json", type=Path, help="write the results here (after each section)")
    args = parser.parse_args(argv)

    import torch

    started = time.perf_counter()
    spec = TINY if args.tiny else FULL
    spec = replace(
        spec,
        buckets=args.buckets or spec.buckets,
        warmup_steps=spec.warmup_steps if args.warmup_steps is None else args.warmup_steps,
        dtype=args.dtype or spec.dtype,
    )
    device, dtype = torch.device(spec.device), getattr(torch, spec.dtype)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --tiny on the CPU")
    torch.set_grad_enabled(False)
    card = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    log(f"device {card}, torch {torch.__version__}")

    peak_tflops = measure_peak_tflops(device, dtype)
    if peak_tflops:
        log(f"bf16 matmul 8192³: {peak_tflops:.0f} TFLOP/s")
    t = time.perf_counter()
    transformer, vae = build_models(spec, device, dtype)
    params = sum(p.numel() for p in transformer.parameters())
    log(f"built transformer ({params / 1e9:.2f} B params) + VAE in {time.perf_counter() - t:.1f} s")
    b = Bench(
        spec,
        device,
        dtype,
        reference_pipeline(transformer, vae, dtype),
        OursRunner(transformer, vae, dtype, spec),
        peak_tflops,
        started + args.budget_s,
    )
    first_steps = spec.buckets[0][1]
    sps = STEP_S if device.type == "cuda" else {}  # H200 seconds per step, both pipelines
    first = sps.get(spec.buckets[0][0], 0)
    plan: list[tuple[str, float, Callable[[], None]]] = [
        (
            f"{res} bucket",
            (2 * reps * steps + 2 * spec.warmup_steps) * sps.get(res, 0) + 4 * reps,
            functools.partial(bucket_section, b, res, steps, reps, spec.warmup_steps),
        )
        for res, steps, reps in spec.buckets
    ]
    if args.equal_prompts:
        section = functools.partial(equal_prompts_section, b, first_steps)
        plan.append(("equal prompts", 2 * first_steps * first + 4, section))
    if args.compile:
        section = functools.partial(compile_section, b, first_steps, args.speed)
        needs = (30 + (first_steps + 2) * first) * (2 if args.speed else 1)
        plan.append(("--compile", needs, section))
    if args.speed:
        section = functools.partial(speed_sections, b, first_steps)
        plan.append(("fast modes", 3 * first_steps * first + 20, section))
    if args.offload_check and device.type == "cuda":
        section = functools.partial(offload_section, b, args.offload_caps)
        plan.append(("--offload-check", 100, section))
    header = f"qwen-image-layered, {spec.layers} layers, {spec.dtype}, {card}"
    for name, needs_s, section in plan:
        if b.left() < needs_s:
            b.notes.append(f"skipped {name}: {b.left():.0f} s left, needs ~{needs_s:.0f} s")
            continue
        try:
            section()
        except Exception as exc:  # one failed section must not lose the others' numbers
            b.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
            log(traceback.format_exc())
        log(f"after {name} ({time.perf_counter() - started:.0f} s):\n{table(b.rows, header)}")
        if args.json:  # after every section: a run killed at its time limit keeps its rows
            _write(args.json, summary(b, card, params, started))
    result = summary(b, card, params, started)
    if args.json:
        _write(args.json, result)
    for line in b.notes:
        log(line)
    print(table(b.rows, header), flush=True)
    return result


def _write(path: Path, result: dict[str, Any]) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")


def summary(b: Bench, card: str, params: int, started: float) -> dict[str, Any]:
    import torch

    return {
        "device": card,
        "torch": torch.__version__,
        "dtype": b.spec.dtype,
        "matmul_tflops": b.peak_tflops,
        "transformer_params": params,
        "layers": b.spec.layers,
        "text_tokens": b.spec.text_tokens,
        "rows": [asdict(r) for r in b.rows],
        "notes": b.notes,
        "wall_s": time.perf_counter() - started,
    }


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split(","))


def _buckets(text: str) -> tuple[tuple[int, int, int], ...]:
    """``640:6:1,1024:3:1`` -> ((640, 6, 1), (1024, 3, 1)): resolution, steps, repetitions."""
    buckets = []
    for item in text.split(","):
        res, steps, reps = (int(x) for x in item.split(":"))
        buckets.append((res, steps, reps))
    return tuple(buckets)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
