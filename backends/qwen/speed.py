"""Opt-in speed for the qwen backend, kept apart from the exact sampling code.

Public API::

    SpeedOptions(compile=False, fp8=False, step_cache=0.0, cfg_truncate=0.0)
    attention(device)              # context: fastest SDPA kernel first (exact)
    compile_blocks(transformer)    # regional torch.compile of the 60 blocks (exact)
    uncompile_blocks(transformer)
    Float8Linears.apply(transformer) -> handle; handle.restore()   # fp8 GEMMs (approximate)
    model_factory(factory, options) -> factory   # step cache + CFG truncation (approximate)

*Exact* changes compute the same function with other kernels (bf16 rounding may differ
in the last bits): ``attention`` lets PyTorch's SDPA pick cuDNN's fused attention before
flash / memory-efficient (diffusers' "native" dispatcher calls plain
``F.scaled_dot_product_attention``; with the padded CFG batch's mask flash is not
eligible, cuDNN and memory-efficient are); ``compile_blocks`` is diffusers'
``compile_repeated_blocks`` (one compiled graph shared by all blocks).

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

``model_factory`` wraps a ``transformer_model(transformer, cond_tokens, text, mask,
shapes)``-shaped factory, so the backend keeps one adapter and adds these by one call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

E4M3_MAX = 448.0  # largest finite float8 e4m3fn value
Factory = Callable[..., Callable[[Any, float], tuple[Any, Any]]]


@dataclass(frozen=True)
class SpeedOptions:
    compile: bool = False
    fp8: bool = False
    step_cache: float = 0.0  # First Block Cache threshold; 0 = off
    cfg_truncate: float = 0.0  # cond only once sigma < this; 0 = off

    @property
    def exact(self) -> bool:
        return not (self.fp8 or self.step_cache or self.cfg_truncate)


@contextlib.contextmanager
def attention(device: Any) -> Iterator[None]:
    """On CUDA, SDPA tries cuDNN attention first, then flash, memory-efficient, math."""
    import torch

    if torch.device(device).type != "cuda":
        yield
        return
    from torch.nn.attention import SDPBackend, sdpa_kernel

    order = [
        SDPBackend.CUDNN_ATTENTION,
        SDPBackend.FLASH_ATTENTION,
        SDPBackend.EFFICIENT_ATTENTION,
        SDPBackend.MATH,
    ]
    with sdpa_kernel(order, set_priority=True):
        yield


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

    w = linear.weight.detach()
    scale = w.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
    linear.weight_fp8 = (w.float() / scale).to(torch.float8_e4m3fn)  # (out, in), row-major
    linear.weight_scale = scale.t().contiguous()  # (1, out)

    def forward(x: Any) -> Any:
        flat = x.reshape(-1, x.shape[-1])
        sx = flat.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX
        xq = (flat / sx.to(flat.dtype)).to(torch.float8_e4m3fn)
        y = torch._scaled_mm(
            xq,
            linear.weight_fp8.t(),  # column-major, as cuBLASLt wants the second operand
            scale_a=sx,
            scale_b=linear.weight_scale,
            bias=linear.bias,
            out_dtype=x.dtype,
        )
        return y.reshape(*x.shape[:-1], y.shape[-1])

    linear.forward = forward


def enable_step_cache(transformer: Any, threshold: float) -> None:
    from diffusers.hooks import FirstBlockCacheConfig

    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))


def disable_step_cache(transformer: Any) -> None:
    transformer.disable_cache()


def model_factory(factory: Factory, options: SpeedOptions) -> Factory:
    """``factory`` with the step cache and CFG truncation of ``options`` added.

    The cache needs diffusers' cache context around each forward; the cond-only and
    batched adapters get their own contexts (their cached residuals differ in batch).
    Enable the cache hooks first with :func:`enable_step_cache`.
    """
    if not (options.step_cache or options.cfg_truncate):
        return factory

    def make(transformer: Any, cond_tokens: Any, text: Any, mask: Any, shapes: list) -> Any:
        def adapter(rows: int) -> Any:
            inner = factory(
                transformer, cond_tokens, text[:rows], None if mask is None else mask[:rows], shapes
            )
            if not options.step_cache:
                return inner

            def cached(latents: Any, t: float) -> Any:
                with transformer.cache_context(f"batch{rows}"):
                    return inner(latents, t)

            return cached

        if options.step_cache:
            transformer._reset_stateful_cache()
        full = adapter(text.shape[0])
        if not options.cfg_truncate or text.shape[0] == 1:
            return full
        cond_only = adapter(1)
        cut = options.cfg_truncate * 1000  # t is on the scheduler's 0..1000 scale

        def model(latents: Any, t: float) -> Any:
            return cond_only(latents, t) if t < cut else full(latents, t)

        return model

    return make
