"""bench/gpu_gguf.py --tiny: the GGUF-vs-bf16 GPU benchmark's code path, small, on the CPU."""

from __future__ import annotations

import json

import bench_scripts
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("gguf")
pytestmark = [pytest.mark.slow, pytest.mark.torch]


def test_gguf_bench_runs_small(tmp_path) -> None:
    out = tmp_path / "gguf.json"
    result = bench_scripts.load("gpu_gguf").main(["--tiny", "--steps", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["device"] == "cpu" and result["type"] == "Q4_0"
    assert result["gguf_step_s"] > 0 and result["bf16_group_step_s"] > 0
    assert 0 < result["gguf_file_bytes"] < 10**6  # tiny: about 0.2 MB
