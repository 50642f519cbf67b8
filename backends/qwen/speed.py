"""Opt-in speed for the qwen backend, kept apart from the exact sampling code.

Public API::

    SpeedOptions(unbatched_cfg=False, compile=False, fp8=False, step_cache=0.0,
                 cfg_truncate=0.0)
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
``compile_repeated_blocks`` (one compiled graph shared by all blocks); ``unbatched_cfg``
runs cond and uncond unpadded (see :func:`model_factory`).

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
    unbatched_cfg: bool = False  # exact: two unmasked forwards instead of one masked batch
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


def enable_step_cache(transformer: Any, threshold: float) -> None:
    from diffusers.hooks import FirstBlockCacheConfig

    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))


def disable_step_cache(transformer: Any) -> None:
    transformer.disable_cache()


def model_factory(factory: Factory, options: SpeedOptions) -> Factory:
    """``factory`` with the CFG layout, step cache and CFG truncation of ``options``.

    ``unbatched_cfg``: cond and uncond as two forwards, each with its text trimmed to its
    own length, so no attention mask is needed and SDPA may use flash / cuDNN kernels
    (a mask rules flash out) — the reference's own arithmetic per branch. The step cache
    needs diffusers' cache context around each forward; every adapter gets its own
    context (their cached residuals differ). Enable its hooks with
    :func:`enable_step_cache` first.
    """
    if not (options.unbatched_cfg or options.step_cache or options.cfg_truncate):
        return factory

    def make(transformer: Any, cond_tokens: Any, text: Any, mask: Any, shapes: list) -> Any:
        def adapter(first: int, last: int) -> Any:
            rows, rows_mask = text[first:last], None if mask is None else mask[first:last]
            if rows_mask is not None and last - first == 1:
                valid = int(rows_mask.sum())  # one host read per image, before the loop
                rows, rows_mask = rows[:, :valid], None
            inner = factory(transformer, cond_tokens, rows, rows_mask, shapes)
            if not options.step_cache:
                return inner

            def cached(latents: Any, t: float) -> Any:
                with transformer.cache_context(f"rows{first}-{last}"):
                    return inner(latents, t)

            return cached

        if options.step_cache:
            transformer._reset_stateful_cache()
        guided = text.shape[0] == 2
        if guided and options.unbatched_cfg:
            cond, uncond = adapter(0, 1), adapter(1, 2)

            def full(latents: Any, t: float) -> Any:
                return cond(latents, t)[0], uncond(latents, t)[0]

        else:
            full = adapter(0, text.shape[0])
        if not guided or not options.cfg_truncate:
            return full
        cond_only = cond if options.unbatched_cfg else adapter(0, 1)
        cut = options.cfg_truncate * 1000  # t is on the scheduler's 0..1000 scale

        def model(latents: Any, t: float) -> Any:
            return cond_only(latents, t) if t < cut else full(latents, t)

        return model

    return make
