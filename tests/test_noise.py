"""layerctl.noise: torch's CPU randn reproduced bit for bit without torch."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerctl.noise import _fma, torch_randn


def _torch_randn(shape: tuple[int, ...], seed: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    if torch.backends.cpu.get_cpu_capability() not in {"AVX2", "AVX512"}:
        pytest.skip("torch uses its scalar normal kernel on this CPU")
    generator = torch.Generator("cpu").manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32).numpy()


@pytest.mark.parametrize("seed", [0, 1, 42, -1, 2**32 + 7, 2**63 - 1])
@pytest.mark.parametrize(
    "shape",
    [(16,), (17,), (31,), (48,), (1, 5, 16, 8, 10), (2, 3, 16, 13, 7)],
    ids=lambda s: "x".join(map(str, s)),
)
def test_bit_identical_to_torch(shape: tuple[int, ...], seed: int) -> None:
    expected = _torch_randn(shape, seed)
    got = torch_randn(shape, seed)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_bit_identical_on_a_640_bucket_latent() -> None:
    shape = (1, 5, 16, 80, 80)  # 4 layers at 640×640: what the sampler draws
    expected = _torch_randn(shape, 2024)
    np.testing.assert_array_equal(
        torch_randn(shape, 2024).view(np.uint32), expected.view(np.uint32)
    )


def test_small_tensors_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 16"):
        torch_randn((3, 5), 0)


def _fma_exact(a: np.float32, b: np.float32, c: np.float32) -> np.float32:
    """a·b + c computed exactly, then rounded to the nearest float32 (ties to even)."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = np.float32(float(exact))
    candidates = [near, np.nextafter(near, np.float32(np.inf)), np.nextafter(near, -np.inf)]
    return min(
        candidates,
        key=lambda x: (abs(Fraction(float(x)) - exact), int(np.float32(x).view(np.uint32)) & 1),
    )


def test_fma_breaks_a_tie_that_double_rounding_gets_wrong() -> None:
    a = np.float32(1 + 2**-12)  # a·a = 1 + 2^-11 + 2^-24: exactly halfway between floats
    c = np.float32(2.0**-80)  # lost in a float64 sum, yet it decides the rounding
    naive = np.float32(np.float64(a) * np.float64(a) + np.float64(c))
    got = _fma(np.array([a]), a, np.array([c]))[0]
    assert got == _fma_exact(a, a, c) == np.float32(1 + 2**-11 + 2**-23)
    assert naive != got


_floats = st.floats(-1e6, 1e6, width=32, allow_subnormal=False)


@given(_floats, _floats, _floats)
def test_fma_is_correctly_rounded(a: float, b: float, c: float) -> None:
    a32, b32, c32 = np.float32(a), np.float32(b), np.float32(c)
    got = _fma(np.array([a32]), b32, np.array([c32]))[0]
    expected = _fma_exact(a32, b32, c32)
    assert got == expected or (got == 0 and expected == 0)
