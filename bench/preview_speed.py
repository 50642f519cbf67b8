"""Seconds to draw a contact sheet (layerctl.preview) and to render an HTML batch report.

``python bench/preview_speed.py`` prints one line per case. Random layers are the worst
case for the thumbnails' compression; the full-size composite and difference map
dominate for large canvases.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from layerctl import preview, report
from layerctl.stack import Layer, LayerStack


def sheet_case(width: int, height: int, n: int) -> None:
    rng = np.random.default_rng(0)
    layers = [Layer(f"L{i}", rng.integers(0, 256, (height, width, 4), np.uint8)) for i in range(n)]
    stack = LayerStack(layers)
    original = stack.composite()
    start = time.perf_counter()
    _, plan = preview.contact_sheet(stack, original)
    seconds = time.perf_counter() - start
    print(
        f"sheet  {width}x{height}, {n:2d} layers -> {plan.size[0]}x{plan.size[1]}: {seconds:.2f} s"
    )


def report_case(rows: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(1)
        records = []
        for i in range(rows):
            path = Path(folder) / f"in{i}.png"
            Image.fromarray(rng.integers(0, 256, (384, 512, 3), np.uint8)).save(path)
            records.append({"input": str(path), "status": "ok", "seconds": 1.0, "layers": 4})
        start = time.perf_counter()
        text = report.render(records)
        seconds = time.perf_counter() - start
    print(f"report {rows} rows of 512x384 inputs: {seconds:.2f} s, {len(text) / 1e6:.2f} MB")


if __name__ == "__main__":
    sheet_case(1024, 1024, 4)
    sheet_case(1024, 1024, 8)
    sheet_case(640, 6400, 20)
    sheet_case(4000, 3000, 20)
    report_case(100)
