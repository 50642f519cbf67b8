"""Opt-in speed for the qwen backend, kept apart from the exact sampling code.

Public API::

    SpeedOptions.of(quantize, step_cache, cfg_truncate)   # a request's approximate modes
    compile_blocks(transformer)    # regional torch.compile of the 60 blocks (exact)
    uncompile_blocks(transformer)
    Float8Linears.apply(transformer) -> handle; handle.restore()   # fp8 GEMMs (approximate)
    require_fp8(device)            # UsageError off Ada/Hopper
    step_cache(transformer, threshold)   # context: First Block Cache hooks
    model_factory(factory, options) -> factory   # step cache + CFG truncation (approximate)

*Exact*: ``compile_blocks`` is diffusers' ``compile_repeated_blocks`` (one compiled graph
shared by all blocks; ``--compile``): the same function with other kernels (bf16
rounding may differ in the last bits). A cuDNN-first SDPA order was measured and gained
nothing once no attention mask is passed (bench/RESULTS.md), so it is not offered.

*Approximate* modes, each measured against the exact path by bench/gpu_fullscale.py:

- ``fp8``: the blocks' linear layers run in float8 e4m3 with one scale per weight row and
  per token (``torch._scaled_mm``, rowwise scaling; Hopper/Ada tensor cores), bf16 out —
  the recipe of torchao's ``Float8DynamicActivationFloat8WeightConfig(PerRow())``,
  written against torch directly so it needs no extra package. The bf16 weights stay,
  so it can be undone.
- ``step_cache``: First Block Cache (ParaAttention; diffusers' ``FirstBlockCacheConfig``):
  when the first block's residual changed by less than the threshold (relative mean
  absolute difference) since the last full step, reuse the other blocks' cached residual.
- ``cfg_truncate``: once σ falls below this value, run the conditional branch only
  (CFG-truncation of late, low-noise steps, where guidance changes little; cf.
  Kynkäänniemi et al. 2024, "Applying guidance in a limited interval").

``model_factory`` wraps a ``transformer_model(transformer, cond_tokens, embeds,
shapes)``-shaped factory, so the backend keeps one adapter and adds these by one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from layerctl.errors import UsageError

E4M3_MAX = 448.0  # largest finite float8 e4m3fn value
Factory = Callable[..., Callable[[Any, float], tuple[Any, Any]]]


@dataclass(frozen=True)
class SpeedOptions:
    """The approximate per-request modes (``--quantize``, ``--step-cache``, ``--cfg-truncate``)."""

    fp8: bool = False
    step_cache: float = 0.0  # First Block Cache threshold; 0 = off
    cfg_truncate: float = 0.0  # cond only once sigma < this; 0 = off

    @classmethod
    def of(cls, quantize: str | None, step_cache: float, cfg_truncate: float) -> SpeedOptions:
        """From a request's fields, checked (API callers bypass the CLI's checks)."""
        if quantize not in (None, "fp8"):
            raise UsageError(f"--quantize must be fp8, not {quantize!r}")
        if not step_cache >= 0:
            raise UsageError(
                f"--step-cache must be 0 (off) or a positive threshold, not {step_cache}"
            )
        if not 0 <= cfg_truncate <= 1:
            raise UsageError(f"--cfg-truncate must be a sigma between 0 and 1, not {cfg_truncate}")
        return cls(quantize == "fp8", step_cache, cfg_truncate)


def compile_blocks(transformer: Any) -> None:
    """Regional compilation: each block compiled with one shared graph (fullgraph)."""
    transformer.compile_repeated_blocks(fullgraph=True)


def uncompile_blocks(transformer: Any) -> None:
    for block in transformer.transformer_blocks:
        block._compiled_call_impl = None


class Float8Linears:
    """Swap the transformer blocks' ``nn.Linear`` forwards for float8 GEMMs (reversible).

    The modulation projections (one row per image) are left alone: at M = batch the
    quantisation costs more than it saves.
    """

    def __init__(self, linears: list[Any]) -> None:
        self._linears = linears

    @classmethod
    def apply(cls, transformer: Any) -> Float8Linears:
        import torch

        linears = [
            m
            for name, m in transformer.transformer_blocks.named_modules()
            if isinstance(m, torch.nn.Linear) and not name.endswith("_mod.1")
        ]
        for linear in linears:
            _quantize(linear)
        return cls(linears)

    def restore(self) -> None:
        for linear in self._linears:
            del linear.forward  # back to nn.Linear.forward on the kept bf16 weight
            del linear.weight_fp8, linear.weight_scale


def _quantize(linear: Any) -> None:
    import torch

    w = linear.weight.detach().float()
    scale = w.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / E4M3_MAX
    linear.weight_fp8 = _to_e4m3(w / scale)  # (out, in), row-major
    linear.weight_scale = scale.t().contiguous()  # (1, out)

    def forward(x: Any) -> Any:
        flat = x.reshape(-1, x.shape[-1]).float()
        sx = flat.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / E4M3_MAX
        y = torch._scaled_mm(
            _to_e4m3(flat / sx),
            linear.weight_fp8.t(),  # column-major, as cuBLASLt wants the second operand
            scale_a=sx,
            scale_b=linear.weight_scale,
            out_dtype=x.dtype,
        )
        if linear.bias is not None:  # added apart: not every build fuses bias with rowwise
            y = y + linear.bias
        return y.reshape(*x.shape[:-1], y.shape[-1])

    linear.forward = forward


def _to_e4m3(x: Any) -> Any:
    """Clamped first: a cast of a value past ±448 gives NaN, not the largest finite."""
    import torch

    return x.clamp(-E4M3_MAX, E4M3_MAX).to(torch.float8_e4m3fn)


def require_fp8(device: Any) -> None:
    """float8 GEMMs need CUDA tensor cores of compute capability 8.9+ (Ada, Hopper)."""
    import torch

    device = torch.device(device)
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    if capability is None or capability < (8, 9):
        found = f"compute capability {capability[0]}.{capability[1]}" if capability else device.type
        raise UsageError(
            f"--quantize fp8 needs an Ada or Hopper GPU (compute capability 8.9+), not {found}",
            hint="leave out --quantize",
        )


@contextlib.contextmanager
def step_cache(transformer: Any, threshold: float) -> Iterator[None]:
    """diffusers' First Block Cache hooks on ``transformer`` while sampling (0: none)."""
    if not threshold:
        yield
        return
    from diffusers.hooks import FirstBlockCacheConfig

    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    try:
        yield
    finally:
        transformer.disable_cache()


