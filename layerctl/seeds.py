"""Per-image seeds: derived from ``--seed`` and the image's content, never from its position.

A batch then gives every image the same result whether it runs alone, tenth in a folder,
or on another worker, and two different images under one ``--seed`` still get
independent noise.
"""

from __future__ import annotations

import hashlib


def image_seed(seed: int, content_sha256: str) -> int:
    """The seed for one image: a hash of the user's seed and the image's sha256 (31 bits).

    31 bits fit every RNG a backend may use (``numpy.random.seed`` needs < 2**32).
    """
    digest = hashlib.sha256(f"layerctl-seed:{seed}:{content_sha256}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF
