"""Soak: many images through the classic backend in one process; memory and open files.

Usage: python bench/soak.py [--images 200] [--size 160] [--json]
Decomposes synthetic flat graphics one after another through the batch path (read,
decompose, write PSD / ORA / PNG stack in turn) and prints resident memory (RSS) and
open file descriptors at the start, after the first image (imports and caches warm)
and at the end. With --json, one line with the same numbers.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import psutil
from PIL import Image, ImageDraw

from layerctl import batch
from layerctl.pipeline import Options

SUFFIXES = [".psd", ".ora", ""]  # a PNG stack is a folder


def make_image(path: Path, seed: int, size: int) -> None:
    """A flat graphic: a plain background with 2–4 rectangles and discs, different per seed."""
    rng = np.random.default_rng(seed)
    width, height = size, size * 3 // 4
    image = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(170, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 5))):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        x1 = x0 + int(rng.integers(width // 6, width // 2))
        y1 = y0 + int(rng.integers(height // 6, height // 2))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 150, 3)))
    image.save(path)


def sample(process: psutil.Process) -> dict[str, float]:
    gc.collect()
    return {"rss_mb": process.memory_info().rss / 2**20, "fds": process.num_fds()}


def soak(images: int, size: int, folder: Path) -> dict[str, object]:
    """Run ``images`` jobs in this process; the samples at start, after one and at the end."""
    process = psutil.Process()
    options = Options(backend="classic", layers=4)
    start = sample(process)
    samples = []
    for index in range(images):
        source = folder / f"in{index}.png"
        make_image(source, index, size)
        output = folder / f"out{index}{SUFFIXES[index % len(SUFFIXES)]}"
        result = batch.attempt(batch.Job(source, output), options)
        if result.status != "ok":
            raise SystemExit(f"{source}: {result.error}")
        source.unlink()  # keep the disk small; the outputs go too
        shutil.rmtree(output) if output.is_dir() else output.unlink()
        samples.append(sample(process))
    return {"images": images, "start": start, "warm": samples[0], "end": samples[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=160, help="width in pixels (height 3/4)")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layerctl-soak-") as folder:
        report = soak(args.images, args.size, Path(folder))
    if args.json:
        print(json.dumps(report))
        return
    print(f"{report['images']} images of {args.size}x{args.size * 3 // 4}, classic backend")
    for name in ["start", "warm", "end"]:
        numbers = report[name]
        print(f"{name:>6}: RSS {numbers['rss_mb']:7.1f} MB   open fds {numbers['fds']:3d}")


if __name__ == "__main__":
    main()
