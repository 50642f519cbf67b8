"""Native PyTorch Qwen-Image-Layered: our own sampling loop over diffusers' model classes."""
