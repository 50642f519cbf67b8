"""How close ``-n auto`` (layerctl.auto) comes to the true layer count of synthetic designs.

    python bench/auto_layers.py [--seeds 4-7]

Prints, per category of bench/synthetic.py, the true and suggested counts and the mean
absolute error, plus the time per 512×384 image. Seeds 0–3 were used to pick the rule's
constants, so the default reports the held-out seeds 4–7.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import CATEGORIES, design

from layerctl.auto import suggest_layers
from layerctl.stack import composite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="4-7", help="first-last, inclusive")
    args = parser.parse_args()
    first, last = (int(s) for s in args.seeds.split("-"))
    errors, seconds = [], 0.0
    for category in CATEGORIES:
        pairs = []
        for seed in range(first, last + 1):
            layers = design(category, seed)
            flat = composite(layers)
            start = time.perf_counter()
            pairs.append((len(layers), suggest_layers(flat, 8)))
            seconds += time.perf_counter() - start
        errors += [abs(a - b) for a, b in pairs]
        shown = " ".join(f"{a}->{b}" for a, b in pairs)
        print(f"{category:10s} true->auto {shown}")
    print(f"mean absolute error {sum(errors) / len(errors):.2f} layers over {len(errors)} images")
    print(f"{1000 * seconds / len(errors):.1f} ms per image")


if __name__ == "__main__":
    main()
