"""Batch throughput of the plain loop, ``--workers N`` and ``--ray local``; same outputs?

    python bench/batch_throughput.py [--per-category 2] [--workers 2] [--backend classic]
                                     [--no-ray]

Writes the synthetic designs (bench/synthetic.py, 512×384) as flat PNGs, then times the
whole ``layerctl decompose DIR -o OUT`` command once per mode (start-up, model loads and
Ray start included: what a user waits for), prints images per second, and checks that
every mode wrote the same layers as the plain run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import CATEGORIES, design

from layerctl import formats
from layerctl.stack import composite


def inputs(folder: Path, per_category: int) -> int:
    folder.mkdir(parents=True)
    for category in CATEGORIES:
        for k in range(per_category):
            flat = composite(design(category, k))
            Image.fromarray(flat, "RGBA").save(folder / f"{category}-{k}.png")
    return len(CATEGORIES) * per_category


def timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "layerctl", "decompose", *args], check=True)
    return time.perf_counter() - start


def same_layers(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.glob("*.psd"))
    if names != sorted(p.name for p in b.glob("*.psd")):
        return False
    for name in names:
        left, right = formats.read(a / name).leaves(), formats.read(b / name).leaves()
        if len(left) != len(right):
            return False
        if not all(np.array_equal(x.pixels, y.pixels) for x, y in zip(left, right, strict=True)):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="classic")
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        count = inputs(root / "in", args.per_category)
        common = ["-b", args.backend, "-n", "4", "--quiet"]
        modes = {"plain": [], f"--workers {args.workers}": ["--workers", str(args.workers)]}
        if not args.no_ray:
            modes[f"--ray local --workers {args.workers}"] = [
                "--ray", "local", "--workers", str(args.workers)
            ]  # fmt: skip
        print(f"{count} images 512x384, backend {args.backend}, -n 4")
        for i, (mode, extra) in enumerate(modes.items()):
            out = root / f"out{i}"
            seconds = timed([str(root / "in"), "-o", str(out), *common, *extra])
            same = "same" if same_layers(root / "out0", out) else "DIFFERENT"
            print(f"{mode:28s} {seconds:6.1f} s  {count / seconds:5.2f} images/s  {same}")


if __name__ == "__main__":
    main()
