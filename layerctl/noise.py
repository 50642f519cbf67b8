"""``torch.randn`` from a seeded CPU generator, bit for bit, in numpy — no torch needed.

The ONNX path must start from the same noise as the torch backend and diffusers'
reference (``randn_tensor`` draws on a CPU ``torch.Generator``), without importing torch.
This reproduces PyTorch's CPU float32 normal kernel (``aten/src/ATen/native/cpu/
DistributionTemplates.h``: ``normal_fill_AVX2``, used for contiguous float32 tensors of
at least 16 elements on every AVX2 or AVX-512 x86 CPU):

1. ``mt19937`` seeded with ``seed mod 2**32`` (Matsumoto & Nishimura 1998, ``init_genrand``)
   draws one 32-bit word per element; its low 24 bits / 2**24 give ``u`` in [0, 1).
2. Each block of 16 uniforms becomes 16 normals by Box–Muller (1958): the first 8 are
   ``u1``, the last 8 ``u2``; ``r = sqrt(-2 log(1 - u1))``, ``θ = 2π u2``, outputs
   ``r cos θ`` then ``r sin θ``. When 16 does not divide the size, 16 fresh uniforms
   (drawn after one per element) recompute the last 16 outputs.
3. ``log`` and ``sincos`` are the Cephes polynomials of ``avx_mathfun.h`` (J. Pommier's
   sse_mathfun, AVX port by G. Garberoglio) in float32, with the fused multiply-adds the
   compiler contracted them into; :func:`_fma` emulates those exactly.

Checked bit-identical to torch 2.13 (AVX2 and AVX-512 kernels) by tests/test_noise.py.
Torch's own result differs on CPUs without AVX2 and on ARM; there this matches the
x86 reference, not the local torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIN_ELEMENTS = 16  # smaller tensors take torch's scalar double-precision path instead

_F32 = np.float32
_TWO_PI = _F32(2.0 * math.pi)
# Cephes logf: polynomial for log(1 + x) on [sqrt(1/2) - 1, sqrt(2) - 1], ln 2 split in two.
_LOG_P = (
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
_LN2_LO, _LN2_HI = _F32(-2.12194440e-4), _F32(0.693359375)
_SQRT_HALF = _F32(0.707106781186547524)
# Cephes sinf/cosf: π/4 in three parts for the range reduction, then minimax polynomials.
_FOUR_OVER_PI = _F32(1.27323954473516)
_PI4_PARTS = (_F32(-0.78515625), _F32(-2.4187564849853515625e-4), _F32(-3.77489497744594108e-8))
_SIN_P = (_F32(-1.9515295891e-4), _F32(8.3321608736e-3), _F32(-1.6666654611e-1))
_COS_P = (_F32(2.443315711809948e-5), _F32(-1.388731625493765e-3), _F32(4.166664568298827e-2))


def torch_randn(shape: Sequence[int], seed: int) -> np.ndarray:
    """What ``torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`` returns.

    float32, C order. Needs at least 16 elements (latent noise always has far more).
    """
    shape = tuple(int(d) for d in shape)
    n = math.prod(shape)
    if n < MIN_ELEMENTS:
        raise ValueError(f"torch_randn reproduces tensors of >= {MIN_ELEMENTS} elements, not {n}")
    mt = _mt19937(seed)
    out = _box_muller(_uniforms(mt, n)[: n - n % 16])  # every element draws, as in torch
    if n % 16:
        tail = _box_muller(_uniforms(mt, 16))
        out = np.concatenate([out[: n - 16], tail]) if n > 16 else tail
    return out.reshape(shape)


def _mt19937(seed: int) -> np.random.MT19937:
    """numpy's MT19937 in the state torch's ``manual_seed`` leaves (``init_genrand``)."""
    key = np.empty(624, np.uint32)
    s = seed & 0xFFFFFFFF
    key[0] = s
    for i in range(1, 624):
        s = (1812433253 * (s ^ (s >> 30)) + i) & 0xFFFFFFFF
        key[i] = s
    mt = np.random.MT19937()
    mt.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": 624}}
    return mt


def _uniforms(mt: np.random.MT19937, n: int) -> np.ndarray:
    """torch's ``uniform_real_distribution<float>(0, 1)``: 24 random bits / 2**24."""
    words = mt.random_raw(n) & 0xFFFFFF
    return words.astype(_F32) * _F32(2.0**-24)


def _box_muller(u: np.ndarray) -> np.ndarray:
    """16 uniforms -> 16 normals per block, as ``normal_fill_16_AVX2``."""
    blocks = u.reshape(-1, 16)
    radius = np.sqrt(_F32(-2.0) * _log(_F32(1.0) - blocks[:, :8]))
    sin, cos = _sincos(_TWO_PI * blocks[:, 8:])
    return np.concatenate([radius * cos, radius * sin], axis=1).reshape(-1)


def _log(x: np.ndarray) -> np.ndarray:
    """``log256_ps`` for x in (0, 1]: x = m·2^e with m in [sqrt(1/2), sqrt(2))."""
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(_F32) + _F32(1.0)
    m = ((bits & ~0x7F800000) | _F32(0.5).view(np.int32)).view(_F32)  # mantissa in [0.5, 1)
    small = m < _SQRT_HALF
    e = e - small.astype(_F32)
    m = (m - _F32(1.0)) + np.where(small, m, _F32(0.0))
    z = m * m
    y = np.full_like(m, _F32(_LOG_P[0]))
    for p in _LOG_P[1:]:
        y = _fma(y, m, _F32(p))
    y = _fma(y * m, z, e * _LN2_LO)
    y = _fma(-z, _F32(0.5), y)
    return _fma(e, _LN2_HI, m + y)


def _sincos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``sincos256_ps`` for x >= 0: reduce by multiples of π/4, pick the polynomial per octant."""
    j = (x * _FOUR_OVER_PI).astype(np.int32)
    j = (j + 1) & ~1
    y = j.astype(_F32)
    for part in _PI4_PARTS:
        x = _fma(y, part, x)
    sign_sin = (j & 4) << 29
    sign_cos = (~(j - 2) & 4) << 29
    z = x * x
    c = _fma(_fma(_COS_P[0], z, _COS_P[1]), z, _COS_P[2])
    c = _fma(c * z, z, -(z * _F32(0.5))) + _F32(1.0)
    s = _fma(_fma(_SIN_P[0], z, _SIN_P[1]), z, _SIN_P[2])
    s = _fma(s * z, x, x)
    use_sin_poly = (j & 2) == 0
    sin = np.where(use_sin_poly, s, c)
    cos = np.where(use_sin_poly, c, s)
    return (sin.view(np.int32) ^ sign_sin).view(_F32), (cos.view(np.int32) ^ sign_cos).view(_F32)


def _fma(a: np.ndarray | np.float32, b: np.ndarray | np.float32, c: np.ndarray) -> np.ndarray:
    """float32 ``a·b + c`` with one rounding, as the FMA instruction computes it.

    ``a·b`` is exact in float64 (24 + 24 bits); the sum is rounded to odd (Boldo &
    Melquiond 2008, "Emulation of FMA and correctly rounded sums") so that the final
    rounding to float32 is correct, ties included.
    """
    p = np.multiply(a, b, dtype=np.float64)
    c = np.asarray(c, np.float64)
    s = p + c
    v = s - p
    err = (p - (s - v)) + (c - v)  # Knuth's TwoSum: s + err == p + c exactly
    inexact_even = (err != 0) & ((s.view(np.int64) & 1) == 0)
    s = np.where(inexact_even, np.nextafter(s, np.copysign(np.inf, err)), s)
    return s.astype(_F32)
