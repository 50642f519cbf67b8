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
matrix-product rate. Optional sections: ``--speed`` (cuDNN-first attention, CFG
truncation, step cache, fp8 — each with its deviation), ``--compile`` (regional
torch.compile of the blocks, compile time reported) and ``--offload-check`` (group
offloading under 24 and 16 GB caps). Each section runs only while ``--budget-s`` allows;
a failing section is reported and the others go on; the table is printed last.

    python bench/gpu_fullscale.py --speed --compile --offload-check   # one H100, < 8 min
    python bench/gpu_fullscale.py --tiny          # the same code path, CPU, seconds
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

PROMPT_TOKENS = 200  # a typical English caption after the template's 34 dropped tokens
NEGATIVE_TOKENS = 6  # " " plus the template's closing tokens
SEED = 0
PROMPT = "(embeddings given)"  # any non-empty prompt: the embeddings are what counts
CFG = 4.0

# Qwen/Qwen-Image-Layered scheduler/scheduler_config.json, as published.
SCHEDULER_CONFIG = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}

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

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(SCHEDULER_CONFIG)
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
        from layerctl.backends.qwen.encode import DROP_TOKENS

        index = next(i for i, p in enumerate(self.prompts) if f"\n{p}<|im_end|>" in texts[0])
        ids = torch.full((1, DROP_TOKENS + self.embeds[index].shape[1]), index)
        return SimpleNamespace(input_ids=ids, attention_mask=torch.ones_like(ids))

    def __call__(self, input_ids: Any, **_: Any) -> Any:
        import torch
        from layerctl.backends.qwen.encode import DROP_TOKENS

        e = self.embeds[int(input_ids[0, 0])]
        head = e.new_zeros(1, DROP_TOKENS, e.shape[2])
        return SimpleNamespace(hidden_states=(torch.cat([head, e], dim=1),))


class OursRunner:
    """Our backend (``QwenBackend.decompose``, image in, uint8 layers out) over the given
    modules: the instance is assembled from them instead of loaded from a folder."""

    def __init__(self, transformer: Any, vae: Any, dtype: Any, spec: Spec) -> None:
        from layerctl.backends.qwen import sampling
        from layerctl.backends.qwen.backend import QwenBackend
        from layerctl.backends.qwen.load import QwenComponents

        self.spec = spec
        self.device = transformer.device  # kept: an offloaded model reports the host
        self.backend = QwenBackend.__new__(QwenBackend)
        self.backend.device = str(transformer.device)
        self.backend.dtype = dtype
        self.backend.model_id = "bench"
        self.backend.scheduler = sampling.SchedulerConfig.from_dict(SCHEDULER_CONFIG)
        self.backend.parts = QwenComponents(
            root=Path("."),
            dtype=dtype,
            scheduler_config=SCHEDULER_CONFIG,
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
        options: Any = None,
        fast_attention: bool = False,
    ) -> Run:
        """One decomposition; ``options`` (speed.SpeedOptions) go in through the same
        ``speed.model_factory`` hook the backend uses, ``fast_attention`` through
        ``speed.attention``."""
        import contextlib

        import numpy as np
        from layerctl.backends.base import DecomposeRequest
        from layerctl.backends.qwen import backend as backend_module
        from layerctl.backends.qwen import speed

        text = TextStandIn({PROMPT: inputs.cond, " ": inputs.uncond}, self.backend.dtype)
        self.backend.parts.tokenizer, self.backend.parts.text_encoder = text.tokenizer, text
        request = DecomposeRequest(
            layers=layers,
            seed=SEED,
            prompt=PROMPT,
            negative_prompt=" ",
            steps=steps,
            cfg=CFG,
            cfg_normalize=True,
            resolution=resolution,
        )
        clock = Clock(self.device)
        marks: list[Any] = []
        captured: dict[str, Any] = {}

        def on_step(i: int, latents: Any) -> None:
            marks.append(clock.mark())
            if i == steps - 1:
                captured["latents"] = latents.clone()

        image = np.asarray(inputs.image)
        transformer = self.backend.parts.transformer
        exact_factory = backend_module.transformer_model
        options = options or speed.SpeedOptions()
        if options.step_cache:
            speed.enable_step_cache(transformer, options.step_cache)
        backend_module.transformer_model = speed.model_factory(exact_factory, options)
        context = speed.attention(self.device) if fast_attention else contextlib.nullcontext()
        try:
            _reset_peak()
            start, wall = clock.mark(), time.perf_counter()
            with context:
                self.backend.decompose(image, request, on_step)
            total = time.perf_counter() - wall
        finally:
            backend_module.transformer_model = exact_factory
            if options.step_cache:
                speed.disable_step_cache(transformer)
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

    def row(self, runs: list[Run]) -> Row:
        r = summarise(runs, step_flops(self.spec, runs[0].resolution), self.peak_tflops)
        ref = self.reference.get(r.resolution)
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


