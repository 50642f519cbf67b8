"""What ``--offload`` keeps on the device, planned and measured, without a GPU.

    python bench/offload_plan.py [--weights DIR]

1. **Plan** for the released model (``memory.Footprint.published()``): device bytes each
   mode needs, and what ``--offload auto`` picks on common cards at the 640 and 1024
   buckets with 4 layers (the card's memory taken as 95 % free) — the mode is fixed at
   load time for 1024; tiling is then decided per request.
2. **Measured** on a checkpoint folder (default: the tests' tiny random one, built):
   diffusers' group offloading applied as the backend applies it (``memory.stream``),
   one decomposition run on the CPU, and the most weight bytes its hooks held onloaded
   at once, per streamed model — against the whole model and the plan. On the CPU
   nothing is prefetched on a side stream, so one group less than the plan is held.
   ``--no-descend`` applies block-level offloading without ``block_modules``, as before
   the text encoder was streamed block by block.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

GB = 10**9
GiB = 2**30
CARDS_GIB = (80, 48, 24, 16, 12)  # as sold: an "80 GB" H100 holds 80 GiB


@contextlib.contextmanager
def resident() -> Iterator[list[int]]:
    """``[peak]``: the most weight bytes diffusers' group-offloading hooks held onloaded
    at once while the block ran (ModuleGroup.onload_ / offload_ tracked)."""
    from diffusers.hooks import group_offloading

    group_cls = group_offloading.ModuleGroup
    onload, offload = group_cls.onload_, group_cls.offload_
    held: dict[int, int] = {}
    peak = [0]

    def tracked_onload(group: Any) -> Any:
        tensors = {id(t): t for m in group.modules for t in (*m.parameters(), *m.buffers())}
        tensors.update({id(t): t for t in (*group.parameters, *group.buffers)})
        held[id(group)] = sum(t.numel() * t.element_size() for t in tensors.values())
        peak[0] = max(peak[0], sum(held.values()))
        return onload(group)

    def tracked_offload(group: Any) -> Any:
        held.pop(id(group), None)
        return offload(group)

    group_cls.onload_, group_cls.offload_ = tracked_onload, tracked_offload
    try:
        yield peak
    finally:
        group_cls.onload_, group_cls.offload_ = onload, offload


def plan() -> None:
    from layerctl.backends.qwen import memory

    fp = memory.Footprint.published()
    print("Plan, released model in bf16 (GB on the device, 4 layers):")
    print(f"{'mode':<12}{'640':>8}{'1024':>8}{'1024 tiled':>12}")
    for mode in ("none", "model", "group", "sequential"):
        needs = [memory.need(mode, fp, r, 4, t) / GB for r, t in ((640, 0), (1024, 0), (1024, 1))]
        print(f"{mode:<12}" + "".join(f"{n:>8.1f}" for n in needs[:2]) + f"{needs[2]:>12.1f}")
    print(f"\n{'card GiB':<10}{'640':<28}{'1024':<28}")
    for card in CARDS_GIB:
        total = card * GiB
        cells = []
        for resolution in (640, 1024):
            c = memory.choose(int(total * 0.95), total, fp, resolution, 4)
            tiled = " +tiling" if c.vae_tiling else ""
            cells.append(f"{c.mode}{tiled} ({c.need / GB:.1f} GB)")
        print(f"{card:<10}{cells[0]:<28}{cells[1]:<28}")


def measure(weights: Path, mode: str, descend: bool) -> None:
    import numpy as np

    from layerctl.backends.model_options import QwenRequest, QwenSettings
    from layerctl.backends.qwen import memory
    from layerctl.backends.qwen.backend import QwenBackend

    image = np.full((48, 64, 4), 200, np.uint8)
    request = QwenRequest(layers=2, steps=2, resolution=64, prompt="a red card")
    print(f"\nMeasured, {weights.name}, --offload {mode} on the CPU (bytes held at once):")
    print(f"{'model':<14}{'whole':>12}{'held':>12}{'share':>8}{'plan':>12}")
    for name in memory.STREAMED:
        backend = QwenBackend(QwenSettings(weights=str(weights), device="cpu"))
        module = getattr(backend.parts, name)
        sizes = memory.tensor_bytes(module)
        planned = memory.Streaming.of(sizes)
        if descend:
            memory.stream(module, mode, "cpu")
        else:
            from diffusers.hooks import apply_group_offloading

            apply_group_offloading(module, onload_device="cpu", num_blocks_per_group=1)
        with resident() as peak:
            backend.decompose(image, request)
        whole = sum(sizes.values())
        expected = planned.group if mode == "group" else planned.sequential
        print(f"{name:<14}{whole:>12,}{peak[0]:>12,}{peak[0] / whole:>8.0%}{expected:>12,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint folder (default: tiny, built)")
    parser.add_argument("--no-descend", action="store_true", help="group, no block_modules")
    args = parser.parse_args()
    plan()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or _tiny(Path(tmp) / "tiny-qwen")
        if args.no_descend:
            measure(weights, "group", descend=False)
        else:
            for mode in ("group", "sequential"):
                measure(weights, mode, descend=True)


def _tiny(folder: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from tiny_qwen import build_tiny_checkpoint

    return build_tiny_checkpoint(folder)


if __name__ == "__main__":
    main()