def model_factory(factory: Factory, options: SpeedOptions) -> Factory:
    """``factory`` (the backend's ``transformer_model(transformer, cond_tokens, embeds,
    shapes)``) with the step cache and CFG truncation of ``options``.

    The step cache keeps residuals per forward, inside diffusers' cache context: with it,
    cond and uncond always run as two forwards, each in its own context (their cached
    residuals differ). Run it inside :func:`step_cache`.
    """
    if not (options.step_cache or options.cfg_truncate):
        return factory

    def make(transformer: Any, cond_tokens: Any, embeds: list[Any], shapes: list) -> Any:
        if options.step_cache:
            transformer._reset_stateful_cache()
            branches = [
                _cached(transformer, factory(transformer, cond_tokens, [e], shapes), f"branch{i}")
                for i, e in enumerate(embeds)
            ]

            def full(latents: Any, t: float) -> Any:
                outs = [branch(latents, t)[0] for branch in branches]
                return outs[0], (outs[1] if len(outs) > 1 else None)

            cond_only = branches[0]
        else:
            full = factory(transformer, cond_tokens, embeds, shapes)
            cond_only = factory(transformer, cond_tokens, embeds[:1], shapes)
        if len(embeds) < 2 or not options.cfg_truncate:
            return full
        cut = options.cfg_truncate * 1000  # t is on the scheduler's 0..1000 scale

        def model(latents: Any, t: float) -> Any:
            return cond_only(latents, t) if t < cut else full(latents, t)

        return model

    return make


def _cached(transformer: Any, inner: Any, name: str) -> Any:
    def cached(latents: Any, t: float) -> Any:
        with transformer.cache_context(name):
            return inner(latents, t)

    return cached
