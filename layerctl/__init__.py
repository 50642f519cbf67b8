"""layerctl: turn one raster image into a stack of editable RGBA layers.

Importing this package is cheap on purpose: numpy, backends (torch, onnxruntime, OpenCV)
and everything else load lazily, when they are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Layer", "LayerStack", "__version__"]

if TYPE_CHECKING:
    from layerctl.stack import Layer, LayerStack


def __getattr__(name: str) -> Any:
    if name in {"Layer", "LayerStack"}:
        from layerctl import stack

        return getattr(stack, name)
    raise AttributeError(f"module 'layerctl' has no attribute {name!r}")
