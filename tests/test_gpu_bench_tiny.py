"""bench/gpu_fullscale.py --tiny: the GPU benchmark's code path, small, on the CPU.

The full-size run happens once on a lent GPU; this keeps its code honest in between:
the reference pipeline and our backend run on the same modules and inputs, and our
exact modes must land on the reference's final latents — bit for bit, in float32 and in
bfloat16 (the GPU's dtype: every op of the step loop in the reference's dtypes).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_fullscale.py"
# float32 on the CPU: compiled blocks or one batched cond+uncond forward differ from
# the reference's two eager forwards only by rounding (seen: 4e-6).
EXACT = 1e-4


def _bench():
    spec = importlib.util.spec_from_file_location("gpu_fullscale", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "tiny.json"
    returned = _bench().main(["--tiny", "--speed", "--equal-prompts", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["rows"] == json.loads(json.dumps(returned["rows"]))
    return written


def _row(result: dict, name: str) -> dict:
    return next(r for r in result["rows"] if r["name"] == name)


@pytest.mark.slow
def test_every_section_ran(result: dict) -> None:
    assert result["notes"] == []
    names = [r["name"] for r in result["rows"]]
    assert names[:2] == ["reference", "ours"]
    assert {"ours =len, 1 batch", "ours+fp8", "ours+step-cache 0.05"} <= set(names)
    for row in result["rows"]:
        assert row["steps"] == 2 and row["resolution"] == 640
        assert row["step_ms"] > 0 and row["total_s"] > 0


@pytest.mark.slow
def test_exact_modes_give_the_reference_latents(result: dict) -> None:
    assert _row(result, "reference")["max_abs_diff"] == 0
    # one unpadded forward per prompt is the reference's own arithmetic: bit for bit
    assert _row(result, "ours")["max_abs_diff"] == 0
    assert _row(result, "ours =len")["max_abs_diff"] == 0
    # prompts of one length batched (the layout not taken): equal up to rounding
    assert _row(result, "ours =len, 1 batch")["max_abs_diff"] <= EXACT


@pytest.mark.slow
def test_bfloat16_gives_the_reference_latents_bit_for_bit(tmp_path) -> None:
    """The GPU's dtype, on the CPU: timestep cast, CFG combine and norms, the Euler
    step's float32 sum and cast back, latents between steps — all as the reference."""
    args = ["--tiny", "--dtype", "bfloat16", "--equal-prompts", "--json", str(tmp_path / "r")]
    result = _bench().main(args)
    assert result["notes"] == []
    assert _row(result, "ours")["max_abs_diff"] == 0
    assert _row(result, "ours =len")["max_abs_diff"] == 0


@pytest.mark.slow
def test_approximate_modes_report_their_deviation(result: dict) -> None:
    """CFG truncation drops the uncond branch in the last step (σ = 0.02) and fp8 rounds
    every GEMM: both must move the result, by a finite amount."""
    for name in ("ours+cfg-trunc σ<0.5", "ours+fp8"):
        diff = _row(result, name)["max_abs_diff"]
        assert math.isfinite(diff) and diff > EXACT, name


def test_flop_count_matches_the_published_estimate() -> None:
    """About 2e14 FLOPs per forward at the 640 bucket with 4 layers (issue 7)."""
    bench = _bench()
    side = 640 // 16
    flops = bench.forward_flops(bench.FULL_TRANSFORMER, 6 * side * side, bench.PROMPT_TOKENS)
    assert 1.9e14 < flops < 2.2e14
