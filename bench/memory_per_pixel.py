"""Peak host memory of one decomposition against its size: the numbers behind the plan.

Each backend states ``peak_bytes_per_pixel`` and ``peak_fixed_bytes`` (backends/base.py);
layerctl.budget checks every image against them before decoding it. This script measures
them: each case runs in a fresh process (read a PNG, decompose, write a PSD: what one
batch job does) and reports its peak RSS above the RSS after imports; a least-squares
line through the sizes gives the slope (bytes per pixel) and the intercept (fixed bytes).

    python bench/memory_per_pixel.py                   # classic, 0.25-2 MP, 4 layers
    python bench/memory_per_pixel.py --model           # the core around a model backend
    python bench/memory_per_pixel.py --mp 0.5 1 2 4 --layers 8

``--model`` measures what a model backend (qwen, onnx) costs on the host per input pixel:
its layers come at the model's resolution, then the core resizes them to the input size
and makes them lossless (layerctl.refine); the model's own memory is planned by
backends/qwen/memory.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CASE = r"""
import json, resource, sys, tempfile
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

width, height, layers = map(int, sys.argv[1:4])
model = sys.argv[4] == "1"
folder = Path(tempfile.mkdtemp())
image = Image.new("RGB", (width, height), (236, 230, 220))
draw = ImageDraw.Draw(image)
for i in range(6):  # a few flat shapes: what the classic backend is made for
    x, y = (i * 37 % 80) * width // 100, (i * 53 % 80) * height // 100
    draw.ellipse((x, y, x + width // 5, y + height // 5), fill=(40 * i, 200 - 30 * i, 90))
image.save(folder / "in.png")
del image, draw

from layerctl import api, formats, refine
from layerctl.backends.classic import ClassicBackend  # noqa: F401  (import cost, not peak)
from layerctl.imageio import read_image
import cv2, scipy.ndimage, skimage  # noqa: F401
base = rss()
if model:  # a model backend's layers at 1024 px, then the core's refine at input size
    source = read_image(folder / "in.png")
    rng = np.random.default_rng(0)
    raw = [rng.integers(0, 256, (1024, 1024, 4), np.uint8) for _ in range(layers)]
    out = refine.make_lossless(refine.to_size(raw, (width, height)), source.pixels)
    from layerctl.stack import Layer, LayerStack
    formats.write(LayerStack([Layer(str(i), p) for i, p in enumerate(out)]), folder / "out.psd")
else:
    api.decompose_file(folder / "in.png", folder / "out.psd", layers, backend="classic")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"pixels": width * height, "base": base, "peak": peak}))
"""


def measure(megapixels: float, layers: int, model: bool) -> dict[str, int]:
    side = int((megapixels * 1e6) ** 0.5)
    width, height = side * 4 // 3, side * 3 // 4  # a 16:9-ish poster
    result = subprocess.run(
        [sys.executable, "-c", CASE, str(width), str(height), str(layers), str(int(model))],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mp", type=float, nargs="+", default=[0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", action="store_true", help="the core around a model backend")
    args = parser.parse_args()
    what = "model backend (core only)" if args.model else "classic"
    print(f"{what}, {args.layers} layers: peak RSS above the post-import RSS")
    rows = []
    for mp in args.mp:
        row = measure(mp, args.layers, args.model)
        above = row["peak"] - row["base"]
        rows.append((row["pixels"], above))
        print(
            f"  {row['pixels'] / 1e6:6.2f} MP: {above / 1e9:6.2f} GB "
            f"({above / row['pixels']:.0f} B/px)"
        )
    pixels, peaks = np.array(rows, dtype=np.float64).T
    slope, intercept = np.polyfit(pixels, peaks, 1)
    print(f"slope {slope:.0f} B/px, intercept {intercept / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