def speed_sections(b: Bench, steps: int) -> None:
    from layerctl.backends.qwen import speed

    unbatched = speed.SpeedOptions(unbatched_cfg=True)
    variant_section(b, "ours+cudnn-attention", steps, "exact", fast_attention=True)
    variant_section(b, "ours+unbatched-cfg", steps, "exact", options=unbatched)
    variant_section(
        b, "ours+unbatched+cudnn", steps, "exact", options=unbatched, fast_attention=True
    )
    variant_section(
        b, "ours+cfg-trunc σ<0.5", steps, "approx.", options=speed.SpeedOptions(cfg_truncate=0.5)
    )
    variant_section(
        b, "ours+step-cache 0.05", steps, "approx.", options=speed.SpeedOptions(step_cache=0.05)
    )
    transformer = b.ours.backend.parts.transformer
    fp8 = speed.Float8Linears.apply(transformer)
    try:
        variant_section(b, "ours+fp8", steps, "approx.", fast_attention=True)
    finally:
        fp8.restore()


def compile_section(b: Bench, steps: int) -> None:
    """Regional torch.compile; a 2-step run pays the compile, then a full run is timed."""
    from layerctl.backends.qwen import speed

    transformer = b.ours.backend.parts.transformer
    resolution = b.spec.buckets[0][0]
    speed.compile_blocks(transformer)
    try:
        t = time.perf_counter()
        b.ours.run(b.inputs_for(resolution), b.spec.layers, resolution, 2, fast_attention=True)
        compile_s = time.perf_counter() - t
        variant_section(
            b, "ours+compile", steps, f"exact, compile {compile_s:.0f} s", fast_attention=True
        )
    finally:
        speed.uncompile_blocks(transformer)


def offload_section(b: Bench, caps_gb: tuple[float, ...] = (24, 16)) -> None:
    """Group offloading (memory.place 'group') under a device-memory cap per card size.

    Moves the transformer to the host for good, so it runs last.
    """
    import torch
    from layerctl.backends.qwen import memory

    transformer = b.ours.backend.parts.transformer
    b.pipe = None
    transformer.to("cpu")
    torch.cuda.empty_cache()
    t = time.perf_counter()
    memory.place({"transformer": transformer, "vae": b.ours.backend.parts.vae}, "group", b.device)
    log(f"group offloading set up in {time.perf_counter() - t:.1f} s")
    total = torch.cuda.get_device_properties(b.device).total_memory
    resolution = b.spec.buckets[0][0]
    for cap in caps_gb:
        torch.cuda.empty_cache()
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 1e9 / total))
        run = b.ours.run(
            b.inputs_for(resolution), b.spec.layers, resolution, 2, f"ours group ≤{cap:g} GB"
        )
        row = b.row([run])
        row.note = "transformer streamed block by block (text encoder excluded)"
        log(f"group offload under {cap:g} GB: {run.total_s:.2f} s, peak {run.peak_gb:.1f} GB")
    torch.cuda.set_per_process_memory_fraction(1.0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small config on the CPU")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--speed", action="store_true", help="also time the opt-in fast modes")
    parser.add_argument("--offload-check", action="store_true", help="group offload, capped")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip sections after this")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    import torch

    started = time.perf_counter()
    spec = TINY if args.tiny else FULL
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
    plan: list[tuple[str, float, Callable[[], None]]] = [
        (
            f"{res} bucket",
            0 if i == 0 else 60,
            functools.partial(bucket_section, b, res, steps, reps, spec.warmup_steps),
        )
        for i, (res, steps, reps) in enumerate(spec.buckets)
    ]
    if args.speed:
        plan.append(("fast modes", 60, functools.partial(speed_sections, b, first_steps)))
    if args.compile:
        plan.append(("--compile", 120, functools.partial(compile_section, b, first_steps)))
    if args.offload_check and device.type == "cuda":
        plan.append(("--offload-check", 60, functools.partial(offload_section, b)))
    header = f"qwen-image-layered, {spec.layers} layers, {card}"
    for name, needs_s, section in plan:
        if b.left() < needs_s:
            b.notes.append(f"skipped {name}: {b.left():.0f} s of the time budget left")
            continue
        try:
            section()
        except Exception as exc:  # one failed section must not lose the others' numbers
            b.notes.append(f"{name} failed: {type(exc).__name__}: {exc}")
            log(traceback.format_exc())
        log(f"after {name} ({time.perf_counter() - started:.0f} s):\n{table(b.rows, header)}")

    result = {
        "device": card,
        "torch": torch.__version__,
        "matmul_tflops": peak_tflops,
        "transformer_params": params,
        "layers": spec.layers,
        "text_tokens": spec.text_tokens,
        "rows": [asdict(r) for r in b.rows],
        "notes": b.notes,
        "wall_s": time.perf_counter() - started,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    for line in b.notes:
        log(line)
    print(table(b.rows, header), flush=True)
    return result


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
