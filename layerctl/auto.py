"""``-n auto``: how many layers an image asks for, read from its colour structure.

Rule: quantise the opaque pixels to 8 levels per channel (512 colour bins) and count
the bins that hold at least ``MIN_SHARE`` of them — flat regions of one colour each
fill one bin, while anti-aliased edges and noise spread thinly and fall below the
threshold. The count, clamped to ``2 .. max_layers``, is the layer count. The rule reads
only pixels, so it works the same for every backend and needs no extra dependency.
"""

from __future__ import annotations

import numpy as np

LEVELS = 8  # per channel
MIN_SHARE = 0.02  # of the opaque pixels
MIN_LAYERS = 2


def suggest_layers(image: np.ndarray, max_layers: int = 8) -> int:
    """Layer count for an RGBA uint8 image, between 2 and ``max_layers``."""
    if max_layers < MIN_LAYERS:
        return max_layers
    opaque = image[..., 3] > 127
    if not opaque.any():
        return MIN_LAYERS
    rgb = image[..., :3][opaque].astype(np.int32) * LEVELS // 256
    bins = (rgb[:, 0] * LEVELS + rgb[:, 1]) * LEVELS + rgb[:, 2]
    counts = np.bincount(bins, minlength=LEVELS**3)
    clusters = int((counts >= MIN_SHARE * opaque.sum()).sum())
    return int(np.clip(clusters, MIN_LAYERS, max_layers))
