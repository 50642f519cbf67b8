"""Native PyTorch Qwen-Image-Layered: our own sampling loop over diffusers' model classes."""

from layerctl.backends.qwen.backend import QwenBackend

__all__ = ["QwenBackend"]
