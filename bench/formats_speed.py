"""Write/read time and file size of each result format, on a synthetic layered image.

Usage: python bench/formats_speed.py [--size 2048] [--layers 6] [--repeat 3]
Prints one line per format: best-of-N write and read seconds, the time a batch rerun
takes to check that a result is whole (formats.read_metadata: header or manifest only),
and the bytes on disk.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from layerctl import formats
from layerctl.stack import Layer, LayerStack


def synthetic_stack(size: int, n_layers: int) -> LayerStack:
    """A gradient background and soft-edged discs: photo-like and flat-graphic content."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = np.empty((size, size, 4), np.uint8)
    background[..., 0] = 255 * xx
    background[..., 1] = 255 * yy
    background[..., 2] = 128 + 100 * np.sin(12 * xx * yy)
    background[..., 3] = 255
    layers = [Layer("Background", background)]
    for i in range(1, n_layers):
        cx, cy, radius = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.2)
        distance = np.hypot(xx - cx, yy - cy)
        alpha = np.clip((radius - distance) * size / 2.0, 0, 1)  # a 2-pixel soft edge
        pixels = np.zeros((size, size, 4), np.uint8)
        pixels[..., :3] = rng.integers(0, 256, 3)
        pixels[..., 3] = np.rint(alpha * 255)
        layers.append(Layer(f"Layer {i}", pixels))
    return LayerStack(layers)


def disk_bytes(path: Path) -> int:
    return (
        path.stat().st_size
        if path.is_file()
        else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stack = synthetic_stack(args.size, args.layers)
    print(f"{args.size}x{args.size}, {args.layers} layers, best of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("out.psd", "out.ora", "out_png"):
            path = Path(tmp) / name
            writes, reads, checks = [], [], []
            for _ in range(args.repeat):
                shutil.rmtree(path, ignore_errors=True)
                path.unlink(missing_ok=True)
                start = time.perf_counter()
                formats.write(stack, path)
                writes.append(time.perf_counter() - start)
                start = time.perf_counter()
                formats.read(path)
                reads.append(time.perf_counter() - start)
                start = time.perf_counter()
                formats.read_metadata(path)
                checks.append(time.perf_counter() - start)
            fmt = formats.detect(path)
            print(
                f"{fmt:4s} write {min(writes):6.2f} s  read {min(reads):6.2f} s  "
                f"check {min(checks) * 1e3:6.2f} ms  {disk_bytes(path) / 1e6:7.1f} MB"
            )


if __name__ == "__main__":
    main()
