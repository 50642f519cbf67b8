"""Why one bench sample scores what it does: the occlusion groups the metric compares.

    python bench/classic_groups.py designs/strokes 2 [--backend classic]
        [--max-megapixels M] [--score-megapixels 1]

LayerD's protocol (layerctl.evaluate) composites each side's layers into occlusion
groups and pairs the groups by dynamic time warping, so what a sample scores depends on
which pieces share a layer and on the layers' order more than on the pieces themselves
(a decomposition whose layers overlap nowhere is one group). For one sample of
bench/classic_world.py (``FAMILY``: ``designs/<f>``, ``synthetic/<f>`` or ``real``;
``SEED``: its seed or file index) this prints the truth's layers and groups, ours, where
each of our layers shows (visible pixels on each truth layer's visible pixels, in
thousands), the warping path with each pair's soft IoU and RGB L1, and the scores at
merge levels 0 and 5: enough to tell a wrong grouping from a wrong order.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import classic_world


def shown(layers: list) -> list:
    """Each layer's visible alpha (0..1) in the composite, bottom first."""
    import numpy as np

    through = np.ones(layers[0].shape[:2], np.float32)
    out = [through] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        alpha = layers[i][..., 3].astype(np.float32) / 255.0
        out[i] = alpha * through
        through = through * (1.0 - alpha)
    return out


def main() -> None:
    from layerctl.evaluate import alpha_iou, dtw_path, grouped, occlusion_groups, rgb_l1

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", help="designs/<family>, synthetic/<family> or real")
    parser.add_argument("seed", type=int)
    parser.add_argument("--backend", default="classic")
    parser.add_argument("--max-megapixels", type=float, default=None)
    parser.add_argument("--score-megapixels", type=float, default=1.0)
    args = parser.parse_args()
    group, _, family = args.family.partition("/")
    sample = classic_world.draw(group, family or group, args.seed, args.max_megapixels)
    truth = list(sample.layers)
    ours, _, _ = classic_world.decompose(sample.image, len(truth), args.backend)
    print(sample.source)
    truth = classic_world.shrink(truth, args.score_megapixels)
    ours = classic_world.shrink(ours, args.score_megapixels)
    names = [f"T{i} {name}" for i, name in enumerate(sample.names)]
    print("truth:", ", ".join(names))
    for side, layers, label in (("truth", truth, "T"), ("ours", ours, "O")):
        groups = occlusion_groups([layer[..., 3] for layer in layers])
        print(f"{side} groups (bottom first):", [[f"{label}{i}" for i in g] for g in groups])
    seen_truth, seen_ours = shown(truth), shown(ours)
    print("where our layers show (k px on each truth layer):")
    for i, mine in enumerate(seen_ours):
        cells = " ".join(f"{float((mine * t).sum()) / 1000:7.1f}" for t in seen_truth)
        print(f"  O{i}: {cells}")
    mine, theirs = grouped(ours), grouped(truth)
    pairs = [[(rgb_l1(p, g), alpha_iou(p, g)) for g in theirs] for p in mine]
    import numpy as np

    cost = np.array([[(l1 + 1.0 - iou) / 2.0 for l1, iou in row] for row in pairs])
    print("pairs of groups on the warping path:")
    for i, j in dtw_path(cost):
        l1, iou = pairs[i][j]
        print(f"  ours g{i} ~ truth g{j}: IoU {iou:.3f} L1 {l1:.3f}")
    print({k: round(v, 3) for k, v in classic_world.scores(ours, truth).items()})


if __name__ == "__main__":
    classic_world.single_core()
    main()
