"""ONNX Runtime (CPU) against the torch backend (CPU): seconds per sampling step, and export cost.

    python bench/onnx_vs_torch.py [--weights DIR] [--export DIR] [--steps 6] [--layers 2]
                                  [--resolution 640]

Without ``--weights`` it builds the tests' tiny random checkpoint in a temporary folder;
without ``--export`` it exports it there first and prints the export time and folder size.
Each backend loads, runs one warm-up decomposition, then a timed one (same image, prompt,
seed); a step is one transformer call on cond + uncond plus the Euler update, timed
between consecutive step callbacks. Prints the median step time per backend and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from layerctl.backends.model_options import OnnxSettings, QwenRequest, QwenSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, help="checkpoint folder (default: tiny, built)")
    parser.add_argument("--export", type=Path, help="an existing export folder")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=640)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (step times are taken between steps)")
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or _tiny(Path(tmp))
        export = args.export or _export(weights, Path(tmp) / "export")
        request = QwenRequest(
            layers=args.layers, seed=0, prompt="a red disc", steps=args.steps,
            resolution=args.resolution,
        )  # fmt: skip
        image = _image()
        times = {}
        for name, settings in (
            ("onnx", OnnxSettings(weights=str(export), providers=("cpu",))),
            ("torch", QwenSettings(weights=str(weights), device="cpu", dtype="float32")),
        ):
            times[name] = _measure(name, settings, image, request)
    onnx, torch = times["onnx"], times["torch"]
    print(f"torch / onnx step time: {torch / onnx:.2f}x")


def _tiny(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_qwen import build_tiny_checkpoint

    return build_tiny_checkpoint(root / "tiny")


def _export(weights: Path, folder: Path) -> Path:
    from layerctl import console
    from layerctl.backends.onnx.export import export_onnx

    console.state.quiet = True
    start = time.perf_counter()
    manifest = export_onnx(str(weights), folder)
    size = sum(f["size"] for f in manifest["files"].values())
    worst = max(manifest["verification"]["max_relative_difference"].values())
    seconds = time.perf_counter() - start
    print(f"export: {seconds:.1f} s, {size / 2**20:.2f} MiB in {len(manifest['files'])} files")
    print(f"largest ORT-vs-torch difference at export: {worst:.1e}")
    return folder


def _measure(name: str, settings: OnnxSettings | QwenSettings, image: np.ndarray, request) -> float:
    """Median seconds per step of a timed run after a warm-up; prints load and total."""
    from layerctl.backends import base

    start = time.perf_counter()
    backend = base.backend_class("qwen" if name == "torch" else "onnx")(settings)
    load = time.perf_counter() - start
    backend.decompose(image, request)  # warm-up: lazy sessions, allocator, caches
    stamps = []
    start = time.perf_counter()
    backend.decompose(image, request, callback=lambda i, x: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    step = statistics.median(np.diff(stamps))
    where = f"{request.steps} steps, {request.layers} layers, bucket {request.resolution}"
    print(f"{name:5s}: load {load:.1f} s, run {total:.2f} s, median step {step:.3f} s ({where})")
    return step


def _image() -> np.ndarray:
    img = Image.new("RGBA", (320, 240), (240, 236, 220, 255))
    draw = ImageDraw.Draw(img)
    draw.ellipse((40, 30, 160, 150), fill=(200, 40, 40, 255))
    draw.rectangle((120, 140, 300, 200), fill=(30, 80, 190, 255))
    return np.asarray(img).copy()


if __name__ == "__main__":
    main()
