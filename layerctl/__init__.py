"""layerctl: turn one raster image into a stack of editable RGBA layers.

Importing this package is cheap on purpose: numpy, backends (torch, onnxruntime, OpenCV)
and everything else load lazily, when they are first used.

>>> import layerctl
>>> stack = layerctl.decompose("poster.png", layers=4)   # doctest: +SKIP
>>> run = layerctl.open(backend="classic")               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "Decomposer",
    "Layer",
    "LayerStack",
    "__version__",
    "decompose",
    "decompose_file",
    "open",
]

if TYPE_CHECKING:
    from layerctl.api import decompose, decompose_file, open
    from layerctl.decomposer import Decomposer
    from layerctl.stack import Layer, LayerStack

_LAZY = {
    "Layer": "layerctl.stack",
    "LayerStack": "layerctl.stack",
    "Decomposer": "layerctl.decomposer",
    "decompose": "layerctl.api",
    "decompose_file": "layerctl.api",
    "open": "layerctl.api",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'layerctl' has no attribute {name!r}")
