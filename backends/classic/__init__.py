"""The classic backend: weights-free decomposition of flat graphics on the CPU.

No model and no download: background estimation, colour unblending at anti-aliased
edges and grouping of elements, with OpenCV, scikit-image and SciPy. Deterministic
(``request.seed`` changes nothing).
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import numpy as np

from layerctl import budget
from layerctl.backends.base import BackendSettings, DecomposeRequest

_NEEDS = ("cv2", "skimage", "scipy")


class ClassicBackend:
    name: ClassVar[str] = "classic"
    summary: ClassVar[str] = "weights-free, CPU: background + elements with soft edges"
    extra: ClassVar[str | None] = "classic"
    Settings: ClassVar[type[BackendSettings]] = BackendSettings  # no options of its own
    Request: ClassVar[type[DecomposeRequest]] = DecomposeRequest
    finds_layer_count: ClassVar[bool] = True  # -n is an upper bound: -n auto asks for the most
    # `python bench/memory_per_pixel.py [--layers 8]` (bench/RESULTS.md): peak RSS slope
    # 112 B/px at 4 layers, 124 at 8, intercept ~40 MB (it was 646 and 1106 B/px before
    # make_lossless worked in bands). Update these when a bench run says otherwise.
    peak_bytes_per_pixel: ClassVar[int] = 110
    peak_bytes_per_layer_pixel: ClassVar[int] = 4
    peak_fixed_bytes: ClassVar[int] = budget.CORE_FIXED_BYTES
    peak_bytes_per_layer: ClassVar[int] = 0

    @classmethod
    def available(cls, settings: BackendSettings) -> tuple[bool, str]:
        missing = [m for m in _NEEDS if importlib.util.find_spec(m) is None]
        if missing:
            return False, f"missing {', '.join(missing)} (pip install 'layerctl[classic]')"
        return True, ""

    def __init__(self, settings: BackendSettings) -> None:
        self.settings = settings

    def decompose(self, image: np.ndarray, request: DecomposeRequest) -> list[np.ndarray]:
        from layerctl.backends.classic.pipeline import decompose

        return decompose(image, request.layers)
