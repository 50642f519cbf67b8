"""A GGUF transformer resident under a 16 GB cap against bf16 streamed, at full size.

The published Qwen-Image-Layered transformer's shapes with random weights (speed does
not depend on the values): every tensor of one shape is drawn once and quantized once
with the ``gguf`` package (Q4_0 by default), then written as one GGUF file, which the
qwen backend's own loader reads (``layered.load.transformer_from_file``: diffusers'
``from_single_file`` with ``GGUFQuantizationConfig``). Under a per-process memory cap:

- ``gguf``: the quantized transformer moved whole to the device (``--offload
  encoder-cpu`` keeps it there), seconds per denoising step (cond + uncond forwards,
  640 bucket, 4 layers, random latents and prompt embeddings) and peak device memory;
- ``bf16``: the same shapes in bf16 streamed block by block (``memory.stream``,
  ``--offload group``: what `auto` picks for bf16 on a 16 GB card), the same measure.

    python bench/gpu_gguf.py --json out.json             # a lent GPU, ~4 min
    python bench/gpu_gguf.py --tiny --json out.json      # the same code path, CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PROMPT_TOKENS, NEGATIVE_TOKENS = 200, 6  # as bench/gpu_fullscale.py


def transformer_config(tiny: bool) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH))
    from gpu_fullscale import FULL_TRANSFORMER

    if not tiny:
        return dict(FULL_TRANSFORMER)
    tiny = {"num_layers": 2, "attention_head_dim": 32, "num_attention_heads": 2}
    return {**FULL_TRANSFORMER, **tiny, "joint_attention_dim": 64, "axes_dims_rope": (8, 12, 12)}


def write_gguf(config: dict[str, Any], folder: Path, qtype: str) -> Path:
    """transformer/config.json and a random GGUF of the model, each shape drawn once."""
    import gguf
    import numpy as np
    import torch
    from accelerate import init_empty_weights
    from diffusers import QwenImageTransformer2DModel

    with init_empty_weights():
        model = QwenImageTransformer2DModel(**config)
    model.save_config(folder / "transformer")
    linears = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    kind = getattr(gguf.GGMLQuantizationType, qtype)
    rng = np.random.default_rng(0)
    drawn: dict[tuple, Any] = {}
    path = folder / f"transformer-{qtype}.gguf"
    writer = gguf.GGUFWriter(str(path), arch="qwen_image")
    for name, tensor in model.state_dict().items():
        quantize = name in linears and tensor.shape[-1] % 32 == 0
        key = (tuple(tensor.shape), quantize)
        if key not in drawn:
            data = (rng.standard_normal(tensor.shape, dtype=np.float32) * 0.02).astype(np.float32)
            drawn[key] = gguf.quants.quantize(data, kind) if quantize else data
        writer.add_tensor(name, drawn[key], raw_dtype=kind if quantize else None)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def step_time(transformer: Any, device: Any, dtype: Any, config: dict, steps: int) -> float:
    """Median seconds of one denoising step (cond and uncond forwards) at 640, 4 layers."""
    import torch

    from layerctl.backends.layered import flow
    from layerctl.backends.qwen.backend import transformer_model

    layers, side = 4, 640 // 16  # 40 × 40 packed tokens per frame
    g = torch.Generator().manual_seed(0)
    frame = side * side
    latents = torch.randn(1, (layers + 1) * frame, 64, generator=g).to(device, dtype)
    cond = torch.randn(1, frame, 64, generator=g).to(device, dtype)
    text = config["joint_attention_dim"]
    embeds = [torch.randn(1, n, text, generator=g).to(device, dtype) for n in
              (PROMPT_TOKENS, NEGATIVE_TOKENS)]  # fmt: skip
    model = transformer_model(
        transformer, cond, embeds, flow.img_shapes(layers, 2 * side, 2 * side)
    )
    times = []
    with torch.inference_mode():
        for i in range(steps + 1):  # the first one warms up
            _sync(device)
            t = time.perf_counter()
            model(latents, 1000.0 * (1 - i / (steps + 1)))
            _sync(device)
            times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def _sync(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _peak_gb(device: Any) -> float | None:
    import torch

    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 1e9


def _reset(device: Any) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, on the CPU")
    parser.add_argument("--type", default="Q4_0", help="GGUF quantisation (default Q4_0)")
    parser.add_argument("--cap-gb", type=float, default=16.0, help="device memory cap")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import torch

    from layerctl.backends.layered import load
    from layerctl.backends.qwen import memory

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    config = transformer_config(args.tiny)
    result: dict[str, Any] = {"device": str(device), "type": args.type, "cap_gb": args.cap_gb}
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gb * 1e9 / total))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = write_gguf(config, Path(tmp), args.type)
        result["gguf_write_s"] = round(time.perf_counter() - t, 1)
        result["gguf_file_bytes"] = path.stat().st_size
        t = time.perf_counter()
        quantized = load.transformer_from_file(path, Path(tmp), dtype)
        result["gguf_load_s"] = round(time.perf_counter() - t, 1)
    _reset(device)
    quantized.to(device)
    result["gguf_step_s"] = round(step_time(quantized, device, dtype, config, args.steps), 3)
    result["gguf_peak_gb"] = _peak_gb(device)
    print(
        f"GGUF {args.type} resident: {result['gguf_step_s']} s/step, peak {result['gguf_peak_gb']}"
    )
    del quantized
    _reset(device)

    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        bf16 = QwenImageTransformer2DModel(**config).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(previous)
    if device.type == "cuda":
        memory.stream(bf16, "group", device)
    _reset(device)
    result["bf16_group_step_s"] = round(step_time(bf16, device, dtype, config, args.steps), 3)
    result["bf16_group_peak_gb"] = _peak_gb(device)
    print(f"bf16 group-offloaded: {result['bf16_group_step_s']} s/step, "
          f"peak {result['bf16_group_peak_gb']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
