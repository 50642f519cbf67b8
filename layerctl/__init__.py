"""layerctl: turn one raster image into a stack of editable RGBA layers.

Importing this package is cheap on purpose: backends (torch, onnxruntime, OpenCV) load
lazily, when a decomposition is asked for.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("layerctl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from layerctl.stack import Layer, LayerStack

__all__ = ["Layer", "LayerStack", "__version__"]
