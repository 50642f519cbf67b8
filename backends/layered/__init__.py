"""Qwen-Image-Layered itself, shared by the qwen (torch) and onnx backends: the flow
(``flow``, no torch), the auto-caption (``caption``) and the checkpoint loader (``load``).
Not a backend: nothing here is registered as one."""
