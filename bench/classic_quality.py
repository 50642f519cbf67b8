"""Run a backend over the synthetic designs; print LayerD scores per category and speed.

    python bench/classic_quality.py [--per-category 6] [--backend classic] [--auto]
                                    [--sheet bench/classic_sheet.png]

Each design's flat composite is decomposed into as many layers as its ground truth has
(or up to 8, found by the backend, with ``--auto``) and scored with ``layerctl.evaluate``
twice: the backend's own layers (merge level 0), and the layers made lossless as the
CLI writes them (merge levels 0 and 5); colour under alpha 0 is cleared, as in files.
Speed is the backend's own CPU time per megapixel on one core (threads pinned to 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def single_core() -> None:
    """Pin BLAS/OpenMP to one thread; must run before numpy is first imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run(args: argparse.Namespace) -> dict[str, list]:
    import cv2

    from layerctl import refine
    from layerctl.backends import base
    from layerctl.evaluate import evaluate_layers
    from layerctl.formats.canvas import clear_transparent
    from layerctl.stack import composite

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synthetic import CATEGORIES, design

    cv2.setNumThreads(1)
    engine = base.load(args.backend, base.BackendSettings())
    warm = composite(design(CATEGORIES[0], 10**6))  # first call pays the lazy imports
    engine.decompose(warm, base.DecomposeRequest(layers=2))
    rows: dict[str, list] = {c: [] for c in CATEGORIES}
    sheets = []
    for category in CATEGORIES:
        for k in range(args.per_category):
            truth = design(category, args.seed + k)
            flat = composite(truth)
            n = len(truth)
            if args.auto:  # as the CLI's -n auto: classic finds the count, up to 8
                n = 8
            start = time.process_time()
            raw = engine.decompose(flat, base.DecomposeRequest(layers=n, seed=k))
            seconds = time.process_time() - start
            # Score layers as a file stores them: colour under alpha 0 is not kept.
            layers = [clear_transparent(x) for x in refine.make_lossless(raw, flat)]
            backend_only = evaluate_layers([clear_transparent(x) for x in raw], truth, 0)
            levels = evaluate_layers(layers, truth)
            megapixels = flat.shape[0] * flat.shape[1] / 1e6
            rows[category].append((levels, seconds / megapixels, n, len(truth), backend_only))
            if args.sheet and k == 0:
                sheets.append(_sheet(layers, flat, f"{category}-{k}: {n} layers"))
    if args.sheet:
        _save_sheets(sheets, args.sheet)
    return rows


def _sheet(layers: list, flat, header: str):
    from layerctl.preview import contact_sheet
    from layerctl.stack import Layer, LayerStack

    stack = LayerStack([Layer(f"{i}", px) for i, px in enumerate(layers)])
    return contact_sheet(stack, flat, header)[0]


def _save_sheets(sheets: list, path: Path) -> None:
    from PIL import Image

    width = max(s.width for s in sheets)
    out = Image.new("RGB", (width, sum(s.height for s in sheets)), (238, 238, 238))
    y = 0
    for s in sheets:
        out.paste(s, (0, y))
        y += s.height
    out.save(path, optimize=True)
    print(f"contact sheet: {path}")


def report(rows: dict[str, list]) -> None:
    print(
        f"{'':<10} {'':>3} {'backend':^13} {'lossless (as written)':^27}\n"
        f"{'category':<10} {'n':>3} {'IoU@0':>6} {'L1@0':>6} {'IoU@0':>6} {'L1@0':>6} "
        f"{'IoU@5':>6} {'L1@5':>6} {'s/MP':>6}"
    )
    every = []
    for category, items in rows.items():
        every += items
        _line(category, items)
    _line("all", every)
    counts = sum(n == truth for _, _, n, truth, _ in every)
    print(f"layers asked = ground-truth count in {counts}/{len(every)} designs")


def _line(label: str, items: list) -> None:
    import numpy as np

    from layerctl.evaluate import mean_levels

    mean = mean_levels([levels for levels, *_ in items])
    raw = mean_levels([item[4] for item in items], max_merges=0)[0]
    speed = float(np.mean([s for _, s, *_ in items]))
    print(
        f"{label:<10} {len(items):>3} {raw['alpha_iou']:6.3f} {raw['rgb_l1']:6.3f} "
        f"{mean[0]['alpha_iou']:6.3f} {mean[0]['rgb_l1']:6.3f} "
        f"{mean[5]['alpha_iou']:6.3f} {mean[5]['rgb_l1']:6.3f} {speed:6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-category", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default="classic")
    parser.add_argument("--auto", action="store_true", help="ask for up to 8, as -n auto does")
    parser.add_argument("--sheet", type=Path, help="write a contact sheet PNG here")
    args = parser.parse_args()
    single_core()
    report(run(args))


if __name__ == "__main__":
    main()
