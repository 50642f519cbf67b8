"""Content hashes: of files (inputs, weights, exports) and of in-memory images.

One place, so a result's recorded sha256, a weights check and an export manifest all
mean the same thing. No numpy import: ``layerctl weights`` stays light.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks (weights shards are tens of GB)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pixels_sha256(pixels: Any) -> str:
    """sha256 of an in-memory image's shape and C-order bytes (a layer has no file)."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(pixels.tobytes())
    return digest.hexdigest()
