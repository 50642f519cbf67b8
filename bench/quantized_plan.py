"""What ``--offload auto`` picks for each weights format, without a GPU (arithmetic).

    python bench/quantized_plan.py

The released model with its transformer as a bf16 folder, ComfyUI's fp8mixed file, or a
GGUF Q8_0 / Q4_K_M / Q4_0 (``memory.FORMATS``), 4 layers, at the 640 and 1024 buckets, on
80/48/24/16/12 GiB cards taken as 95 % free (as bench/offload_plan.py), host memory not
limiting. ``--offload auto`` fixes the mode at load time for 1024; this is its pick per
bucket, as ``layerctl doctor`` shows it.
"""

from __future__ import annotations

GB = 10**9
GiB = 2**30
CARDS_GIB = (80, 48, 24, 16, 12)


def main() -> None:
    from layerctl.backends.qwen import memory

    print("Transformer on the device per format (GB): ", end="")
    print(
        ", ".join(
            f"{f} {memory.Footprint.for_format(f).transformer / GB:.1f}" for f in memory.FORMATS
        )
    )
    print()
    print("| format | card | 640 | 1024 |")
    print("|---|---|---|---|")
    for fmt in memory.FORMATS:
        fp = memory.Footprint.for_format(fmt)
        for card in CARDS_GIB:
            total = card * GiB
            cells = []
            for resolution in memory.BUCKETS:
                c = memory.choose(int(total * 0.95), total, fp, resolution, 4)
                tiled = " +tiling" if c.vae_tiling else ""
                short = " (nothing fits)" if "nothing fits" in c.reason else ""
                cells.append(f"{c.mode}{tiled}, {c.need / GB:.1f} GB{short}")
            print(f"| {fmt} | {card} GiB | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
